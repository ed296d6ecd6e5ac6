#include "sim/base/clock.h"

#include <algorithm>

namespace polar::sim {
namespace {

class SystemClocks final : public Clock {
 public:
  SteadyTime Now() const override { return SteadyClock::now(); }
  SysMicros WallNow() const override {
    return std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now());
  }
  void WaitUntil(std::condition_variable& cv,
                 std::unique_lock<std::mutex>& lock,
                 SteadyTime deadline) const override {
    cv.wait_until(lock, deadline);
  }
};

}  // namespace

const Clock& RealClock() {
  static const SystemClocks clock;
  return clock;
}

FakeClock::FakeClock()
    // Far from the epoch, so "a time before the first event" is representable.
    : now_(SteadyTime{} + std::chrono::hours(1000)),
      wall_(SysMicros(std::chrono::sys_days(std::chrono::year{2027} /
                                            std::chrono::January / 1))) {}

SteadyTime FakeClock::Now() const {
  std::lock_guard lock(mutex_);
  return now_;
}

SysMicros FakeClock::WallNow() const {
  std::lock_guard lock(mutex_);
  return wall_;
}

void FakeClock::WaitUntil(std::condition_variable& cv,
                          std::unique_lock<std::mutex>& lock,
                          SteadyTime deadline) const {
  {
    // Registering and reading the time in one critical section: an Advance()
    // either sees this waiter (and wakes it through its mutex, which it holds
    // until cv.wait releases it) or happened before, and then the time read
    // here is already past it.
    std::lock_guard own(mutex_);
    if (now_ >= deadline) return;
    waiters_.push_back({lock.mutex(), &cv});
  }
  cv.wait(lock);
  std::lock_guard own(mutex_);
  auto it = std::find_if(
      waiters_.begin(), waiters_.end(),
      [&](const Waiter& w) { return w.cv == &cv && w.mutex == lock.mutex(); });
  if (it != waiters_.end()) waiters_.erase(it);
}

void FakeClock::Advance(Duration d) {
  std::vector<Waiter> wake;
  {
    std::lock_guard own(mutex_);
    now_ += d;
    wall_ += std::chrono::duration_cast<std::chrono::microseconds>(d);
    wake = waiters_;
  }
  for (const Waiter& w : wake) {
    std::lock_guard lock(*w.mutex);
    w.cv->notify_all();
  }
}

}  // namespace polar::sim
