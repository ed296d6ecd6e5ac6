// Timers: how everything that waits (the scheduler's next arrival, think time
// between checkout steps, poll intervals, deadlines, watchdog pings, metric
// samples, retries) waits without blocking, sleeping or owning a thread.
//
// The daemon's EventLoop implements it (daemon/net/event_loop.h); tests use
// FakeTimers below, which fires callbacks as a FakeClock is advanced, so a
// test of a 60 s deadline runs in microseconds and counts exactly. Loop
// thread only: callbacks run on the thread that owns the implementation,
// never inside At(), Cancel() or the helpers, and may add or cancel timers
// (their own included).
//
// Two ways to use it: the primitive At()/Cancel() with ids (a scenario that
// keeps one id per flow), or the helpers Once()/After()/Every(), which return
// a Timer that owns the callback: destroying or re-assigning the Timer
// cancels it, so an object that holds its Timers cannot be called back after
// it is gone.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "exporters/clock.h"

namespace polar {

class Timer;

class Timers {
 public:
  using Id = uint64_t;
  static constexpr Id kNone = 0;  // never returned by At()

  virtual ~Timers() = default;
  // Runs `callback` once at or after `when` (a time in the past means "as
  // soon as possible", never inside this call). Returns an id for Cancel().
  virtual Id At(MonoTime when, std::function<void()> callback) = 0;
  // Cancelling an id that already fired, was cancelled or is kNone is a no-op.
  virtual void Cancel(Id id) = 0;
  // Whether `id` is waiting to fire (false once its callback has started).
  virtual bool Pending(Id id) const = 0;
  // The time deadlines are measured on (the steady clock, or a FakeClock).
  virtual MonoTime Now() const = 0;

  // The Timer must be kept: dropping it cancels the callback (hence
  // [[nodiscard]]); fire-and-forget work uses At().
  // `callback` once at `when`.
  [[nodiscard]] Timer Once(MonoTime when, std::function<void()> callback);
  // `callback` once, `delay` from now (zero: on the next dispatch, after the
  // current callback returns).
  [[nodiscard]] Timer After(Duration delay, std::function<void()> callback);
  // `callback` every `period`, the first time one period from now, until the
  // Timer is cancelled or destroyed. Deadlines follow a fixed grid (the last
  // deadline plus the period), so a late callback does not shift the ones
  // after it; when the loop has fallen more than a whole period behind, the
  // missed ticks are skipped, not run in a burst: the next is one period from
  // the late one.
  [[nodiscard]] Timer Every(Duration period, std::function<void()> callback);
};

// A callback scheduled through Timers::Once/After/Every, owned by its holder.
// Move-only; destroying or assigning over it cancels what it held.
class Timer {
 public:
  Timer() = default;
  ~Timer() { Cancel(); }
  Timer(Timer&& other) noexcept { *this = std::move(other); }
  Timer& operator=(Timer&& other) noexcept;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void Cancel();
  // A one-shot that has not fired yet, or a periodic one not cancelled.
  bool pending() const;

 private:
  friend class Timers;
  struct Periodic;

  Timers* timers_ = nullptr;
  Timers::Id id_ = Timers::kNone;       // a one-shot's
  std::shared_ptr<Periodic> periodic_;  // an Every()'s
};

// A Timers driven by a FakeClock, for single-threaded tests: nothing fires
// until the test calls AdvanceTo/AdvanceBy/RunDue, which move the clock
// timer by timer (a callback sees the clock at its own deadline) and run
// every callback that is due, including ones added by callbacks.
class FakeTimers final : public Timers {
 public:
  explicit FakeTimers(FakeClock& clock) : clock_(clock) {}

  Id At(MonoTime when, std::function<void()> callback) override {
    Id id = next_id_++;
    due_.emplace(Key{when, id}, std::move(callback));
    return id;
  }
  void Cancel(Id id) override {
    for (auto it = due_.begin(); it != due_.end(); ++it) {
      if (it->first.id == id) {
        due_.erase(it);
        return;
      }
    }
  }
  bool Pending(Id id) const override {
    for (const auto& [key, callback] : due_) {
      if (key.id == id) return true;
    }
    return false;
  }
  MonoTime Now() const override { return clock_.Now(); }

  // Moves the clock to `until` (never backwards), firing what falls due.
  void AdvanceTo(MonoTime until) {
    while (!due_.empty() && due_.begin()->first.when <= until) {
      auto it = due_.begin();
      if (it->first.when > clock_.Now())
        clock_.Advance(it->first.when - clock_.Now());
      std::function<void()> callback = std::move(it->second);
      due_.erase(it);
      callback();
    }
    if (until > clock_.Now()) clock_.Advance(until - clock_.Now());
  }
  void AdvanceBy(Duration d) { AdvanceTo(clock_.Now() + d); }
  // Fires what is due now (timers set for the past or the present),
  // including what those callbacks set for now.
  void RunDue() { AdvanceTo(clock_.Now()); }
  // One dispatch of a real loop: fires only the timers that were due now when
  // it was called; what their callbacks set for now waits for the next one
  // (how the loop keeps a re-arming callback from starving I/O).
  void Dispatch() {
    std::vector<Id> due;
    for (const auto& [key, callback] : due_) {
      if (key.when > clock_.Now()) break;
      due.push_back(key.id);
    }
    for (Id id : due) {
      for (auto it = due_.begin(); it != due_.end(); ++it) {
        if (it->first.id != id) continue;
        std::function<void()> callback = std::move(it->second);
        due_.erase(it);
        callback();
        break;
      }
    }
  }

  std::size_t pending() const { return due_.size(); }
  // The earliest deadline, or MonoTime::max() when nothing is pending.
  MonoTime next() const {
    return due_.empty() ? MonoTime::max() : due_.begin()->first.when;
  }

 private:
  struct Key {
    MonoTime when;
    Id id;
    bool operator<(const Key& o) const {
      return when != o.when ? when < o.when : id < o.id;
    }
  };
  FakeClock& clock_;
  std::map<Key, std::function<void()>> due_;
  Id next_id_ = 1;
};

}  // namespace polar
