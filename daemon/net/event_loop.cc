#include "daemon/net/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>

namespace polar {
namespace {

std::system_error SysError(const char* what) {
  return std::system_error(errno, std::generic_category(), what);
}

// Sentinel fds in epoll_event.data: the loop's own descriptors are told apart
// from watched ones.
constexpr uint64_t kTimerTag = 1ULL << 62;
constexpr uint64_t kSignalTag = 1ULL << 61;
constexpr uint64_t kWakeTag = 1ULL << 60;
constexpr uint64_t kBatchedTag = 1ULL << 59;

MonoTime SteadyNow() { return std::chrono::steady_clock::now(); }

}  // namespace

EventLoop::EventLoop(TimerSource timers)
    : use_timerfd_(timers == TimerSource::kTimerFd) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw SysError("epoll_create1");
  // CLOCK_MONOTONIC is what std::chrono::steady_clock reads on Linux, so
  // deadlines computed from steady_clock can be armed as absolute timerfd times
  // without conversion.
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) throw SysError("timerfd_create");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw SysError("eventfd");
  batched_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (batched_fd_ < 0) throw SysError("epoll_create1");
  sigset_t empty;
  sigemptyset(&empty);
  signal_fd_ = signalfd(-1, &empty, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) throw SysError("signalfd");
  for (auto [fd, tag] :
       {std::pair{timer_fd_, kTimerTag}, std::pair{signal_fd_, kSignalTag},
        std::pair{wake_fd_, kWakeTag}}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0)
      throw SysError("epoll_ctl");
  }
  utilisation_since_ = SteadyNow();
}

EventLoop::~EventLoop() {
  for (int fd : {epoll_fd_, timer_fd_, signal_fd_, wake_fd_, batched_fd_}) {
    if (fd >= 0) close(fd);
  }
}

void EventLoop::Watch(int fd, uint32_t events, IoCallback callback, Wake wake) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = static_cast<uint64_t>(fd);
  auto& slot = watchers_[fd];
  bool known = slot != nullptr;
  if (known) graveyard_.push_back(std::move(slot));
  slot = std::make_unique<IoCallback>(std::move(callback));
  const bool batched = wake == Wake::kBatched;
  const bool was_batched = batched_.count(fd) > 0;
  if (known && was_batched != batched) {
    // Moving between the sets.
    epoll_ctl(was_batched ? batched_fd_ : epoll_fd_, EPOLL_CTL_DEL, fd,
              nullptr);
    known = false;
  }
  if (batched) {
    batched_.insert(fd);
  } else if (was_batched) {
    batched_.erase(fd);
  }
  const int set = batched ? batched_fd_ : epoll_fd_;
  // A closed fd leaves epoll by itself and its number can be reused (curl
  // closes sockets before telling us), so fall back to the other operation
  // instead of trusting our own bookkeeping.
  if (epoll_ctl(set, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0) {
    epoll_ctl(set, known ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
  }
}

bool EventLoop::Modify(int fd, uint32_t events) {
  if (watchers_.find(fd) == watchers_.end()) return false;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = static_cast<uint64_t>(fd);
  const int set = batched_.count(fd) ? batched_fd_ : epoll_fd_;
  if (epoll_ctl(set, EPOLL_CTL_MOD, fd, &ev) < 0) {
    epoll_ctl(set, EPOLL_CTL_ADD, fd, &ev);
  }
  return true;
}

void EventLoop::Unwatch(int fd) {
  auto it = watchers_.find(fd);
  if (it == watchers_.end()) return;
  graveyard_.push_back(std::move(it->second));
  watchers_.erase(it);
  const bool batched = batched_.erase(fd) > 0;
  epoll_ctl(batched ? batched_fd_ : epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

void EventLoop::NestBatched(bool nest) {
  if (nest == batched_nested_) return;
  batched_nested_ = nest;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kBatchedTag;
  epoll_ctl(epoll_fd_, nest ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, batched_fd_, &ev);
}

void EventLoop::DispatchBatched() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  const int n = epoll_wait(batched_fd_, events, kMaxEvents, 0);
  for (int i = 0; i < n; ++i) {
    auto it = watchers_.find(static_cast<int>(events[i].data.u64));
    if (it == watchers_.end()) continue;
    IoCallback* callback = it->second.get();
    (*callback)(events[i].events);
  }
}

EventLoop::TimerId EventLoop::At(MonoTime deadline, Callback callback) {
  TimerId id = next_timer_id_++;
  timers_.push(Deadline{deadline, id});
  timer_callbacks_.emplace(id, std::move(callback));
  if (use_timerfd_ && deadline < armed_deadline_) ArmTimerFd();
  return id;
}

void EventLoop::Cancel(TimerId id) {
  // Lazy deletion: the heap entry stays until it surfaces; only the callback is
  // dropped.
  timer_callbacks_.erase(id);
}

void EventLoop::ArmTimerFd() {
  while (!timers_.empty() && timer_callbacks_.count(timers_.top().id) == 0)
    timers_.pop();
  itimerspec spec{};
  if (timers_.empty()) {
    armed_deadline_ = MonoTime::max();
  } else {
    armed_deadline_ = timers_.top().deadline;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  armed_deadline_.time_since_epoch())
                  .count();
    if (ns <= 0) ns = 1;  // an all-zero it_value would disarm the timer
    spec.it_value.tv_sec = ns / 1'000'000'000;
    spec.it_value.tv_nsec = ns % 1'000'000'000;
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

MonoTime EventLoop::NextDeadline() {
  while (!timers_.empty() && timer_callbacks_.count(timers_.top().id) == 0)
    timers_.pop();
  return timers_.empty() ? MonoTime::max() : timers_.top().deadline;
}

void EventLoop::RunDueTimers(MonoTime now) {
  if (use_timerfd_) {
    // One read returns (and clears) every expiration; a second would only
    // cost a syscall to learn EAGAIN.
    uint64_t expirations;
    [[maybe_unused]] auto n = read(timer_fd_, &expirations, sizeof expirations);
  }
  // Only timers due at entry run in this pass, so a callback that re-arms for
  // "now" cannot starve the I/O watchers.
  std::vector<Deadline> due;
  while (!timers_.empty() && timers_.top().deadline <= now) {
    due.push_back(timers_.top());
    timers_.pop();
  }
  armed_deadline_ =
      MonoTime::min();  // force a re-arm below even if nothing new was added
  for (const Deadline& timer : due) {
    // Looked up as it runs: a callback earlier in this pass may have
    // cancelled it (a runner's override ending re-arms its arrival timer).
    auto it = timer_callbacks_.find(timer.id);
    if (it == timer_callbacks_.end()) continue;
    Callback callback = std::move(it->second);
    timer_callbacks_.erase(it);
    // Lateness when the callback really starts: a timer due in the same pass
    // as a slow callback before it is late by that callback too.
    if (lag_observer_) lag_observer_(SteadyNow() - timer.deadline);
    callback();
  }
  if (use_timerfd_) ArmTimerFd();
}

void EventLoop::OnSignal(int signo, Callback callback) {
  OnSignalInfo(signo, [callback = std::move(callback)](const SignalInfo&) {
    callback();
  });
}

void EventLoop::OnSignalInfo(int signo, SignalCallback callback) {
  signal_handlers_[signo] = std::move(callback);
  sigset_t mask;
  sigemptyset(&mask);
  for (const auto& [sig, unused] : signal_handlers_) sigaddset(&mask, sig);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signalfd(signal_fd_, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

void EventLoop::DrainSignals() {
  signalfd_siginfo info;
  while (read(signal_fd_, &info, sizeof info) ==
         static_cast<ssize_t>(sizeof info)) {
    auto it = signal_handlers_.find(static_cast<int>(info.ssi_signo));
    if (it != signal_handlers_.end()) {
      it->second(SignalInfo{info.ssi_code, static_cast<int>(info.ssi_pid),
                            info.ssi_int});
    }
  }
}

void EventLoop::Post(Callback callback) {
  // No eventfd write: Post() runs on the loop thread, so the loop is either
  // inside a callback (it drains posted_ before it sleeps again) or not yet
  // in Run() (whose first wait does not block while posted_ has work). The
  // write and the read that undid it were two syscalls and one extra
  // epoll_wait return for every Post, and the HTTPS client posts its send
  // once per loop turn.
  posted_.push_back(std::move(callback));
}

void EventLoop::DrainPosted() {
  // Callbacks may post more; those run on the next pass.
  std::vector<Callback> batch;
  batch.swap(posted_);
  for (auto& callback : batch) callback();
}

void EventLoop::Run() {
  running_ = true;
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (running_) {
    int n;
    if (use_timerfd_) {
      // No batching on this path (kernels before 5.11): batched fds wake the
      // loop like the others.
      NestBatched(!batched_.empty());
      n = epoll_wait(epoll_fd_, events, kMaxEvents, posted_.empty() ? -1 : 0);
    } else {
      // The next timer is epoll_pwait2's timeout (nanoseconds), so a timer
      // costs no syscall of its own: at 20,000 arrivals/s the timerfd's
      // settime + read were 2 of the 5 syscalls per request, and settime
      // alone 23 % of the daemon's CPU on a paravirtualised VM (perf).
      timespec wait{};
      timespec* timeout = &wait;
      const MonoTime deadline = NextDeadline();
      if (!posted_.empty()) {
        // Zero: posted work runs after this poll.
      } else if (deadline == MonoTime::max()) {
        timeout = nullptr;
      } else {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            deadline - SteadyNow())
                            .count();
        if (ns > 0) {
          wait.tv_sec = ns / 1'000'000'000;
          wait.tv_nsec = ns % 1'000'000'000;
        }
      }
      // Batched fds may wait for a timer due within the window; with none,
      // they wake the loop themselves.
      if (!batched_.empty()) {
        NestBatched(
            timeout == nullptr ||
            (posted_.empty() && wait.tv_sec * 1'000'000'000LL + wait.tv_nsec >
                                    kBatchWindow.count()));
      }
      n = epoll_pwait2(epoll_fd_, events, kMaxEvents, timeout, nullptr);
      if (n < 0 && errno == ENOSYS) {
        // Linux before 5.11: timers through the timerfd instead.
        use_timerfd_ = true;
        ArmTimerFd();
        continue;
      }
    }
    MonoTime woke = SteadyNow();
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    // Due timers first: an arrival's send should not wait behind a batch of
    // responses (its lag is measured either way).
    if (!use_timerfd_ && NextDeadline() <= woke) RunDueTimers(woke);
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == kTimerTag) {
        RunDueTimers(SteadyNow());
      } else if (tag == kSignalTag) {
        DrainSignals();
      } else if (tag == kWakeTag) {
        uint64_t count;  // Stop() from another thread
        [[maybe_unused]] auto r = read(wake_fd_, &count, sizeof count);
      } else if (tag == kBatchedTag) {
        // Handled below, with the batched fds that are ready anyway.
      } else {
        auto it = watchers_.find(static_cast<int>(tag));
        if (it == watchers_.end()) continue;
        IoCallback* callback = it->second.get();
        (*callback)(events[i].events);
      }
    }
    // Batched fds after the timers and the others: an arrival's send is not
    // held up by the responses that waited for its wake-up.
    if (!batched_.empty()) DispatchBatched();
    if (!posted_.empty()) DrainPosted();
    graveyard_.clear();
    busy_ += SteadyNow() - woke;
  }
}

void EventLoop::Stop() {
  running_ = false;
  uint64_t one = 1;
  [[maybe_unused]] auto n = write(wake_fd_, &one, sizeof one);
}

double EventLoop::TakeUtilisation() {
  MonoTime now = SteadyNow();
  Duration total = now - utilisation_since_;
  double share = total.count() > 0 ? ToSeconds(busy_) / ToSeconds(total) : 0.0;
  busy_ = Duration::zero();
  utilisation_since_ = now;
  return share;
}

}  // namespace polar
