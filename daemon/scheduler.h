// ScenarioRunner: drives one scenario's arrivals on the event loop, open-loop.
//
// Owned by App, loop thread only. One loop timer per scenario fires at the next
// intended time; the runner then starts every arrival that is due, each stamped
// with its own intended time, so a late timer shows up as schedule lag and
// latency instead of as missing requests. An arrival that cannot start because
// a cap is reached is counted in polar_loadd_arrivals_dropped_total with its
// reason; nothing is queued without bound and nothing is skipped silently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "daemon/arrivals.h"
#include "daemon/event_loop.h"
#include "exporters/metrics.h"
#include "scenarios/scenario.h"

namespace polar {

struct RunnerLimits {
  std::size_t max_in_flight = 1000;  // this scenario's flows
  std::function<bool()> global_full = [] {
    return false;
  };  // the daemon-wide cap
};

class ScenarioRunner {
 public:
  ScenarioRunner(EventLoop& loop, const Clock& clock, Scenario& scenario,
                 ScenarioSeries& series,
                 std::unique_ptr<ArrivalProcess> arrivals, RunnerLimits limits);
  ~ScenarioRunner();
  ScenarioRunner(const ScenarioRunner&) = delete;
  ScenarioRunner& operator=(const ScenarioRunner&) = delete;

  // Starts scheduling; the first arrival is due at `first` (usually now).
  void Start(MonoTime first);
  // Stops producing arrivals; flows already started run to completion.
  void Stop();

  uint64_t arrivals() const { return sequence_; }

 private:
  void OnTimer();
  void Arm();

  EventLoop& loop_;
  const Clock& clock_;
  Scenario& scenario_;
  ScenarioSeries& series_;
  std::unique_ptr<ArrivalProcess> arrivals_;
  RunnerLimits limits_;
  MonoTime next_{};
  uint64_t sequence_ = 0;
  EventLoop::TimerId timer_ = 0;
  bool running_ = false;
};

}  // namespace polar
