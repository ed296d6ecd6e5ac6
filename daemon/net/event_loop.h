// EventLoop: the one loop that owns all of the daemon's I/O: epoll for file
// descriptors, its timeout for every timer (a timerfd on kernels before 5.11),
// and a signalfd for signals (in the
// style of redis ae.c and curl's ephiperfifo).
//
// Owned by App; every method must be called on the thread that calls Run(),
// except Stop(), which is safe from any thread. Callbacks run on that thread,
// must not block, and may add or remove fds and timers (including their own).
// The loop is the daemon's Timers (scenarios/timers.h): code that waits takes
// a Timers& and uses Once()/After()/Every(), so its tests run on FakeTimers.
// Post() is for the loop thread too: it defers work to after the current
// callback (no re-entrancy).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "exporters/clock.h"
#include "scenarios/timers.h"

namespace polar {

class EventLoop final : public Timers {
 public:
  using IoCallback = std::function<void(uint32_t epoll_events)>;
  using Callback = std::function<void()>;
  using TimerId = uint64_t;
  // Who sent a signal and how (from its signalfd_siginfo).
  struct SignalInfo {
    int code = 0;    // si_code: SI_USER from kill(2), SI_QUEUE from sigqueue(3)
    int sender = 0;  // si_pid
    int value = 0;   // si_value.sival_int (SI_QUEUE only)
  };
  using SignalCallback = std::function<void(const SignalInfo&)>;
  using LagObserver = std::function<void(Duration late)>;

  // How timers wake the loop. kEpollTimeout: the earliest deadline is
  // epoll_pwait2's timeout, no syscall per timer; it falls back to kTimerFd
  // by itself on kernels before 5.11. kTimerFd: one timerfd re-armed for the
  // earliest deadline (tests use it to cover that path).
  enum class TimerSource { kEpollTimeout, kTimerFd };

  // Throws std::system_error if the kernel refuses epoll/timerfd/eventfd: that
  // is a start-up failure, reported by main, not a runtime path.
  explicit EventLoop(TimerSource timers = TimerSource::kEpollTimeout);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // When a watched fd's readiness runs its callback. kNow: it wakes the loop.
  // kBatched: it wakes the loop only when no timer is due within
  // kBatchWindow; otherwise it is handled at that timer's wake-up, after the
  // timers. For sockets whose reader dates what it receives by the kernel's
  // receive timestamp (SO_TIMESTAMPNS), so handling them late changes no
  // measurement, only the number of wake-ups: at 1,000 arrivals/s a response
  // read at the next arrival's wake-up instead of its own halves them (on
  // this project's 2-core VM a wake-up costs ~10-15 us of CPU, more than
  // the request's own work).
  enum class Wake { kNow, kBatched };
  static constexpr Duration kBatchWindow = std::chrono::milliseconds(2);

  // Watches fd for `events` (EPOLLIN/EPOLLOUT...). Calling again for the same
  // fd replaces all three.
  void Watch(int fd, uint32_t events, IoCallback callback,
             Wake wake = Wake::kNow);
  // Changes only the event mask of a watched fd, keeping its callback and
  // Wake (no allocation). Returns false if fd is not watched.
  bool Modify(int fd, uint32_t events);
  void Unwatch(int fd);

  // Timers: `callback` once at or after `deadline` (steady clock); the id is
  // for Cancel(). A timer cancelled by a callback earlier in the same
  // dispatch does not run. Prefer the Timer handles (Once/After/Every).
  TimerId At(MonoTime deadline, Callback callback) override;
  // Cancelling an id that already fired or was cancelled is a no-op.
  void Cancel(TimerId id) override;
  bool Pending(TimerId id) const override {
    return timer_callbacks_.count(id) > 0;
  }
  MonoTime Now() const override { return std::chrono::steady_clock::now(); }
  // The same as At() and After(), returning the bare id.
  TimerId AddTimer(MonoTime deadline, Callback callback) {
    return At(deadline, std::move(callback));
  }
  TimerId AddTimerAfter(Duration delay, Callback callback) {
    return At(Now() + delay, std::move(callback));
  }

  // Blocks `signo` for the process and delivers it through the loop's signalfd.
  void OnSignal(int signo, Callback callback);
  // The same, telling the callback who sent it (SIGHUP answers its sender).
  void OnSignalInfo(int signo, SignalCallback callback);

  // Runs `callback` on the loop soon, after the current callback returns; never
  // re-entrantly.
  void Post(Callback callback);

  // Runs until Stop(). Returns normally; errors inside callbacks are theirs to
  // count.
  void Run();
  void Stop();

  // Called for every timer that fires with how late it fired (loop lag).
  void SetLagObserver(LagObserver observer) {
    lag_observer_ = std::move(observer);
  }

  // Share of wall time spent in callbacks rather than waiting in epoll, since
  // the last call.
  double TakeUtilisation();

 private:
  struct Deadline {
    MonoTime deadline;
    TimerId id;
    bool operator>(const Deadline& other) const {
      return deadline != other.deadline ? deadline > other.deadline
                                        : id > other.id;
    }
  };

  void ArmTimerFd();
  // The earliest live timer's deadline (cancelled ones are dropped on the
  // way), or MonoTime::max().
  MonoTime NextDeadline();
  // Runs the timers due at `now`, not those a callback adds for now.
  void RunDueTimers(MonoTime now);
  void DrainSignals();
  void DrainPosted();
  // Runs the callbacks of batched fds that are ready (one non-blocking
  // epoll_wait on their set).
  void DispatchBatched();
  // Puts the batched set into the main epoll (its readiness wakes the loop)
  // or takes it out, as the next timer is far or near.
  void NestBatched(bool nest);

  int epoll_fd_ = -1;
  // Timers are epoll_pwait2's timeout; the timerfd only on kernels without
  // it (before 5.11), found out at the first wait.
  bool use_timerfd_ = false;
  int timer_fd_ = -1;
  int signal_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes epoll_wait from any thread
  // The Wake::kBatched fds live in their own epoll set, itself in the main
  // set only while batched_nested_.
  int batched_fd_ = -1;
  std::unordered_set<int> batched_;
  bool batched_nested_ = false;
  std::atomic<bool> running_{false};
  // unique_ptr so a callback can Unwatch itself while running: the watcher
  // moves to graveyard_, which is emptied after the current epoll batch,
  // instead of being destroyed mid-call.
  std::unordered_map<int, std::unique_ptr<IoCallback>> watchers_;
  std::vector<std::unique_ptr<IoCallback>> graveyard_;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>>
      timers_;
  std::unordered_map<TimerId, Callback> timer_callbacks_;
  TimerId next_timer_id_ = 1;
  MonoTime armed_deadline_ = MonoTime::max();
  std::unordered_map<int, SignalCallback> signal_handlers_;
  std::vector<Callback> posted_;
  LagObserver lag_observer_;
  Duration busy_{0};
  MonoTime utilisation_since_;
};

}  // namespace polar
