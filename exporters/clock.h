// Clock: the time source every piece of timing math takes as a parameter.
// It sits in exporters/, the lowest layer, because every layer measures time.
//
// Owned by whoever builds the object graph (the daemon's App, or a test).
// SystemClock is safe from any thread; FakeClock is for single-threaded tests
// that advance time instead of sleeping. Monotonic time (MonoTime) measures
// latency and schedules arrivals; wall time (WallTime) is only for timestamps
// that leave the process (event timestamps, JSON summaries) and for weekly
// schedule windows.
#pragma once

#include <chrono>

namespace polar {

using Duration = std::chrono::nanoseconds;
using MonoTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

inline double ToSeconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}
inline Duration FromSeconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime Now() const = 0;
  virtual WallTime WallNow() const = 0;
};

class SystemClock final : public Clock {
 public:
  MonoTime Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
};

// A clock that moves only when told to. Monotonic and wall time advance
// together.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(
      WallTime wall_start = WallTime{std::chrono::seconds(1'700'000'000)})
      : wall_start_(wall_start) {}
  MonoTime Now() const override { return MonoTime{} + elapsed_; }
  WallTime WallNow() const override {
    return wall_start_ +
           std::chrono::duration_cast<WallTime::duration>(elapsed_);
  }
  void Advance(Duration d) { elapsed_ += d; }

 private:
  WallTime wall_start_;
  Duration elapsed_{Duration::zero()};
};

}  // namespace polar
