// Timers' handles (scenarios/timers.h): Once/After/Every on FakeTimers, the
// way every waiting part of the daemon uses them. Exact times, no real clock.
#include "scenarios/timers.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace polar {
namespace {

using namespace std::chrono_literals;

struct Rig {
  FakeClock clock;
  FakeTimers timers{clock};
  MonoTime start = clock.Now();
  std::vector<Duration> fired;  // since start
  std::function<void()> Record() {
    return [this] { fired.push_back(clock.Now() - start); };
  }
};

TEST(Timer, OnceAndAfterFireOnceAtTheirTime) {
  Rig rig;
  Timer at = rig.timers.Once(rig.start + 30ms, rig.Record());
  Timer after = rig.timers.After(10ms, rig.Record());
  EXPECT_TRUE(at.pending());
  EXPECT_TRUE(after.pending());
  rig.timers.AdvanceBy(1s);
  EXPECT_EQ(rig.fired, (std::vector<Duration>{10ms, 30ms}));
  EXPECT_FALSE(at.pending());
  EXPECT_FALSE(after.pending());
}

TEST(Timer, DestroyingOrReassigningTheHandleCancelsIt) {
  Rig rig;
  { Timer gone = rig.timers.After(10ms, rig.Record()); }
  Timer replaced = rig.timers.After(20ms, rig.Record());
  replaced = rig.timers.After(40ms, rig.Record());
  Timer cancelled = rig.timers.Every(5ms, rig.Record());
  cancelled.Cancel();
  EXPECT_FALSE(cancelled.pending());
  rig.timers.AdvanceBy(1s);
  EXPECT_EQ(rig.fired, (std::vector<Duration>{40ms}));
  EXPECT_EQ(rig.timers.pending(), 0u) << "nothing left behind";
}

TEST(Timer, AMovedHandleKeepsItsTimer) {
  Rig rig;
  Timer first = rig.timers.After(10ms, rig.Record());
  Timer second = std::move(first);
  EXPECT_FALSE(first.pending());
  EXPECT_TRUE(second.pending());
  rig.timers.AdvanceBy(20ms);
  EXPECT_EQ(rig.fired.size(), 1u);
}

TEST(Timer, EveryFiresOnAFixedGridFromOnePeriodOn) {
  Rig rig;
  Timer every = rig.timers.Every(100ms, rig.Record());
  rig.timers.AdvanceBy(450ms);
  EXPECT_EQ(rig.fired, (std::vector<Duration>{100ms, 200ms, 300ms, 400ms}));
  EXPECT_TRUE(every.pending());
}

TEST(Timer, ALateTickDoesNotShiftTheGridAndMissedTicksAreSkipped) {
  Rig rig;
  Timer every = rig.timers.Every(100ms, rig.Record());
  rig.timers.AdvanceBy(100ms);  // fires at 100
  // The loop hangs for 350 ms: the clock moves, nothing is dispatched.
  rig.clock.Advance(350ms);
  rig.timers.RunDue();  // the tick due at 200 runs late, at 450, once
  rig.timers.AdvanceTo(rig.start + 1s);
  // 200, 300 and 400 are not made up in a burst: one late tick at 450, then
  // the next a period after it, and the grid from there.
  EXPECT_EQ(rig.fired, (std::vector<Duration>{100ms, 450ms, 550ms, 650ms, 750ms,
                                              850ms, 950ms}));
}

TEST(Timer, ALateTickWithinAPeriodKeepsTheGrid) {
  Rig rig;
  Timer every = rig.timers.Every(100ms, rig.Record());
  rig.timers.AdvanceBy(100ms);
  rig.clock.Advance(130ms);  // the tick due at 200 runs at 230
  rig.timers.RunDue();
  rig.timers.AdvanceTo(rig.start + 400ms);
  EXPECT_EQ(rig.fired, (std::vector<Duration>{100ms, 230ms, 300ms, 400ms}));
}

TEST(Timer, ACallbackMayCancelOrDestroyItsOwnTimer) {
  Rig rig;
  int ticks = 0;
  Timer every;
  every = rig.timers.Every(10ms, [&] {
    if (++ticks == 3) every.Cancel();
  });
  auto owner = std::make_unique<Timer>();
  int owned_ticks = 0;
  *owner = rig.timers.Every(10ms, [&] {
    ++owned_ticks;
    owner.reset();  // the object that holds the timer goes away
  });
  rig.timers.AdvanceBy(1s);
  EXPECT_EQ(ticks, 3);
  EXPECT_EQ(owned_ticks, 1);
  EXPECT_EQ(rig.timers.pending(), 0u);
}

TEST(Timer, AfterZeroRunsOnTheNextDispatchNotInsideTheCall) {
  Rig rig;
  bool ran = false;
  Timer t = rig.timers.After(Duration::zero(), [&] { ran = true; });
  EXPECT_FALSE(ran);
  rig.timers.RunDue();
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace polar
