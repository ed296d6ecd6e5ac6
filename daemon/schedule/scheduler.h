// ScenarioRunner: drives one scenario's arrivals on the event loop, open-loop.
//
// Owned by App, loop thread only. Waits on the Timers it is given (the event
// loop; FakeTimers in tests) and reads time from its Clock. One timer per
// scenario fires at the next intended time; the runner then starts every
// arrival that is due, each stamped with its own intended time, so a late timer
// shows up as schedule lag and latency instead of as missing requests. An
// arrival that cannot start is counted in polar_loadd_arrivals_dropped_total
// with its reason (a cap is reached, or the target asked us to back off with
// 429 + Retry-After); nothing is queued without bound and nothing is skipped
// silently.
//
// Reload-friendly: Reconfigure() swaps the schedule and limits of a running
// runner. Counters live in Metrics (cached by name) and the arrival sequence
// and any Retry-After pause stay with the runner, so nothing is lost; the new
// schedule starts where the old one left off (remaining integrated rate is
// handed over), so a reload neither bursts nor stalls.
//
// Operator control (the control API, daemon/status/control_api.h):
// Pause/Resume, a rate override for a while or until the runner is replaced
// (the next reload), and a bounded burst of extra arrivals. Every switch
// between the configured schedule and an override or a pause hands over the
// integrated rate left before the next arrival, and the configured schedule
// always resumes on its own timeline (a ramp that started at 09:00 is where it
// would be at 09:20 when a 20-minute override ends), so no switch bursts or
// stalls.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "daemon/schedule/arrivals.h"
#include "daemon/schedule/schedule.h"
#include "exporters/metrics.h"
#include "scenarios/scenario.h"
#include "scenarios/timers.h"
#include "scenarios/transport.h"

namespace polar {

struct RunnerLimits {
  std::size_t max_in_flight = 1000;  // this scenario's flows
  // The daemon-wide cap.
  std::function<bool()> global_full = [] { return false; };
  // On 429 with Retry-After, stop sending for that long (capped) and count
  // the arrivals not sent as dropped{reason="retry_after"}.
  bool honour_retry_after = true;
  // Polar's longest block is 30 min (confirm, docs/polar-api.md §5); a larger
  // Retry-After is more likely a misconfigured proxy than a plan.
  Duration max_retry_after = std::chrono::minutes(30);
  // Arrivals due within one window are sent together: the timer is set to
  // the end of the window on a grid shared by every scenario (so they share
  // wake-ups too), and each arrival keeps its own intended time, so the wait
  // shows in schedule lag and latency. The window is GroupWindow(rate,
  // timer_slack): none below one arrival per slack (1,000/s at the daemon's
  // default of 1 ms), so a slower schedule is sent on time. Zero: never.
  Duration timer_slack = Duration::zero();
};

// The window arrivals at `rate` per second are grouped in with `slack`:
// zero below one arrival per slack, twice the slack while it holds one to
// two arrivals (so a wake-up still sends two), the slack from two up. Pure.
Duration GroupWindow(double rate, Duration slack);

// What the runner schedules: the rate over time and the arrival process.
struct RunnerPlan {
  ScheduleSpec schedule;  // the whole cluster's; the runner runs 1/N of it
  ArrivalKind arrivals = ArrivalKind::kUniform;
  uint64_t seed = 1;  // for Poisson gaps (mixed with the shard's index)
  // This instance's share (scenarios/shard.h): the schedule runs at 1/N,
  // uniform arrivals are phased by ShardPhase, and arrival numbers are the
  // shard's global ones (local * N + i).
  Shard shard{};
};

class ScenarioRunner {
 public:
  ScenarioRunner(Timers& timers, const Clock& clock, Scenario& scenario,
                 ScenarioSeries& series, RunnerPlan plan, RunnerLimits limits);
  ~ScenarioRunner();
  ScenarioRunner(const ScenarioRunner&) = delete;
  ScenarioRunner& operator=(const ScenarioRunner&) = delete;

  // Starts scheduling; the schedule's origin (ramp start, first step) is
  // `first`, usually now. With uniform arrivals the first one is due at once
  // (a shard's after its ShardPhase), unless `first_work` carries over what a
  // predecessor had left (a reload).
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
  // Arrivals produced by this instance (not global arrival numbers).
  uint64_t arrivals() const { return sequence_; }
  bool running() const { return running_; }
  MonoTime paused_until() const { return paused_until_; }
  const RunnerPlan& plan() const { return plan_; }
  const std::string& name() const { return scenario_.name(); }

  // ---- Operator control ----------------------------------------------------
  // At most this many burst arrivals may be waiting to start: a burst is a
  // probe ("what does 100 at once do?"), not a second schedule. 10,000 starts
  // in ~20 loop turns of 512.
  static constexpr uint64_t kMaxBurst = 10'000;

  struct RateOverride {
    double rate = 0;                   // arrivals per second
    MonoTime until = MonoTime::max();  // max(): until the runner is replaced
  };

  // Stops producing arrivals (none are counted, none dropped) until Resume();
  // flows in flight finish. polar_loadd_target_rate reads 0 meanwhile. False
  // if already paused.
  bool Pause();
  // Picks the schedule (or the override) up at now. False if not paused.
  bool Resume();
  bool paused() const { return paused_; }
  // Runs at `rate` arrivals per second instead of the schedule until `until`
  // (a cluster rate, like the config's: a shard of N runs rate / N),
  // then goes back to the schedule. Replaces an override in force. While
  // paused, it takes effect on Resume() (and may expire before).
  void OverrideRate(double rate, MonoTime until);
  // Ends an override now. False if none was in force.
  bool ClearOverride();
  const std::optional<RateOverride>& rate_override() const { return override_; }
  // What the configured schedule asks for at `now`, whatever overrides it.
  double ScheduledRate(MonoTime now) const;
  // Starts `count` extra arrivals, intended now, through the same caps as
  // scheduled ones (beyond a cap they are counted as dropped, with the
  // reason), at most 512 per loop turn. False, and nothing added, when that
  // would leave more than kMaxBurst waiting or the runner is stopped.
  bool Burst(uint64_t count);
  uint64_t burst_pending() const { return burst_pending_; }

 private:
  void OnTimer();
  void OnBurst();
  void Arm();
  // One arrival through the caps: started, or counted as dropped.
  void Admit(const Arrival& arrival);
  // Rebuilds the process for the current state (override or schedule) from
  // `now`, with `work` left before the next arrival, and re-arms.
  void Switch(MonoTime now, std::optional<double> work);
  void EndOverride();
  std::unique_ptr<ArrivalProcess> MakeProcess(
      MonoTime origin, std::optional<double> first_work,
      std::optional<MonoTime> resume_at = std::nullopt) const;
  WallTime WallAt(MonoTime t) const;
  // Sets the target-rate gauge and what Arm() decides the slack by.
  void SetRate(double rate);

  Timers& timers_;
  const Clock& clock_;
  Scenario& scenario_;
  ScenarioSeries& series_;
  RunnerPlan plan_;
  RunnerLimits limits_;
  std::unique_ptr<ArrivalProcess> process_;
  uint64_t sequence_ = 0;
  Timer timer_;      // the next arrival
  double rate_ = 0;  // arrivals per second now, as the gauge shows it
  bool running_ = false;
  MonoTime paused_until_{};
  // Control state.
  MonoTime origin_{};  // of the configured schedule (Start, Reconfigure)
  bool paused_ = false;
  std::optional<double> paused_work_;  // handed to the process on Resume
  std::optional<RateOverride> override_;
  Timer override_timer_;  // the override's end
  uint64_t burst_pending_ = 0;
  MonoTime burst_intended_{};
  Timer burst_timer_;  // the next slice of a burst
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
  StreamId OpenStream(Request request, StreamOptions options,
                      StreamHandlers handlers) override;
  void CancelStream(StreamId id) override { inner_.CancelStream(id); }

 private:
  Transport& inner_;
  ScenarioRunner* runner_ = nullptr;
};

}  // namespace polar
