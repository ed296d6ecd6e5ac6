#include "daemon/service/app.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <fstream>

#include "polar/version.h"

namespace polar {

std::unique_ptr<Scenario> MakeScenario(const ScenarioConfig& config,
                                       ScenarioContext context) {
  return config.type->make(std::move(context), config.options);
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
  engine.builtin_http1 = target.http_client == "auto";
  engine.builtin_https = target.http_client == "auto";
  return engine;
}

App::App(std::shared_ptr<const Config> config, RunOptions run)
    : config_(std::move(config)), run_(std::move(run)) {}

App::~App() {
  for (Timer* t : {&retire_timer_, &status_timer_, &sample_timer_, &once_timer_,
                   &progress_timer_, &drain_timer_}) {
    t->Cancel();
  }
  // Runners reference scenarios and the loop; tear down in reverse order of
  // construction.
  status_board_.reset();
  runners_.clear();
  engine_.reset();
  scenarios_.clear();
  gates_.clear();
  for (Retired& r : retired_) {
    r.engine.reset();
    r.scenarios.clear();
    r.gates.clear();
  }
  retired_.clear();
  webhooks_.reset();
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
  control_ = std::make_unique<ControlApi>(
      clock_, *metrics_,
      [this](std::string_view name) { return FindRunner(name); });
  control_->SetToken(config_->control.token);
  status_board_ =
      std::make_unique<StatusBoard>(*loop_, clock_, *metrics_, *registry_);
  metrics_server_ = StartMetricsServer(config_->metrics, error);
  if (!metrics_server_) return false;
  SPDLOG_INFO("metrics on http://{}/metrics",
              metrics_server_->address().ToString());
  LogControlSurface();
  std::unique_ptr<HttpServer> webhook_server;
  if (!PrepareWebhooks(config_->webhooks, &webhook_server, error)) return false;
  if (webhooks_) webhooks_->Apply(config_->webhooks, std::move(webhook_server));
  return true;
}

bool App::PrepareWebhooks(const WebhooksConfig& config,
                          std::unique_ptr<HttpServer>* server,
                          std::string* error) {
  if (!config.enabled && !webhooks_) return true;
  if (!webhooks_) {
    webhooks_ = std::make_unique<WebhookService>(
        *loop_, clock_, *registry_,
        [this]() -> Transport& { return *engine_; });
  }
  return webhooks_->Prepare(config, server, error);
}

WebhookExpectations* App::Expectations() {
  return webhooks_ ? webhooks_->expectations() : nullptr;
}

std::unique_ptr<HttpServer> App::StartMetricsServer(
    const MetricsConfig& metrics, std::string* error) {
  // Prometheus, a few browsers on the status page, an operator's curl:
  // 16 connections from one address and 128 in all are plenty, and an idle
  // one is evicted, oldest first, when they are all taken. Control bodies are
  // a few dozen bytes of JSON: 16 KiB is generous. The Host allow-list
  // keeps a DNS-rebinding page from reading /metrics and /api/status
  // (docs/configuration.md, metrics.allowed_hosts).
  HttpServerOptions server_options;
  server_options.listen = metrics.listen;
  server_options.name = "metrics";
  server_options.registry = registry_.get();
  server_options.max_body_bytes = 16 * 1024;
  server_options.max_connections = 128;
  server_options.max_connections_per_ip = 16;
  server_options.check_host = true;
  server_options.allowed_hosts = metrics.allowed_hosts;
  server_options.head_handler = [this](const HttpServerRequest& request) {
    return HandleHttpHead(request);
  };
  return HttpServer::Start(
      *loop_, server_options,
      [this](const HttpServerRequest& request) { return HandleHttp(request); },
      error);
}

void App::StartScenarios(MonoTime start) {
  const std::size_t global_cap =
      static_cast<std::size_t>(config_->target.max_in_flight);
  for (const ScenarioConfig& sc : config_->scenarios) {
    // The gate sits between the scenario and the engine and tells the runner
    // about 429 + Retry-After.
    auto gate = std::make_unique<RetryAfterGate>(*engine_);
    const Shard shard = config_->cluster.shard;
    ScenarioContext context{
        sc.name, *gate, clock_, *metrics_, shard.Seed(sc.seed), Expectations()};
    context.timers = loop_.get();
    context.shard = shard;
    std::unique_ptr<Scenario> scenario = MakeScenario(sc, std::move(context));
    RunnerLimits limits;
    limits.max_in_flight = static_cast<std::size_t>(sc.max_in_flight);
    limits.global_full = [this, global_cap] {
      return InFlight() >= global_cap;
    };
    limits.honour_retry_after = sc.honour_retry_after;
    limits.max_retry_after = sc.max_retry_after;
    limits.timer_slack = config_->daemon.timer_slack;
    RunnerPlan plan{sc.schedule, sc.arrivals, sc.seed, shard};
    runners_.push_back(std::make_unique<ScenarioRunner>(
        *loop_, clock_, *scenario, metrics_->Scenario(sc.name), std::move(plan),
        std::move(limits)));
    gate->set_runner(runners_.back().get());
    status_board_->charts().OrderSteps(sc.name, sc.type->steps);
    gates_.push_back(std::move(gate));
    scenarios_.push_back(std::move(scenario));
  }
  for (auto& runner : runners_) runner->Start(start);
  const Shard shard = config_->cluster.shard;
  metrics_->SetShard(shard.index, shard.count);
  if (shard.sharded()) {
    SPDLOG_INFO("shard {}: running 1/{} of every scenario's rate",
                shard.ToString(), shard.count);
  }
  for (const ScenarioConfig& sc : config_->scenarios) {
    SPDLOG_INFO("scenario {}: {} at {:g}/s now (peak {:g}/s) against {}",
                sc.name, sc.type->name,
                metrics_->Scenario(sc.name).target_rate->Value(),
                sc.schedule.PeakRate() / shard.count, config_->target.base_url);
  }
}

int App::Run() {
  std::string error;
  started_wall_ = clock_.WallNow();   // names the report ("{start}")
  if (!CheckReportPath()) return 73;  // EX_CANTCREAT
  if (!Setup(&error)) {
    SPDLOG_ERROR("{}", error);
    return 69;  // EX_UNAVAILABLE: a listener could not be bound
  }
  loop_->OnSignal(SIGTERM, [this] { BeginShutdown("SIGTERM"); });
  loop_->OnSignal(SIGINT, [this] { BeginShutdown("SIGINT"); });
  loop_->OnSignalInfo(SIGHUP, [this](const EventLoop::SignalInfo& info) {
    ReloadOutcome outcome = Reload();
    // `polar-loadd --reload` (the unit's ExecReload=) waits for this answer,
    // so that systemctl reload fails when the file was refused. sigqueue does
    // not block; a client that gave up already is only logged.
    if (IsReloadRequest(info.code, info.value)) {
      std::string error;
      if (!AnswerReloadRequest(info.sender, outcome, &error))
        SPDLOG_WARN("{}", error);
    }
  });
  InstallTestHooks();

  metrics_->config_last_reload_success_timestamp().Set(
      std::chrono::duration<double>(clock_.WallNow().time_since_epoch())
          .count());
  started_ = clock_.Now();
  StartScenarios(started_);
  status_board_->Sample(false);  // the status page's baselines: the start
  // READY=1 from inside the loop: by then the config is valid, the metrics
  // port is bound and the loop is really running.
  loop_->Post([this] { OnReady(); });
  sample_timer_ =
      loop_->Every(std::chrono::seconds(1), [this] { SampleEverySecond(); });
  if (run_.once) {
    SPDLOG_INFO("one-shot run for {}", FormatDuration(run_.duration));
    once_timer_ = loop_->Once(started_ + run_.duration,
                              [this] { BeginShutdown("duration reached"); });
    if (run_.duration >= std::chrono::seconds(10)) {
      progress_timer_ =
          loop_->Every(run_.progress_every, [this] { PrintProgress(); });
    }
  }
  loop_->Run();
  SPDLOG_INFO("stopped");
  if (run_.once) return FinishOnce();
  // The service's report: the whole time it ran. A report that cannot be
  // written is logged; the stop itself went well, so the exit is still 0.
  if (!ReportPath().empty()) {
    RunSummary summary = BuildSummary();
    summary.thresholds = EvaluateThresholds(summary.steps, Thresholds());
    WriteReport(summary);
  }
  return 0;
}

void App::SampleEverySecond() {
  metrics_->loop_utilisation().Set(loop_->TakeUtilisation());
  metrics_->engine_queued().Set(
      static_cast<double>(engine_->in_flight() - engine_->active()));
  SampleConnectionEvents();
  metrics_->SampleProcess();
}

void App::SampleConnectionEvents() {
  const HttpsClient* https = engine_->https();
  if (!https) return;
  // A reload's new engine counts from zero again.
  if (https != sampled_https_) {
    sampled_https_ = https;
    sampled_stats_ = HttpsStats{};
  }
  const HttpsStats& now = https->stats();
  auto add = [&](ConnectionEvent event, uint64_t HttpsStats::*field) {
    const uint64_t delta = now.*field - sampled_stats_.*field;
    if (delta > 0) {
      metrics_->connection_events(event).Increment(static_cast<double>(delta));
    }
  };
  add(ConnectionEvent::kOpened, &HttpsStats::connections_opened);
  add(ConnectionEvent::kHandshake, &HttpsStats::handshakes);
  add(ConnectionEvent::kTlsResumed, &HttpsStats::handshakes_resumed);
  add(ConnectionEvent::kGoaway, &HttpsStats::goaways);
  add(ConnectionEvent::kStreamRefused, &HttpsStats::streams_refused);
  add(ConnectionEvent::kResent, &HttpsStats::requests_resent);
  sampled_stats_ = now;
}

void App::PrintProgress() {
  if (stopping_) {
    progress_timer_.Cancel();
    return;
  }
  RunSummary s = BuildSummary();
  SPDLOG_INFO("{}", FormatProgress(ToSeconds(clock_.Now() - started_),
                                   ToSeconds(run_.duration), s.steps));
}

RunSummary App::BuildSummary() const {
  RunSummary summary;
  const MonoTime end = stopping_ ? schedule_stopped_ : clock_.Now();
  summary.duration_seconds = ToSeconds(end - started_);
  for (const ScenarioConfig& sc : config_->scenarios) {
    for (const std::string& step : sc.type->steps) {
      auto it = metrics_->steps().find({sc.name, step});
      if (it == metrics_->steps().end()) continue;
      const StepSeries& series = it->second;
      StepSummary s;
      s.scenario = sc.name;
      s.step = step;
      for (Outcome o : AllOutcomes()) {
        const auto i = static_cast<std::size_t>(o);
        s.outcomes[i] = static_cast<uint64_t>(series.requests[i]->Value());
        s.count += s.outcomes[i];
      }
      s.rate = summary.duration_seconds > 0
                   ? static_cast<double>(s.count) / summary.duration_seconds
                   : 0;
      s.error_ratio = s.count ? 1.0 - static_cast<double>(s.outcomes[0]) /
                                          static_cast<double>(s.count)
                              : 0;
      s.timed = series.latency_fine.count();
      s.latency = LatencyStats::From(series.latency_fine);
      s.service = LatencyStats::From(series.service_fine);
      summary.steps.push_back(std::move(s));
    }
    auto sit = metrics_->scenarios().find(sc.name);
    if (sit != metrics_->scenarios().end()) {
      ScenarioTotals t;
      t.scenario = sc.name;
      t.arrivals = static_cast<uint64_t>(sit->second.arrivals->Value());
      for (std::size_t i = 0; i < kDropReasonCount; ++i)
        t.dropped[i] = static_cast<uint64_t>(sit->second.dropped[i]->Value());
      summary.scenarios.push_back(std::move(t));
    }
  }
  return summary;
}

int App::FinishOnce() {
  RunSummary summary = BuildSummary();
  summary.thresholds = EvaluateThresholds(summary.steps, Thresholds());
  std::fputs(FormatSummaryText(summary).c_str(), stdout);
  std::fflush(stdout);
  int code = summary.passed() ? 0 : 1;
  auto write = [&](const std::string& path, const std::string& text) {
    if (path.empty()) return;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      SPDLOG_ERROR("cannot write {}", path);
      code = 73;  // EX_CANTCREAT
    }
  };
  write(run_.summary_json, FormatSummaryJson(summary));
  write(run_.junit, FormatJUnit(summary));
  if (!WriteReport(summary)) code = 73;  // EX_CANTCREAT
  return code;
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
    SPDLOG_WARN("{} again: stopping now without waiting for in-flight requests",
                why);
    loop_->Stop();
    return;
  }
  stopping_ = true;
  stopped_by_ = why;
  schedule_stopped_ = clock_.Now();
  for (auto& runner : runners_) runner->Stop();
  // The endpoint this daemon registered is deleted now; the request is in
  // flight on the engine, so the drain below waits for it.
  if (webhooks_) webhooks_->Stop();
  const Duration grace = config_->daemon.shutdown_grace;
  drain_deadline_ = clock_.Now() + grace;
  lifecycle_->Stopping(grace, StatusLine());
  SPDLOG_INFO("{}: schedule stopped, draining {} in-flight requests (up to {})",
              why, InFlight(), FormatDuration(grace));
  drain_timer_ =
      loop_->Every(std::chrono::milliseconds(20), [this] { CheckDrained(); });
  CheckDrained();
}

void App::CheckDrained() {
  if (InFlight() == 0) {
    loop_->Stop();
    return;
  }
  if (clock_.Now() >= drain_deadline_) {
    SPDLOG_WARN("drain grace period over; abandoning {} requests", InFlight());
    loop_->Stop();
    return;
  }
  lifecycle_->Status(StatusLine());
}

}  // namespace polar
