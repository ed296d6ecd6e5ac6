// Time values for polar-sim: Polar-formatted wall-clock timestamps, durations
// parsed from flags, and the time scale that shrinks Polar's built-in schedules
// (webhook retry backoff, FIFO guard, expiry sweep, rate-limit windows) so
// tests run fast. Reading the time is the Clock's job (sim/base/clock.h).
//
// Pure functions and an immutable value type; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace polar::sim {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;
using Duration = std::chrono::nanoseconds;
// Polar stores timestamps with microsecond precision; it also keeps years past
// 2262 representable, unlike nanoseconds.
using SysMicros = std::chrono::sys_time<std::chrono::microseconds>;

// Parses an RFC 3339 timestamp; returns false when it has no explicit offset
// (Polar requires timezone-aware timestamps) or is malformed.
bool ParseTimestamp(std::string_view text, SysMicros* out);
// "2026-01-02T03:04:05.123456Z", as pydantic serializes a UTC datetime.
std::string FormatTimestamp(SysMicros t);

// "0", "250ms", "2s", "1m30s", "1h", "100us", "1.5s". Returns false on junk.
bool ParseDuration(std::string_view text, Duration* out);
std::string FormatDuration(Duration d);
double Seconds(Duration d);

// Multiplies Polar's fixed schedules. 1 is real time; 0.001 turns the 2 s
// first webhook retry into 2 ms.
class TimeScale {
 public:
  TimeScale() = default;
  explicit TimeScale(double factor) : factor_(factor) {}
  Duration operator()(Duration polar_time) const {
    return std::chrono::duration_cast<Duration>(polar_time * factor_);
  }
  double factor() const { return factor_; }

 private:
  double factor_ = 1.0;
};

}  // namespace polar::sim
