#include "daemon/app.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <thread>

#include "exporters/log.h"
#include "polar/version.h"
#include "scenarios/event_ingestion.h"

namespace polar {
namespace {

// How often the one-line status (systemctl status) is recomputed, and the
// window its rates cover. 5 s: fresh enough for a human, a dozen atomic loads.
constexpr Duration kStatusInterval = std::chrono::seconds(5);

// How often retired scenarios and engines are checked for requests still in
// flight after a reload; they go away at most this long after their last one.
constexpr Duration kRetireCheck = std::chrono::milliseconds(250);

bool SameListen(const ListenAddress& a, const ListenAddress& b) {
  return a.host == b.host && a.port == b.port && a.ipv6 == b.ipv6;
}

}  // namespace

std::unique_ptr<Scenario> MakeScenario(const ScenarioConfig& config,
                                       ScenarioContext context) {
  switch (config.type) {
    case ScenarioType::kEventIngestion:
      return std::make_unique<EventIngestionScenario>(std::move(context),
                                                      config.event_ingestion);
  }
  return nullptr;
}

EngineOptions MakeEngineOptions(const TargetConfig& target) {
  EngineOptions engine;
  engine.base_url = target.base_url;
  engine.token = target.token;
  engine.timeout = target.timeout;
  engine.connect_timeout = target.connect_timeout;
  engine.ca_file = target.ca_file;
  engine.connections = static_cast<std::size_t>(target.connections);
  engine.user_agent = std::string("polar-loadd/") + kVersion;
  return engine;
}

App::App(std::shared_ptr<const Config> config) : config_(std::move(config)) {}

App::~App() {
  // Runners reference scenarios and the loop; tear down in reverse order of
  // construction.
  runners_.clear();
  engine_.reset();
  scenarios_.clear();
  for (Retired& r : retired_) {
    r.engine.reset();
    r.scenarios.clear();
  }
  retired_.clear();
  metrics_server_.reset();
  lifecycle_.reset();
  loop_.reset();
}

bool App::Setup(std::string* error) {
  registry_ = std::make_shared<prometheus::Registry>();
  metrics_ = std::make_unique<Metrics>(*registry_);
  loop_ = std::make_unique<EventLoop>();
  prometheus::Histogram* loop_lag = &metrics_->loop_lag();
  loop_->SetLagObserver(
      [loop_lag](Duration late) { loop_lag->Observe(ToSeconds(late)); });
  notifier_ = std::make_unique<SystemdNotifier>();
  lifecycle_ = std::make_unique<Lifecycle>(*loop_, *notifier_);

  engine_ = std::make_unique<HttpEngine>(*loop_, clock_,
                                         MakeEngineOptions(config_->target));
  metrics_server_ = StartMetricsServer(config_->metrics.listen, error);
  if (!metrics_server_) return false;
  spdlog::info("metrics on http://{}/metrics",
               metrics_server_->address().ToString());
  return true;
}

std::unique_ptr<HttpServer> App::StartMetricsServer(const ListenAddress& listen,
                                                    std::string* error) {
  HttpServerOptions server_options;
  server_options.listen = listen;
  prometheus::Registry* registry = registry_.get();
  return HttpServer::Start(
      *loop_, server_options,
      [registry](const HttpServerRequest& request) {
        HttpServerResponse response;
        if (request.path == "/metrics" &&
            (request.method == "GET" || request.method == "HEAD")) {
          response.content_type = "text/plain; version=0.0.4; charset=utf-8";
          response.body = SerializeMetrics(*registry);
        } else {
          response.status = 404;
          response.body = "not found; metrics are at /metrics\n";
        }
        return response;
      },
      error);
}

void App::StartScenarios(MonoTime start) {
  const std::size_t global_cap =
      static_cast<std::size_t>(config_->target.max_in_flight);
  for (const ScenarioConfig& sc : config_->scenarios) {
    ScenarioContext context{sc.name, *engine_, clock_, *metrics_, sc.seed};
    std::unique_ptr<Scenario> scenario = MakeScenario(sc, std::move(context));
    RunnerLimits limits;
    limits.max_in_flight = static_cast<std::size_t>(sc.max_in_flight);
    limits.global_full = [this, global_cap] {
      return InFlight() >= global_cap;
    };
    runners_.push_back(std::make_unique<ScenarioRunner>(
        *loop_, clock_, *scenario, metrics_->Scenario(sc.name),
        std::make_unique<UniformArrivals>(sc.rate), std::move(limits)));
    scenarios_.push_back(std::move(scenario));
  }
  for (auto& runner : runners_) runner->Start(start);
  for (const ScenarioConfig& sc : config_->scenarios) {
    spdlog::info("scenario {}: {} at {:g}/s against {}", sc.name,
                 "event_ingestion", sc.rate, config_->target.base_url);
  }
}

int App::Run() {
  std::string error;
  if (!Setup(&error)) {
    spdlog::error("{}", error);
    return 69;  // EX_UNAVAILABLE: a listener could not be bound
  }
  loop_->OnSignal(SIGTERM, [this] { BeginShutdown("SIGTERM"); });
  loop_->OnSignal(SIGINT, [this] { BeginShutdown("SIGINT"); });
  loop_->OnSignal(SIGHUP, [this] { Reload(); });
  InstallTestHooks();

  metrics_->config_last_reload_success_timestamp().Set(
      std::chrono::duration<double>(clock_.WallNow().time_since_epoch())
          .count());
  StartScenarios(clock_.Now());
  // READY=1 from inside the loop: by then the config is valid, the metrics
  // port is bound and the loop is really running.
  loop_->Post([this] {
    lifecycle_->Ready(StatusLine());
    status_totals_ = metrics_->Totals();
    status_since_ = clock_.Now();
    status_has_window_ = true;
    status_timer_ = loop_->AddTimerAfter(kStatusInterval, [this] {
      status_timer_ = 0;
      RefreshStatus();
    });
  });
  loop_->Run();
  spdlog::info("stopped");
  return 0;
}

void App::Reload() {
  if (stopping_) {
    spdlog::info("SIGHUP while stopping: ignored");
    return;
  }
  lifecycle_->Reloading();
  const std::string path = config_->path;
  spdlog::info("SIGHUP: reloading {}", path);
  ConfigResult loaded = LoadConfig(path, ProcessEnvironment());
  for (std::string& secret : loaded.secrets) RegisterSecret(std::move(secret));

  std::vector<std::string> problems;
  for (const ConfigError& e : loaded.errors) problems.push_back(e.ToString());
  std::unique_ptr<HttpServer> server;
  if (loaded.config &&
      !SameListen(loaded.config->metrics.listen, config_->metrics.listen)) {
    // Bind the new address before touching anything, so a failure leaves the
    // old configuration whole.
    std::string error;
    server = StartMetricsServer(loaded.config->metrics.listen, &error);
    if (!server) {
      problems.push_back(fmt::format(
          "{}: metrics.listen: {}; the old listener stays (if the new address "
          "overlaps the old one, restart the service to move it)",
          path, error));
    }
  }
  if (!problems.empty()) {
    ScopedLogFields fields({{"POLAR_EVENT", "reload_failed"}});
    for (const std::string& p : problems) spdlog::error("reload: {}", p);
    spdlog::error(
        "reload of {} failed with {} problem(s); still running the previous "
        "configuration",
        path, problems.size());
    metrics_->config_reloads(false).Increment();
    metrics_->config_last_reload_successful().Set(0);
    last_reload_failed_ = true;
    lifecycle_->Reloaded(StatusLine());
    return;
  }
  for (const std::string& note : loaded.notes) spdlog::info("{}", note);
  Apply(std::move(loaded.config), std::move(server));
  metrics_->config_reloads(true).Increment();
  metrics_->config_last_reload_successful().Set(1);
  metrics_->config_last_reload_success_timestamp().Set(
      std::chrono::duration<double>(clock_.WallNow().time_since_epoch())
          .count());
  last_reload_failed_ = false;
  {
    ScopedLogFields fields({{"POLAR_EVENT", "reloaded"}});
    spdlog::info("reloaded {}: {} scenario(s)", path,
                 config_->scenarios.size());
  }
  lifecycle_->Reloaded(StatusLine());
}

void App::Apply(std::shared_ptr<const Config> next,
                std::unique_ptr<HttpServer> server) {
  // Every scenario is rebuilt from the new config and its schedule restarts
  // now. The old scenario objects keep answering their requests in flight
  // (their callbacks point at them) and share the metric children with their
  // successors (Metrics caches them by name), so no series resets.
  Retired retired;
  runners_.clear();  // a runner's destructor stops its timer
  retired.scenarios = std::move(scenarios_);
  scenarios_.clear();
  EngineOptions wanted = MakeEngineOptions(next->target);
  if (!(wanted == MakeEngineOptions(config_->target))) {
    retired.engine = std::move(engine_);
    engine_ = std::make_unique<HttpEngine>(*loop_, clock_, std::move(wanted));
    spdlog::info(
        "target changed: new requests go to {}; {} request(s) in flight "
        "finish on the old connections",
        next->target.base_url, retired.engine->in_flight());
  }
  if (server) {
    metrics_server_ = std::move(server);  // the old listener closes here
    spdlog::info("metrics on http://{}/metrics",
                 metrics_server_->address().ToString());
  }
  config_ = std::move(next);
  retired_.push_back(std::move(retired));
  StartScenarios(clock_.Now());
  CollectRetired();
}

void App::CollectRetired() {
  for (Retired& r : retired_) {
    std::erase_if(r.scenarios, [](const std::unique_ptr<Scenario>& s) {
      return s->in_flight() == 0;
    });
  }
  std::erase_if(retired_, [](const Retired& r) {
    return r.scenarios.empty() && (!r.engine || r.engine->in_flight() == 0);
  });
  if (!retired_.empty() && !retire_timer_) {
    retire_timer_ = loop_->AddTimerAfter(kRetireCheck, [this] {
      retire_timer_ = 0;
      CollectRetired();
    });
  }
}

std::size_t App::InFlight() const {
  std::size_t n = engine_ ? engine_->in_flight() : 0;
  for (const Retired& r : retired_) {
    if (r.engine) n += r.engine->in_flight();
  }
  return n;
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
    return line +
           fmt::format("starting {} scenario(s), {:g}/s asked", n, asked);
  }
  RequestTotals now = metrics_->Totals();
  double seconds = ToSeconds(clock_.Now() - status_since_);
  double done = now.requests - status_totals_.requests;
  double failed = now.failed - status_totals_.failed;
  double rate = seconds > 0 ? done / seconds : 0;
  double errors = done > 0 ? 100.0 * failed / done : 0;
  return line + fmt::format(
                    "{} scenario(s): {:.1f} req/s done of {:g}/s asked, "
                    "{:.1f}% errors, {} in flight",
                    n, rate, asked, errors, InFlight());
}

void App::RefreshStatus() {
  lifecycle_->Status(StatusLine());
  status_totals_ = metrics_->Totals();
  status_since_ = clock_.Now();
  FlushErrorLogs(clock_.Now(), [](const std::string& key, uint64_t n) {
    spdlog::warn("{}: suppressed {} similar message(s)", key, n);
  });
  status_timer_ = loop_->AddTimerAfter(kStatusInterval, [this] {
    status_timer_ = 0;
    RefreshStatus();
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
  spdlog::warn("test hooks enabled: SIGUSR2 blocks the loop for {} ms",
               block_ms);
  loop_->OnSignal(SIGUSR2, [block_ms] {
    spdlog::warn("SIGUSR2 (test hook): blocking the event loop for {} ms",
                 block_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(block_ms));
    spdlog::warn("SIGUSR2 (test hook): event loop unblocked");
  });
}

void App::BeginShutdown(const char* why) {
  if (stopping_) {
    spdlog::warn(
        "{} again: stopping now without waiting for in-flight requests", why);
    loop_->Stop();
    return;
  }
  stopping_ = true;
  for (auto& runner : runners_) runner->Stop();
  const Duration grace = config_->daemon.shutdown_grace;
  drain_deadline_ = clock_.Now() + grace;
  lifecycle_->Stopping(grace, StatusLine());
  spdlog::info(
      "{}: schedule stopped, draining {} in-flight requests (up to {})", why,
      InFlight(), FormatDuration(grace));
  CheckDrained();
}

void App::CheckDrained() {
  if (InFlight() == 0) {
    loop_->Stop();
    return;
  }
  if (clock_.Now() >= drain_deadline_) {
    spdlog::warn("drain grace period over; abandoning {} requests", InFlight());
    loop_->Stop();
    return;
  }
  lifecycle_->Status(StatusLine());
  loop_->AddTimerAfter(std::chrono::milliseconds(20),
                       [this] { CheckDrained(); });
}

}  // namespace polar
