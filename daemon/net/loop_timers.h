// LoopTimers: the scenarios' Timers (scenarios/timers.h) on the daemon's
// EventLoop: one loop timer per scenario timer, so a flow's think time or a
// probe's next poll costs a heap entry, never a thread.
//
// Owned by App, which keeps it alive as long as any scenario; loop thread only
// (the EventLoop's rules). Callbacks run from the loop's timer dispatch, never
// inside At() or Cancel().
#pragma once

#include "daemon/net/event_loop.h"
#include "scenarios/timers.h"

namespace polar {

class LoopTimers final : public Timers {
 public:
  explicit LoopTimers(EventLoop& loop) : loop_(loop) {}
  Id At(MonoTime when, std::function<void()> callback) override {
    // EventLoop ids start at 1, so kNone (0) is never handed out.
    return loop_.AddTimer(when, std::move(callback));
  }
  void Cancel(Id id) override {
    if (id != kNone) loop_.Cancel(id);
  }

 private:
  EventLoop& loop_;
};

}  // namespace polar
