// TimerThread: one thread that runs short callbacks at given times on a Clock.
// polar-sim uses it to resume held HTTP responses (injected latency, stalls,
// confirm's processing time), to ping and end SSE streams, to sweep expired
// checkouts and to end outages, so no HTTP thread ever sleeps.
//
// Schedule() and Stop() may be called from any thread, including from a
// callback. Callbacks run one at a time on the timer thread and must not block:
// they only flip state and resume connections. Callbacks still pending at
// Stop() are dropped without running. Settle() (for tests on a FakeClock)
// returns once every callback that is due has run.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "sim/base/clock.h"

namespace polar::sim {

class TimerThread {
 public:
  explicit TimerThread(const Clock& clock = RealClock());
  ~TimerThread();
  TimerThread(const TimerThread&) = delete;
  TimerThread& operator=(const TimerThread&) = delete;

  void Schedule(SteadyTime when, std::function<void()> callback);
  void After(Duration delay, std::function<void()> callback) {
    Schedule(clock_.Now() + delay, std::move(callback));
  }
  void Stop();
  std::size_t pending() const;
  const Clock& clock() const { return clock_; }
  // Blocks until no callback is due or running. With a real clock more may
  // fall due meanwhile; tests use it on a FakeClock.
  void Settle();
  bool IsSettled() const {
    std::lock_guard lock(mutex_);
    return SettledLocked();
  }

 private:
  struct Entry {
    SteadyTime when;
    uint64_t seq;
    std::function<void()> callback;
    bool operator>(const Entry& o) const {
      return when != o.when ? when > o.when : seq > o.seq;
    }
  };
  void Run();
  bool SettledLocked() const;

  const Clock& clock_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::condition_variable settled_cv_;
  bool running_callback_ = false;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  uint64_t seq_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace polar::sim
