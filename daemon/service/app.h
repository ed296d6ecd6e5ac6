// App: builds the daemon's object graph from a frozen Config and runs it until
// told to stop.
//
// Owned by main(); everything it owns lives on the one event-loop thread that
// calls Run(). The object graph: Clock -> EventLoop -> HttpEngine (Transport)
// -> scenarios -> ScenarioRunners, plus the metrics HttpServer (which also
// serves the status page and the control API: StatusBoard, ControlApi), the
// webhook receiver (WebhookService, with [webhooks]) and the Lifecycle that
// talks to systemd. SIGTERM/SIGINT stop the schedule and drain
// in-flight requests for up to daemon.shutdown_grace, then Run() returns 0.
// SIGHUP reloads the config file: all or nothing, keeping the registry (so
// every counter and histogram carries on) and retiring replaced scenarios and
// engines only once their requests in flight have finished. A reload ends
// every rate override (they last "until the next reload" at most) and keeps
// every pause of a scenario that is still configured: load an operator
// stopped only comes back when someone resumes it.
// In one-shot mode (RunOptions::once) the schedule stops by itself after
// `duration`, and Run() prints the summary, writes the requested files and
// returns 0 when every threshold holds, 1 when one fails. With a report
// (--report or daemon.report) the run's HTML report is written when it ends,
// one-shot or not (app_report.cc).
#pragma once

#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/net/event_loop.h"
#include "daemon/net/http_engine.h"
#include "daemon/net/http_server.h"
#include "daemon/schedule/scheduler.h"
#include "daemon/service/lifecycle.h"
#include "daemon/service/reload_request.h"
#include "daemon/status/control_api.h"
#include "daemon/status/status_board.h"
#include "daemon/webhooks/webhook_service.h"
#include "exporters/metrics.h"
#include "exporters/summary.h"
#include "scenarios/scenario.h"
#include "scenarios/timers.h"

namespace polar {

// How to run: forever (the service) or once for a fixed duration (CI).
struct RunOptions {
  bool once = false;
  Duration duration = std::chrono::minutes(1);
  std::string summary_json;  // empty: not written
  std::string junit;         // empty: not written
  // The HTML report (exporters/report.h); empty: daemon.report, if set.
  // "{start}" becomes the start time.
  std::string report;
  // Progress lines on stderr during one-shot runs of at least 10 s.
  Duration progress_every = std::chrono::seconds(5);
};

class App {
 public:
  explicit App(std::shared_ptr<const Config> config, RunOptions run = {});
  ~App();

  // Binds listeners, starts the schedules and runs the loop. Returns the
  // process exit code.
  int Run();

 private:
  // What a reload replaced: kept until nothing of it is in flight.
  struct Retired {
    std::unique_ptr<HttpEngine> engine;  // null when the target did not change
    std::string base_url;                // the engine's target, for the log
    std::vector<std::unique_ptr<Scenario>> scenarios;
    // The replaced scenarios' Retry-After gates (their requests in flight
    // answer through them), detached from the runners that are gone.
    std::vector<std::unique_ptr<RetryAfterGate>> gates;
  };

  bool Setup(std::string* error);
  std::unique_ptr<HttpServer> StartMetricsServer(const MetricsConfig& metrics,
                                                 std::string* error);
  // The webhook receiver for `config` ([webhooks]): created on first use and
  // kept; false with *error when its listener cannot be bound.
  bool PrepareWebhooks(const WebhooksConfig& config,
                       std::unique_ptr<HttpServer>* server, std::string* error);
  WebhookExpectations* Expectations();
  void StartScenarios(MonoTime start);
  // app_http.cc: the metrics listener's routes: /metrics, the status page
  // (/, /status.css, /status.js), GET /api/status and the control API.
  HttpServerResponse HandleHttp(const HttpServerRequest& request);
  // The same listener, on a request's head before its body is read: the
  // control API's token check (HttpHeadHandler).
  std::optional<HttpServerResponse> HandleHttpHead(
      const HttpServerRequest& request);
  ScenarioRunner* FindRunner(std::string_view name);
  // Logs where the status page is and whether the control API is on.
  void LogControlSurface();
  std::string RenderStatus();
  // app_service.cc: READY=1 and the status timer; SIGHUP; the test hook.
  void OnReady();
  // Reads, validates and applies the config file (SIGHUP); what became of it
  // goes back to a requester (`polar-loadd --reload`, reload_request.h).
  ReloadOutcome Reload();
  void Apply(std::shared_ptr<const Config> next,
             std::unique_ptr<HttpServer> server,
             std::unique_ptr<HttpServer> webhook_server);
  void CollectRetired();
  // Requests admitted and unanswered, on the current and retired engines.
  std::size_t InFlight() const;
  std::string StatusLine();
  void RefreshStatus();
  void InstallTestHooks();
  void BeginShutdown(const char* why);
  void CheckDrained();
  // Every second: loop utilisation, engine queue, connection events,
  // process_* metrics.
  void SampleEverySecond();
  // The HTTPS client's connection counts since the last sample, added to
  // polar_loadd_connection_events_total.
  void SampleConnectionEvents();
  // One-shot runs: progress lines, the summary and the verdict.
  void PrintProgress();
  RunSummary BuildSummary() const;
  int FinishOnce();
  // The report's path for this run ("" when none is asked for), and its
  // writing at the end; false (logged) when it cannot be written.
  std::string ReportPath() const;
  bool CheckReportPath() const;
  bool WriteReport(const RunSummary& summary);
  std::vector<Threshold> Thresholds() const;

  std::shared_ptr<const Config> config_;
  RunOptions run_;
  SystemClock clock_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<Lifecycle> lifecycle_;
  std::unique_ptr<HttpEngine> engine_;
  // What SampleConnectionEvents() last read, and from which client.
  const HttpsClient* sampled_https_ = nullptr;
  HttpsStats sampled_stats_;
  std::unique_ptr<HttpServer> metrics_server_;
  std::unique_ptr<ControlApi> control_;
  std::unique_ptr<StatusBoard> status_board_;
  // Null until [webhooks] is first configured; then kept
  // (daemon/webhooks/webhook_service.h).
  std::unique_ptr<WebhookService> webhooks_;
  std::vector<std::unique_ptr<RetryAfterGate>> gates_;  // one per scenario
  std::vector<std::unique_ptr<Scenario>> scenarios_;
  std::vector<std::unique_ptr<ScenarioRunner>> runners_;
  std::vector<Retired> retired_;
  // Timers on loop_ (cancelled in ~App before the loop goes).
  Timer retire_timer_;    // checks retired scenarios and engines
  Timer status_timer_;    // the systemd status line
  Timer sample_timer_;    // SampleEverySecond
  Timer once_timer_;      // one-shot runs: the end of the schedule
  Timer progress_timer_;  // one-shot runs: progress lines
  Timer drain_timer_;     // CheckDrained while stopping
  // The status line's window: totals at its start.
  RequestTotals status_totals_;
  MonoTime status_since_{};
  bool status_has_window_ = false;
  bool last_reload_failed_ = false;
  // For the status page: the last reload's result ("none" before the first),
  // when it happened and how many problems a failed one had.
  std::string last_reload_result_ = "none";
  MonoTime last_reload_at_{};
  std::size_t last_reload_problems_ = 0;
  WallTime started_wall_{};
  bool stopping_ = false;
  std::string stopped_by_;  // "duration reached", "SIGTERM", ...
  MonoTime drain_deadline_{};
  MonoTime started_{};
  MonoTime schedule_stopped_{};
};

// The engine settings a [target] table asks for; a reload builds a new engine
// only when these change.
EngineOptions MakeEngineOptions(const TargetConfig& target);

// The scenario a config table describes, built by its type's factory
// (scenarios/registry.h).
std::unique_ptr<Scenario> MakeScenario(const ScenarioConfig& config,
                                       ScenarioContext context);

}  // namespace polar
