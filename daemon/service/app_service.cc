// App's service side: SIGHUP reload (validate, then swap, retiring what was
// replaced once its requests finish), the one-line status for systemd, and the
// test-only hook that blocks the loop. Same class and thread rules as app.h;
// kept apart from app.cc so the load engine and the lifecycle evolve in
// separate files.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <thread>

#include "daemon/service/app.h"
#include "daemon/service/status_line.h"
#include "exporters/log.h"

namespace polar {
namespace {

// How often the one-line status (systemctl status) is recomputed, and the
// window its rates cover. 5 s: fresh enough for a human, a dozen atomic loads.
constexpr Duration kStatusInterval = std::chrono::seconds(5);

// How often retired scenarios and engines are checked for requests still in
// flight after a reload; they go away at most this long after their last one.
constexpr Duration kRetireCheck = std::chrono::milliseconds(250);

}  // namespace

void App::OnReady() {
  lifecycle_->Ready(StatusLine());
  status_totals_ = metrics_->Totals();
  status_since_ = clock_.Now();
  status_has_window_ = true;
  status_timer_ = loop_->Every(kStatusInterval, [this] { RefreshStatus(); });
}

ReloadOutcome App::Reload() {
  if (stopping_) {
    SPDLOG_INFO("SIGHUP while stopping: ignored");
    return {ReloadOutcome::Kind::kIgnored, 0};
  }
  lifecycle_->Reloading();
  const std::string path = config_->path;
  SPDLOG_INFO("SIGHUP: reloading {}", path);
  ConfigResult loaded = LoadConfig(path, ProcessEnvironment());
  for (std::string& secret : loaded.secrets) RegisterSecret(std::move(secret));

  std::vector<std::string> problems;
  for (const ConfigError& e : loaded.errors) problems.push_back(e.ToString());
  std::unique_ptr<HttpServer> server;
  if (loaded.config &&
      loaded.config->metrics.listen != config_->metrics.listen) {
    // Bind the new address before touching anything, so a failure leaves the
    // old configuration whole.
    std::string error;
    server = StartMetricsServer(loaded.config->metrics, &error);
    if (!server) {
      problems.push_back(fmt::format(
          "{}: metrics.listen: {}; the old listener stays (if the new address "
          "overlaps the old one, restart the service to move it)",
          path, error));
    }
  }
  std::unique_ptr<HttpServer> webhook_server;
  if (loaded.config && problems.empty()) {
    // As for metrics.listen: a new webhook listener is bound first.
    std::string error;
    if (!PrepareWebhooks(loaded.config->webhooks, &webhook_server, &error)) {
      problems.push_back(fmt::format(
          "{}: {}; the old listener stays (if the new address overlaps the "
          "old one, restart the service to move it)",
          path, error));
      server.reset();
    }
  }
  if (!problems.empty()) {
    ScopedLogFields fields({{"POLAR_EVENT", "reload_failed"}});
    for (const std::string& p : problems) SPDLOG_ERROR("reload: {}", p);
    SPDLOG_ERROR(
        "reload of {} failed with {} problem(s); still running the previous "
        "configuration",
        path, problems.size());
    metrics_->config_reloads(false).Increment();
    metrics_->config_last_reload_successful().Set(0);
    last_reload_failed_ = true;
    last_reload_result_ = "failure";
    last_reload_at_ = clock_.Now();
    last_reload_problems_ = problems.size();
    lifecycle_->Reloaded(StatusLine());
    return {ReloadOutcome::Kind::kRefused, problems.size()};
  }
  for (const std::string& note : loaded.notes) SPDLOG_INFO("{}", note);
  for (const std::string& warning : loaded.warnings) SPDLOG_WARN("{}", warning);
  Apply(std::move(loaded.config), std::move(server), std::move(webhook_server));
  metrics_->config_reloads(true).Increment();
  metrics_->config_last_reload_successful().Set(1);
  metrics_->config_last_reload_success_timestamp().Set(
      std::chrono::duration<double>(clock_.WallNow().time_since_epoch())
          .count());
  last_reload_failed_ = false;
  last_reload_result_ = "success";
  last_reload_at_ = clock_.Now();
  last_reload_problems_ = 0;
  {
    ScopedLogFields fields({{"POLAR_EVENT", "reloaded"}});
    SPDLOG_INFO("reloaded {}: {} scenario(s)", path, config_->scenarios.size());
  }
  lifecycle_->Reloaded(StatusLine());
  return {ReloadOutcome::Kind::kApplied, 0};
}

void App::Apply(std::shared_ptr<const Config> next,
                std::unique_ptr<HttpServer> server,
                std::unique_ptr<HttpServer> webhook_server) {
  // Every scenario is rebuilt from the new config and its schedule restarts
  // now. The old scenario objects keep answering their requests in flight
  // (their callbacks point at them) and share the metric children with their
  // successors (Metrics caches them by name), so no series resets.
  Retired retired;
  // Operator control across a reload: rate overrides end here (they last
  // "until the next reload" at most), bursts still starting are dropped, and
  // pauses carry over to the scenario of the same name, so load an operator
  // stopped does not come back because someone edited the file.
  std::vector<std::string> paused;
  for (const auto& runner : runners_) {
    if (runner->paused()) paused.push_back(runner->name());
    if (runner->rate_override()) {
      SPDLOG_INFO("control: reload ends the rate override of scenario {}",
                  runner->name());
    }
    if (runner->burst_pending() > 0) {
      SPDLOG_INFO(
          "control: reload drops {} burst arrival(s) of scenario {} not yet "
          "started",
          runner->burst_pending(), runner->name());
    }
  }
  // The old scenarios' answers still pass through their gates; the runners
  // the gates would tell about a 429 are about to go.
  for (auto& gate : gates_) gate->set_runner(nullptr);
  runners_.clear();  // a runner's destructor stops its timer
  retired.scenarios = std::move(scenarios_);
  scenarios_.clear();
  retired.gates = std::move(gates_);
  gates_.clear();
  EngineOptions wanted = MakeEngineOptions(next->target);
  if (!(wanted == MakeEngineOptions(config_->target))) {
    retired.engine = std::move(engine_);
    retired.base_url = config_->target.base_url;
    engine_ = std::make_unique<HttpEngine>(*loop_, clock_, std::move(wanted));
    SPDLOG_INFO(
        "target changed: new requests go to {}; {} request(s) in flight "
        "finish on the old connections",
        next->target.base_url, retired.engine->in_flight());
  }
  const bool moved = server != nullptr;
  if (server) {
    metrics_server_ = std::move(server);  // the old listener closes here
    SPDLOG_INFO("metrics on http://{}/metrics",
                metrics_server_->address().ToString());
  }
  metrics_server_->set_allowed_hosts(next->metrics.allowed_hosts);
  // The receiver keeps its state (remembered ids, expectations, counters);
  // scenarios started below get its expectations, or none without [webhooks].
  if (webhooks_) webhooks_->Apply(next->webhooks, std::move(webhook_server));
  config_ = std::move(next);
  const bool control_changed =
      control_->enabled() != !config_->control.token.empty();
  control_->SetToken(config_->control.token);
  if (moved || control_changed) LogControlSurface();
  retired_.push_back(std::move(retired));
  StartScenarios(clock_.Now());
  for (const std::string& name : paused) {
    if (ScenarioRunner* runner = FindRunner(name)) {
      runner->Pause();
      SPDLOG_INFO("control: scenario {} stays paused across the reload", name);
    }
  }
  CollectRetired();
}

void App::CollectRetired() {
  for (Retired& r : retired_) {
    std::erase_if(r.scenarios, [](const std::unique_ptr<Scenario>& s) {
      return s->in_flight() == 0;
    });
  }
  std::erase_if(retired_, [](const Retired& r) {
    bool done =
        r.scenarios.empty() && (!r.engine || r.engine->in_flight() == 0);
    if (done && r.engine) {
      SPDLOG_INFO(
          "the requests in flight to the old target {} finished; its "
          "connections are closed",
          r.base_url);
    }
    return done;
  });
  if (!retired_.empty() && !retire_timer_.pending())
    retire_timer_ = loop_->After(kRetireCheck, [this] { CollectRetired(); });
}

std::string App::StatusLine() {
  std::string line;
  if (stopping_) {
    return fmt::format("stopping: draining {} request(s) in flight",
                       InFlight());
  }
  if (last_reload_failed_)
    line = "last reload failed, running the previous config; ";
  double asked = metrics_->TargetRate();
  std::size_t n = config_->scenarios.size();
  if (!status_has_window_) {
    return line + fmt::format("starting {} scenario(s), {:g} arrivals/s asked",
                              n, asked);
  }
  StatusWindow w;
  w.scenarios = n;
  w.asked_per_second = asked;
  w.before = status_totals_;
  w.now = metrics_->Totals();
  w.seconds = ToSeconds(clock_.Now() - status_since_);
  w.in_flight = InFlight();
  return line + StatusText(w);
}

void App::RefreshStatus() {
  lifecycle_->Status(StatusLine());
  status_totals_ = metrics_->Totals();
  status_since_ = clock_.Now();
  FlushErrorLogs(clock_.Now(), [](const std::string& key, uint64_t n) {
    SPDLOG_WARN("{}: suppressed {} similar message(s)", key, n);
  });
}

void App::InstallTestHooks() {
  // Test-only, off unless POLAR_LOADD_TEST_HOOKS=1: SIGUSR2 blocks the event
  // loop for POLAR_LOADD_TEST_BLOCK_MS (default 3000) milliseconds. It exists
  // so the end-to-end tests can prove that a hung loop stops the watchdog
  // pings (systemd then restarts the service); nothing else can hang the loop
  // on demand. Without the variable SIGUSR2 keeps its default action.
  const char* hooks = std::getenv("POLAR_LOADD_TEST_HOOKS");
  if (!hooks || std::string_view(hooks) != "1") return;
  long block_ms = 3000;
  if (const char* ms = std::getenv("POLAR_LOADD_TEST_BLOCK_MS"))
    block_ms = std::strtol(ms, nullptr, 10);
  SPDLOG_WARN("test hooks enabled: SIGUSR2 blocks the loop for {} ms",
              block_ms);
  loop_->OnSignal(SIGUSR2, [block_ms] {
    SPDLOG_WARN("SIGUSR2 (test hook): blocking the event loop for {} ms",
                block_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(block_ms));
    SPDLOG_WARN("SIGUSR2 (test hook): event loop unblocked");
  });
}

}  // namespace polar
