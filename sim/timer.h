// TimerThread: one thread that runs short callbacks at given times. polar-sim
// uses it to resume held HTTP responses (injected latency, stalls, confirm's
// processing time), to ping SSE streams and to end outages, so no HTTP thread
// ever sleeps.
//
// Schedule() and Stop() may be called from any thread, including from a
// callback. Callbacks run one at a time on the timer thread and must not block:
// they only flip state and resume connections. Callbacks still pending at
// Stop() are dropped without running.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "sim/clock.h"

namespace polar::sim {

class TimerThread {
 public:
  TimerThread();
  ~TimerThread();
  TimerThread(const TimerThread&) = delete;
  TimerThread& operator=(const TimerThread&) = delete;

  void Schedule(SteadyClock::time_point when, std::function<void()> callback);
  void After(Duration delay, std::function<void()> callback) {
    Schedule(SteadyClock::now() + delay, std::move(callback));
  }
  void Stop();
  std::size_t pending() const;

 private:
  struct Entry {
    SteadyClock::time_point when;
    uint64_t seq;
    std::function<void()> callback;
    bool operator>(const Entry& o) const {
      return when != o.when ? when > o.when : seq > o.seq;
    }
  };
  void Run();

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  uint64_t seq_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace polar::sim
