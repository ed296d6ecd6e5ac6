// Timers: how a scenario waits (think time between checkout steps, poll
// intervals, completion deadlines) without blocking, sleeping or owning a
// thread.
//
// The daemon implements it on its EventLoop (daemon/net/loop_timers.h); tests
// use FakeTimers below, which fires callbacks as a FakeClock is advanced, so a
// test of a 60 s deadline runs in microseconds. Loop thread only: callbacks
// run on the thread that owns the implementation, never inside At() or
// Cancel(), and may add or cancel timers (their own included).
#pragma once

#include <cstdint>
#include <functional>
#include <map>

#include "exporters/clock.h"

namespace polar {

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
  // Fires what is due now (timers set for the past or the present).
  void RunDue() { AdvanceTo(clock_.Now()); }

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
