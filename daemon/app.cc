#include "daemon/app.h"

#include <spdlog/spdlog.h>

#include <csignal>

#include "polar/version.h"
#include "scenarios/event_ingestion.h"

namespace polar {

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
  loop_->Post([this] { OnReady(); });
  loop_->Run();
  spdlog::info("stopped");
  return 0;
}

std::size_t App::InFlight() const {
  std::size_t n = engine_ ? engine_->in_flight() : 0;
  for (const Retired& r : retired_) {
    if (r.engine) n += r.engine->in_flight();
  }
  return n;
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
