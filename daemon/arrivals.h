// Arrival processes: pure math for when the next arrival of a scenario is due.
//
// Value objects owned by one ScenarioRunner; no I/O, no clock of their own:
// every call takes the time it reasons about, so unit tests drive them with
// plain numbers. Send times come from the plan (previous intended time + gap),
// never from when the previous request finished: that is what makes the load
// open-loop (wrk2's usec_to_next_send).
#pragma once

#include <memory>

#include "scenarios/clock.h"

namespace polar {

class ArrivalProcess {
 public:
  virtual ~ArrivalProcess() = default;
  // The intended time of the arrival after one intended at `previous`;
  // MonoTime::max() if none.
  virtual MonoTime Next(MonoTime previous) = 0;
  // Arrivals per second the process asks for at `t` (the
  // polar_loadd_target_rate gauge).
  virtual double RateAt(MonoTime t) const = 0;
};

// Evenly spaced arrivals at a constant rate: gap = 1 / rate.
class UniformArrivals final : public ArrivalProcess {
 public:
  explicit UniformArrivals(double per_second) : rate_(per_second) {}
  MonoTime Next(MonoTime previous) override;
  double RateAt(MonoTime) const override { return rate_; }

 private:
  double rate_;
  double carry_ns_ =
      0;  // sub-nanosecond remainder, so 3/s does not drift by 1 ns per arrival
};

}  // namespace polar
