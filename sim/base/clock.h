// Clock: where polar-sim reads the time and waits for it. Everything in
// polar-sim that looks at the time (checkout expiry, event visibility,
// rate-limit windows, held responses, job times, webhook backoff, stream
// lifetimes) takes a Clock, so the unit tests run on a FakeClock: time moves
// only when a test advances it, and nothing sleeps.
//
// RealClock() is the process-wide steady and system clock. FakeClock starts at
// a fixed instant and moves only in Advance(); threads waiting in WaitUntil()
// wake when it passes their deadline.
//
// Thread-safe: every method may be called from any thread. WaitUntil() must be
// called with `lock` held on the mutex that guards the waiter's condition, and
// Advance() must not be called while holding such a mutex (it takes each
// waiter's mutex to wake it without a lost wake-up).
#pragma once

#include <condition_variable>
#include <mutex>
#include <vector>

#include "sim/base/time.h"

namespace polar::sim {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time: deadlines, windows, ages.
  virtual SteadyTime Now() const = 0;
  // Wall time, for the timestamps Polar puts in bodies.
  virtual SysMicros WallNow() const = 0;
  // Blocks until `cv` is notified or Now() reaches `deadline` (spurious
  // wake-ups possible, as with std::condition_variable: callers loop).
  virtual void WaitUntil(std::condition_variable& cv,
                         std::unique_lock<std::mutex>& lock,
                         SteadyTime deadline) const = 0;
};

// The real clocks (steady_clock and system_clock).
const Clock& RealClock();

class FakeClock : public Clock {
 public:
  // Starts at a steady time far from zero and at 2027-01-01T00:00:00Z.
  FakeClock();
  SteadyTime Now() const override;
  SysMicros WallNow() const override;
  void WaitUntil(std::condition_variable& cv,
                 std::unique_lock<std::mutex>& lock,
                 SteadyTime deadline) const override;
  // Moves both clocks forward and wakes every waiter.
  void Advance(Duration d);

 private:
  struct Waiter {
    std::mutex* mutex;
    std::condition_variable* cv;
  };
  mutable std::mutex mutex_;
  SteadyTime now_;
  SysMicros wall_;
  mutable std::vector<Waiter> waiters_;
};

}  // namespace polar::sim
