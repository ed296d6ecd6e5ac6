#include "daemon/app.h"

#include <spdlog/spdlog.h>

#include <csignal>

#include "polar/version.h"
#include "scenarios/event_ingestion.h"

namespace polar {
namespace {

// How long SIGTERM waits for requests already on the wire. Short of systemd's
// default 90 s stop timeout, long enough for Polar's slowest SLO (confirm, 5.5
// s p99).
constexpr Duration kDrainGrace = std::chrono::seconds(10);

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

App::App(std::shared_ptr<const Config> config) : config_(std::move(config)) {}

App::~App() {
  // Runners reference scenarios and the loop; tear down in reverse order of
  // construction.
  runners_.clear();
  engine_.reset();
  scenarios_.clear();
  metrics_server_.reset();
  loop_.reset();
}

bool App::Setup(std::string* error) {
  registry_ = std::make_shared<prometheus::Registry>();
  metrics_ = std::make_unique<Metrics>(*registry_);
  loop_ = std::make_unique<EventLoop>();
  prometheus::Histogram* loop_lag = &metrics_->loop_lag();
  loop_->SetLagObserver(
      [loop_lag](Duration late) { loop_lag->Observe(ToSeconds(late)); });

  const TargetConfig& target = config_->target;
  EngineOptions engine;
  engine.base_url = target.base_url;
  engine.token = target.token;
  engine.timeout = target.timeout;
  engine.connect_timeout = target.connect_timeout;
  engine.ca_file = target.ca_file;
  engine.connections = static_cast<std::size_t>(target.connections);
  engine.user_agent = std::string("polar-loadd/") + kVersion;
  engine_ = std::make_unique<HttpEngine>(*loop_, clock_, std::move(engine));

  HttpServerOptions server_options;
  server_options.listen = config_->metrics.listen;
  prometheus::Registry* registry = registry_.get();
  metrics_server_ = HttpServer::Start(
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
  if (!metrics_server_) return false;
  spdlog::info("metrics on http://{}/metrics",
               metrics_server_->address().ToString());

  const std::size_t global_cap = static_cast<std::size_t>(target.max_in_flight);
  HttpEngine* engine_ptr = engine_.get();
  for (const ScenarioConfig& sc : config_->scenarios) {
    ScenarioContext context{sc.name, *engine_, clock_, *metrics_, sc.seed};
    std::unique_ptr<Scenario> scenario = MakeScenario(sc, std::move(context));
    RunnerLimits limits;
    limits.max_in_flight = static_cast<std::size_t>(sc.max_in_flight);
    limits.global_full = [engine_ptr, global_cap] {
      return engine_ptr->in_flight() >= global_cap;
    };
    runners_.push_back(std::make_unique<ScenarioRunner>(
        *loop_, clock_, *scenario, metrics_->Scenario(sc.name),
        std::make_unique<UniformArrivals>(sc.rate), std::move(limits)));
    scenarios_.push_back(std::move(scenario));
  }
  return true;
}

int App::Run() {
  std::string error;
  if (!Setup(&error)) {
    spdlog::error("{}", error);
    return 69;  // EX_UNAVAILABLE: a listener could not be bound
  }
  loop_->OnSignal(SIGTERM, [this] { BeginShutdown("SIGTERM"); });
  loop_->OnSignal(SIGINT, [this] { BeginShutdown("SIGINT"); });

  MonoTime start = clock_.Now();
  for (auto& runner : runners_) runner->Start(start);
  for (const ScenarioConfig& sc : config_->scenarios) {
    spdlog::info("scenario {}: {} at {:g}/s against {}", sc.name,
                 "event_ingestion", sc.rate, config_->target.base_url);
  }
  loop_->Run();
  spdlog::info("stopped");
  return 0;
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
  drain_deadline_ = clock_.Now() + kDrainGrace;
  spdlog::info(
      "{}: schedule stopped, draining {} in-flight requests (up to {})", why,
      engine_->in_flight(), FormatDuration(kDrainGrace));
  CheckDrained();
}

void App::CheckDrained() {
  if (engine_->in_flight() == 0) {
    loop_->Stop();
    return;
  }
  if (clock_.Now() >= drain_deadline_) {
    spdlog::warn("drain grace period over; abandoning {} requests",
                 engine_->in_flight());
    loop_->Stop();
    return;
  }
  loop_->AddTimerAfter(std::chrono::milliseconds(20),
                       [this] { CheckDrained(); });
}

}  // namespace polar
