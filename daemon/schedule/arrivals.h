// Arrival processes: pure math for when each arrival of a scenario is due,
// for any rate schedule (schedule.h).
//
// Value object owned by one ScenarioRunner; no I/O and no clock of its own:
// it works in the monotonic instants it is given. Send times come from the
// plan, never from when a previous request finished: that is what makes the
// load open-loop (wrk2's usec_to_next_send).
//
// How: with Λ(t) the integrated rate (cumulative intensity) of the schedule,
// arrival k is where Λ crosses the sum of k "work" units. Uniform arrivals use
// units of exactly 1; Poisson arrivals use independent Exp(1) units, which is
// the time-change construction of a non-homogeneous Poisson process. Because
// the gap is measured in integrated rate, not in seconds, a schedule change
// neither bursts (10/s -> 1/s does not fire the 10/s backlog) nor stalls
// (1/h -> 100/s does not wait out the hour-long gap first).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "daemon/schedule/schedule.h"
#include "exporters/clock.h"
#include "scenarios/random.h"
#include "scenarios/shard.h"

namespace polar {

enum class ArrivalKind : unsigned char { kUniform, kPoisson };

// Seconds-exact integration helpers over a schedule, exposed for tests.
// The first instant s >= from with ∫_from^s rate = work, or nullopt if the
// schedule never accumulates that much (a zero rate forever, or more than
// 100,000 pieces of zero rate ahead: ~11 years of hourly pieces).
std::optional<Duration> SolveWork(const RateSchedule& schedule, Duration from,
                                  double work);
// ∫_from^to rate, in arrivals.
double IntegrateRate(const RateSchedule& schedule, Duration from, Duration to);

// The integrated rate (in the shard's own units: its schedule runs at 1/N of
// `full`) before shard `shard`'s first uniform arrival, for a process starting
// at wall time `origin_wall`; 0 when unsharded. A constant schedule is put on
// the wall clock's grid: the cluster's arrivals fall at Unix times g / rate
// and shard i takes g % N == i, so N instances started at any moments
// interleave evenly (to within their clocks' offset; on one box exactly).
// Other schedules start from their own origin, which each instance sets when
// it starts; there the shard is offset by i/N of an interval from its own
// start, and only the rates add up exactly.
double ShardPhase(const ScheduleSpec& full, Shard shard, WallTime origin_wall);

class ArrivalProcess {
 public:
  // The process starts at `origin` (monotonic), whose wall time is
  // `origin_wall`. `first_work` is the integrated rate before the first
  // arrival: 0 for "at once", or the remainder handed over from a replaced
  // process (RemainingWork) so a reload neither bursts nor stalls. Without it,
  // uniform arrivals start at once and Poisson ones after an Exp(1) draw.
  // `resume_at` (>= origin) starts the process later on the same schedule
  // timeline: a schedule that was set aside (a pause, a rate override) picks
  // up where its clock is now, not where it stood when it was set aside.
  ArrivalProcess(const ScheduleSpec& spec, ArrivalKind kind, uint64_t seed,
                 MonoTime origin, WallTime origin_wall,
                 std::optional<double> first_work = std::nullopt,
                 std::optional<MonoTime> resume_at = std::nullopt);

  // The intended time of the next arrival; MonoTime::max() if there is none.
  MonoTime next() const { return next_; }
  // Moves on to the arrival after next().
  void Advance();
  // Arrivals per second the schedule asks for at `t` (polar_loadd_target_rate).
  double RateAt(MonoTime t) const;
  // Where the schedule's piece holding `t` ends (a step's end, a window's
  // edge, a ramp's end, the next local hour), after which RateAt differs;
  // MonoTime::max() if the rate stays as it is at `t` for ever.
  MonoTime RateChangeAfter(MonoTime t) const;
  // Integrated rate between `now` and next(): what a replacement process should
  // start with. At most one work unit for uniform arrivals; nullopt when this
  // process has no next arrival.
  std::optional<double> RemainingWork(MonoTime now) const;

  ArrivalKind kind() const { return kind_; }

 private:
  double DrawWork();
  void Place(double work);

  std::unique_ptr<RateSchedule> schedule_;
  ArrivalKind kind_;
  Rng rng_;
  MonoTime origin_;
  Duration position_{0};  // of next_, since origin_
  double carry_ns_ = 0;   // sub-nanosecond remainder of position_
  MonoTime next_ = MonoTime::max();
};

}  // namespace polar
