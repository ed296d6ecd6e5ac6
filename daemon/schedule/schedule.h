// Rate schedules: how many arrivals per second a scenario asks for at each
// instant: constant, a ramp, a list of steps, weekly time windows in a time
// zone, or a daily profile of 24 hourly multipliers.
//
// Pure and immutable: a schedule is built once from a ScheduleSpec (frozen
// config) plus an origin (the monotonic instant it starts at and the wall time
// of that instant), and answers questions about times given to it; it never
// reads a clock. Any thread may call its const methods; in the daemon only the
// loop thread does.
//
// The schedule is described as pieces: from any instant t it reports the rate
// at t, its slope, and how long that straight-line piece lasts. Every schedule
// here is piecewise linear (a ramp) or piecewise constant (steps, windows,
// hours), so the arrival process can integrate it exactly (arrivals.h).
//
// Time zones: weekly windows and daily hours follow the zone's local wall
// clock. On a spring-forward night the skipped hour never happens (a window
// starting at 02:30 starts at 03:00); on a fall-back night the repeated hour is
// lived twice. Wall time is the system clock at the origin plus monotonic time
// since, so an NTP step moves window edges by that step until the next reload.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/schedule/tz.h"
#include "exporters/clock.h"

namespace polar {

enum class ScheduleKind : unsigned char {
  kConstant,
  kRamp,
  kSteps,
  kWeekly,
  kDaily
};

struct RateStep {
  double rate = 0;  // arrivals per second
  Duration length{};
  bool operator==(const RateStep&) const = default;
};

struct WeeklyWindow {
  uint8_t days = 0;      // bit 0 = Monday ... bit 6 = Sunday: the day it starts
  int start_minute = 0;  // minutes after local midnight, 0..1439
  int end_minute = 0;    // 1..1440; <= start means it runs past midnight
  double rate = 0;
  bool operator==(const WeeklyWindow&) const = default;
};

// The frozen config of one scenario's schedule. Only the fields of `kind`
// matter.
struct ScheduleSpec {
  ScheduleKind kind = ScheduleKind::kConstant;
  double rate = 1;  // constant: the rate; weekly: the rate outside every
                    // window; daily: the base the multipliers scale
  double from = 0;  // ramp
  double to = 0;
  Duration over{};
  std::vector<RateStep> steps;
  bool repeat = false;  // steps: start over after the last one (else hold it)
  std::vector<WeeklyWindow> windows;  // first matching window wins
  std::array<double, 24> hourly{};    // daily: multiplier per local hour
  std::shared_ptr<const TimeZone> zone = TimeZone::Utc();

  bool operator==(const ScheduleSpec& other) const;
  // The largest rate the schedule can ask for (config bounds it).
  double PeakRate() const;
  // The same schedule with every rate multiplied by `factor` (a shard's
  // 1/N): the shape, the time windows and the step lengths stay.
  ScheduleSpec Scaled(double factor) const;
};

// From an instant t (time since the schedule's origin): the rate is
// rate + slope * (s - t) for s in [t, end).
struct RatePiece {
  double rate = 0;                 // arrivals per second at t
  double slope = 0;                // change of rate per second
  Duration end = Duration::max();  // Duration::max(): lasts forever
};

class RateSchedule {
 public:
  virtual ~RateSchedule() = default;
  // t >= 0 is the time since the origin.
  virtual RatePiece PieceAt(Duration t) const = 0;
  double RateAt(Duration t) const { return PieceAt(t).rate; }
};

// Builds the schedule for `spec`, starting at the instant whose wall time is
// `origin_wall`.
std::unique_ptr<RateSchedule> BuildSchedule(const ScheduleSpec& spec,
                                            WallTime origin_wall);

}  // namespace polar
