#include "scenarios/timers.h"

#include <algorithm>
#include <utility>

namespace polar {

// An Every()'s state, shared by its Timer and the pending callback: the
// callback may destroy the Timer (its owner going away) while it runs.
struct Timer::Periodic {
  Timers* timers = nullptr;
  Duration period{};
  std::function<void()> callback;
  MonoTime due{};
  Timers::Id id = Timers::kNone;
  bool active = true;

  static void Fire(const std::shared_ptr<Periodic>& self) {
    self->id = Timers::kNone;
    if (!self->active) return;
    self->callback();
    if (!self->active) return;  // cancelled by its own callback
    MonoTime next = self->due + self->period;
    const MonoTime now = self->timers->Now();
    if (next <= now) next = now + self->period;  // fell behind: skip, no burst
    Arm(self, next);
  }
  static void Arm(const std::shared_ptr<Periodic>& self, MonoTime when) {
    self->due = when;
    self->id = self->timers->At(when, [self] { Fire(self); });
  }
};

Timer Timers::Once(MonoTime when, std::function<void()> callback) {
  Timer timer;
  timer.timers_ = this;
  timer.id_ = At(when, std::move(callback));
  return timer;
}

Timer Timers::After(Duration delay, std::function<void()> callback) {
  return Once(Now() + delay, std::move(callback));
}

Timer Timers::Every(Duration period, std::function<void()> callback) {
  Timer timer;
  timer.timers_ = this;
  timer.periodic_ = std::make_shared<Timer::Periodic>();
  timer.periodic_->timers = this;
  // A zero period would fire forever within one dispatch.
  timer.periodic_->period = std::max(period, Duration(1));
  timer.periodic_->callback = std::move(callback);
  Timer::Periodic::Arm(timer.periodic_, Now() + timer.periodic_->period);
  return timer;
}

Timer& Timer::operator=(Timer&& other) noexcept {
  if (this != &other) {
    Cancel();
    timers_ = std::exchange(other.timers_, nullptr);
    id_ = std::exchange(other.id_, Timers::kNone);
    periodic_ = std::move(other.periodic_);
  }
  return *this;
}

void Timer::Cancel() {
  if (periodic_) {
    periodic_->active = false;
    // Drops the pending callback, and with it its share of the state.
    if (periodic_->id != Timers::kNone) timers_->Cancel(periodic_->id);
    periodic_.reset();
  } else if (id_ != Timers::kNone) {
    timers_->Cancel(id_);
  }
  id_ = Timers::kNone;
}

bool Timer::pending() const {
  if (periodic_) return periodic_->active;
  return id_ != Timers::kNone && timers_->Pending(id_);
}

}  // namespace polar
