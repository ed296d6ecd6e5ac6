// ScenarioRunner: drives one scenario's arrivals on the event loop, open-loop.
//
// Owned by App, loop thread only. One loop timer per scenario fires at the next
// intended time; the runner then starts every arrival that is due, each stamped
// with its own intended time, so a late timer shows up as schedule lag and
// latency instead of as missing requests. An arrival that cannot start is
// counted in polar_loadd_arrivals_dropped_total with its reason (a cap is
// reached, or the target asked us to back off with 429 + Retry-After); nothing
// is queued without bound and nothing is skipped silently.
//
// Reload-friendly: Reconfigure() swaps the schedule and limits of a running
// runner. Counters live in Metrics (cached by name) and the arrival sequence
// and any Retry-After pause stay with the runner, so nothing is lost; the new
// schedule starts where the old one left off (remaining integrated rate is
// handed over), so a reload neither bursts nor stalls.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "daemon/arrivals.h"
#include "daemon/event_loop.h"
#include "daemon/schedule.h"
#include "exporters/metrics.h"
#include "scenarios/scenario.h"
#include "scenarios/transport.h"

namespace polar {

struct RunnerLimits {
  std::size_t max_in_flight = 1000;  // this scenario's flows
  // The daemon-wide cap.
  std::function<bool()> global_full = [] { return false; };
  // On 429 with Retry-After, stop sending for that long (capped) and count
  // the arrivals not sent as dropped{reason="retry_after"}.
  bool honour_retry_after = true;
  // Polar's longest block is 30 min (confirm, polar-api.md §5); a larger
  // Retry-After is more likely a misconfigured proxy than a plan.
  Duration max_retry_after = std::chrono::minutes(30);
};

// What the runner schedules: the rate over time and the arrival process.
struct RunnerPlan {
  ScheduleSpec schedule;
  ArrivalKind arrivals = ArrivalKind::kUniform;
  uint64_t seed = 1;  // for Poisson gaps
};

class ScenarioRunner {
 public:
  ScenarioRunner(EventLoop& loop, const Clock& clock, Scenario& scenario,
                 ScenarioSeries& series, RunnerPlan plan, RunnerLimits limits);
  ~ScenarioRunner();
  ScenarioRunner(const ScenarioRunner&) = delete;
  ScenarioRunner& operator=(const ScenarioRunner&) = delete;

  // Starts scheduling; the schedule's origin (ramp start, first step) is
  // `first`, usually now. With uniform arrivals the first one is due at once,
  // unless `first_work` carries over what a predecessor had left (a reload).
  void Start(MonoTime first, std::optional<double> first_work = std::nullopt);
  // Stops producing arrivals; flows already started run to completion.
  void Stop();
  // Replaces the plan and limits, keeping counters, the arrival sequence and a
  // Retry-After pause in force. A changed schedule starts at now.
  void Reconfigure(RunnerPlan plan, RunnerLimits limits);
  // The target answered 429 with Retry-After: `wait`. Honoured per limits.
  void OnRetryAfter(Duration wait);

  // The integrated rate left before the next arrival (ArrivalProcess::
  // RemainingWork): handed to a successor so a reload neither bursts nor
  // stalls.
  std::optional<double> RemainingWork(MonoTime now) const {
    return process_ ? process_->RemainingWork(now) : std::nullopt;
  }
  uint64_t arrivals() const { return sequence_; }
  bool running() const { return running_; }
  MonoTime paused_until() const { return paused_until_; }
  const RunnerPlan& plan() const { return plan_; }

 private:
  void OnTimer();
  void Arm();
  std::unique_ptr<ArrivalProcess> MakeProcess(
      MonoTime origin, std::optional<double> first_work) const;

  EventLoop& loop_;
  const Clock& clock_;
  Scenario& scenario_;
  ScenarioSeries& series_;
  RunnerPlan plan_;
  RunnerLimits limits_;
  std::unique_ptr<ArrivalProcess> process_;
  uint64_t sequence_ = 0;
  EventLoop::TimerId timer_ = 0;
  bool running_ = false;
  MonoTime paused_until_{};
};

// A Transport in front of the engine for one scenario: it tells the runner
// about 429 + Retry-After answers before the scenario sees them. Loop thread
// only; the runner is set after both exist (the scenario needs the transport
// first).
class RetryAfterGate final : public Transport {
 public:
  explicit RetryAfterGate(Transport& inner) : inner_(inner) {}
  void set_runner(ScenarioRunner* runner) { runner_ = runner; }
  void Send(Request request, ResponseCallback done) override;

 private:
  Transport& inner_;
  ScenarioRunner* runner_ = nullptr;
};

}  // namespace polar
