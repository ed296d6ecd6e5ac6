// App: builds the daemon's object graph from a frozen Config and runs it until
// told to stop.
//
// Owned by main(); everything it owns lives on the one event-loop thread that
// calls Run(). The object graph: Clock -> EventLoop -> HttpEngine (Transport)
// -> scenarios -> ScenarioRunners, plus the metrics HttpServer. SIGTERM/SIGINT
// stop the schedule and drain in-flight requests for up to the grace period,
// then Run() returns 0.
#pragma once

#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/event_loop.h"
#include "daemon/http_engine.h"
#include "daemon/http_server.h"
#include "daemon/scheduler.h"
#include "exporters/metrics.h"
#include "scenarios/scenario.h"

namespace polar {

class App {
 public:
  explicit App(std::shared_ptr<const Config> config);
  ~App();

  // Binds listeners, starts the schedules and runs the loop. Returns the
  // process exit code.
  int Run();

 private:
  bool Setup(std::string* error);
  void BeginShutdown(const char* why);
  void CheckDrained();

  std::shared_ptr<const Config> config_;
  SystemClock clock_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<HttpEngine> engine_;
  std::unique_ptr<HttpServer> metrics_server_;
  std::vector<std::unique_ptr<Scenario>> scenarios_;
  std::vector<std::unique_ptr<ScenarioRunner>> runners_;
  bool stopping_ = false;
  MonoTime drain_deadline_{};
};

// The scenario factory: one explicit switch from config type to implementation.
std::unique_ptr<Scenario> MakeScenario(const ScenarioConfig& config,
                                       ScenarioContext context);

}  // namespace polar
