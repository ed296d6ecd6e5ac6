// ScenarioRunner on FakeTimers with a fake transport: Retry-After pauses,
// in-flight caps, timer slack and reconfiguration without losing counters.
// Time moves only when a test advances it, so every count and every lateness
// below is exact.
#include "daemon/schedule/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using namespace std::chrono_literals;

// Answers on the next dispatch (never inside Send), at the same instant, with
// whatever `answer` says; with hold = true it keeps the callbacks until
// Release().
class LoopTransport final : public Transport {
 public:
  LoopTransport(Timers& timers, const Clock& clock)
      : timers_(timers), clock_(clock) {}
  std::function<void(Response&)> answer = [](Response& r) { r.status = 200; };
  bool hold = false;
  int sent = 0;

  void Send(Request request, ResponseCallback done) override {
    ++sent;
    Response r;
    r.intended = request.intended;
    r.sent = clock_.Now();
    if (hold) {
      held_.emplace_back(std::move(r), std::move(done));
      return;
    }
    timers_.At(clock_.Now(),
               [this, r = std::move(r), done = std::move(done)]() mutable {
                 r.done = clock_.Now();
                 answer(r);
                 done(std::move(r));
               });
  }
  void Release() {
    for (auto& [r, done] : held_) {
      r.done = clock_.Now();
      answer(r);
      done(std::move(r));
    }
    held_.clear();
  }

 private:
  Timers& timers_;
  const Clock& clock_;
  std::vector<std::pair<Response, ResponseCallback>> held_;
};

class FakeScenario final : public Scenario {
 public:
  FakeScenario(Transport& transport, const Clock& clock)
      : transport_(transport), clock_(clock) {}
  const std::string& name() const override { return name_; }
  void Start(const Arrival& arrival) override {
    ++in_flight_;
    starts.push_back(arrival.intended);
    started_at.push_back(clock_.Now());
    Request r;
    r.intended = arrival.intended;
    transport_.Send(std::move(r), [this](Response&& response) {
      --in_flight_;
      statuses.push_back(response.status);
    });
  }
  std::size_t in_flight() const override { return in_flight_; }
  std::vector<MonoTime> starts;      // intended
  std::vector<MonoTime> started_at;  // when Start() ran
  std::vector<long> statuses;

 private:
  std::string name_ = "fake";
  Transport& transport_;
  const Clock& clock_;
  std::size_t in_flight_ = 0;
};

struct RunnerRig {
  prometheus::Registry registry;
  Metrics metrics{registry};
  FakeClock clock;
  FakeTimers timers{clock};
  LoopTransport transport{timers, clock};
  RetryAfterGate gate{transport};
  FakeScenario scenario{gate, clock};
  ScenarioSeries& series = metrics.Scenario("fake");

  double Dropped(DropReason reason) {
    return series.dropped[static_cast<std::size_t>(reason)]->Value();
  }
  // Runs every timer due up to now + d, inclusive.
  void RunFor(Duration d) { timers.AdvanceBy(d); }
};

using testing::ConstantPlan;

TEST(ScenarioRunner, A429WithRetryAfterPausesSendingAndCountsWhatItDidNotSend) {
  RunnerRig rig;
  bool first = true;
  rig.transport.answer = [&](Response& r) {
    if (first) {
      r.status = 429;
      r.retry_after = 300ms;
      first = false;
    } else {
      r.status = 200;
    }
  };
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(100), RunnerLimits{});
  rig.gate.set_runner(&runner);
  const MonoTime start = rig.clock.Now();
  runner.Start(start);
  rig.RunFor(600ms);
  runner.Stop();
  const double arrivals = rig.series.arrivals->Value();
  const double dropped = rig.Dropped(DropReason::kRetryAfter);
  // 100/s for 0.6 s, both ends included: 61 arrivals, at 0, 10, ..., 600 ms.
  // The first is answered at once with 429 and Retry-After 300 ms: the 29
  // intended at 10 ... 290 ms are counted as dropped; from 300 ms on all go.
  EXPECT_EQ(arrivals, 61);
  EXPECT_EQ(dropped, 29);
  // Every arrival is either sent or counted: none vanished.
  EXPECT_EQ(arrivals, dropped + rig.transport.sent);
  ASSERT_EQ(rig.scenario.starts.size(), 32u);
  EXPECT_EQ(rig.scenario.starts[0], start);
  EXPECT_EQ(rig.scenario.starts[1], start + 300ms);
  EXPECT_EQ(rig.scenario.starts.back(), start + 600ms);
}

TEST(ScenarioRunner, RetryAfterIsIgnoredWhenTheScenarioSaysSo) {
  RunnerRig rig;
  rig.transport.answer = [](Response& r) {
    r.status = 429;
    r.retry_after = 10s;
  };
  RunnerLimits limits;
  limits.honour_retry_after = false;
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(100), limits);
  rig.gate.set_runner(&runner);
  runner.Start(rig.clock.Now());
  rig.RunFor(300ms);
  runner.Stop();
  EXPECT_EQ(rig.Dropped(DropReason::kRetryAfter), 0);
  EXPECT_EQ(rig.transport.sent, 31);  // 0, 10, ..., 300 ms: every one
}

TEST(ScenarioRunner, ARetryAfterBeyondTheCapPausesOnlyForTheCap) {
  RunnerRig rig;
  rig.transport.answer = [](Response& r) {
    r.status = 429;
    r.retry_after = std::chrono::hours(1);
  };
  RunnerLimits limits;
  limits.max_retry_after = 100ms;
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(100), limits);
  rig.gate.set_runner(&runner);
  const MonoTime start = rig.clock.Now();
  runner.Start(start);
  rig.RunFor(50ms);
  // The first answer (at `start`) asked for an hour; the cap holds it to
  // 100 ms, and nothing sent meanwhile asked again.
  EXPECT_EQ(runner.paused_until(), start + 100ms);
  EXPECT_EQ(rig.transport.sent, 1);
  EXPECT_EQ(rig.Dropped(DropReason::kRetryAfter), 5);  // 10 ... 50 ms
  runner.Stop();
}

TEST(ScenarioRunner, ArrivalsBeyondTheInFlightCapAreCountedNotQueued) {
  RunnerRig rig;
  rig.transport.hold = true;  // a frozen target: nothing comes back
  RunnerLimits limits;
  limits.max_in_flight = 5;
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(200), limits);
  runner.Start(rig.clock.Now());
  rig.RunFor(200ms);
  runner.Stop();
  EXPECT_EQ(rig.transport.sent, 5);
  // 200/s for 0.2 s: 41 arrivals; 5 in flight, the other 36 counted.
  EXPECT_EQ(rig.series.arrivals->Value(), 41);
  EXPECT_EQ(rig.Dropped(DropReason::kInFlightCap), 36);
  rig.transport.Release();
}

TEST(ScenarioRunner, TheGlobalCapIsCheckedAfterTheScenarioCap) {
  RunnerRig rig;
  RunnerLimits limits;
  limits.global_full = [] { return true; };
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(100), limits);
  runner.Start(rig.clock.Now());
  rig.RunFor(100ms);
  runner.Stop();
  EXPECT_EQ(rig.transport.sent, 0);
  EXPECT_EQ(rig.series.arrivals->Value(), 11);
  EXPECT_EQ(rig.Dropped(DropReason::kGlobalInFlightCap), 11);
}

TEST(ScenarioRunner, ReconfigureChangesTheRateAndKeepsCountersAndSequence) {
  RunnerRig rig;
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(50), RunnerLimits{});
  runner.Start(rig.clock.Now());
  rig.RunFor(200ms);
  const uint64_t before = runner.arrivals();
  EXPECT_EQ(before, 11u);  // 0, 20, ..., 200 ms
  runner.Reconfigure(ConstantPlan(500), RunnerLimits{});
  EXPECT_EQ(rig.series.target_rate->Value(), 500);
  const MonoTime switched = rig.clock.Now();
  rig.RunFor(200ms);
  runner.Stop();
  // The counter and the sequence carried on (no reset) and the new rate took
  // over at once: the whole gap left at the switch (one arrival's worth) is
  // 2 ms at 500/s, so 202, 204, ..., 400 ms: 100 more.
  EXPECT_EQ(rig.series.arrivals->Value(), 111);
  EXPECT_EQ(runner.arrivals() - before, 100u);
  ASSERT_EQ(rig.scenario.starts.size(), 111u);
  EXPECT_EQ(rig.scenario.starts[11] - switched, 2ms);
}

TEST(ScenarioRunner, ASuccessorStartsFromThePredecessorsRemainingWork) {
  // A reload at 10/s, 0.75 of the way through a gap: the successor's first
  // arrival comes 25 ms later, not at once (a burst) and not 100 ms later.
  RunnerRig rig;
  ScenarioRunner old(rig.timers, rig.clock, rig.scenario, rig.series,
                     ConstantPlan(10), RunnerLimits{});
  const MonoTime start = rig.clock.Now();
  old.Start(start);
  rig.RunFor(10ms);  // the first arrival (at once) goes; the next is at 100 ms
  auto left = old.RemainingWork(start + 75ms);
  ASSERT_TRUE(left.has_value());
  EXPECT_NEAR(*left, 0.25, 1e-6);
  old.Stop();

  ScenarioRunner next(rig.timers, rig.clock, rig.scenario, rig.series,
                      ConstantPlan(10), RunnerLimits{});
  const MonoTime reload = rig.clock.Now();
  next.Start(reload, *left);
  rig.RunFor(60ms);
  next.Stop();
  // The predecessor's arrival at `start` was the only one before the reload.
  ASSERT_EQ(rig.scenario.starts.size(), 2u);
  EXPECT_EQ(rig.scenario.starts[1] - reload, 25ms);
}

}  // namespace
}  // namespace polar

namespace polar {
namespace {

// Captures the handlers a gate passes on, so the test plays the engine.
class StreamCapture final : public Transport {
 public:
  void Send(Request, ResponseCallback) override {}
  StreamId OpenStream(Request, StreamOptions, StreamHandlers h) override {
    handlers = std::move(h);
    return 7;
  }
  void CancelStream(StreamId id) override { cancelled = id; }
  StreamHandlers handlers;
  StreamId cancelled = kNoStream;
};

// The end of `t`'s slack window: the next multiple of `slack` on the
// monotonic clock (as ScenarioRunner computes it).
MonoTime WindowEnd(MonoTime t, Duration slack) {
  const auto ns = t.time_since_epoch().count();
  return MonoTime(
      Duration((ns + slack.count() - 1) / slack.count() * slack.count()));
}

TEST(ScenarioRunner, ArrivalsCloserThanTheTimerSlackStartTogetherAtItsEnd) {
  RunnerRig rig;
  RunnerLimits limits;
  limits.timer_slack = 2ms;
  // 5,000/s: ten arrivals per 2 ms window.
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(5000), limits);
  runner.Start(rig.clock.Now());  // the fake clock's 0: on the slack grid
  rig.RunFor(200ms);
  runner.Stop();
  const auto& intended = rig.scenario.starts;
  const auto& started = rig.scenario.started_at;
  // 0 to 200 ms, 200 us apart.
  ASSERT_EQ(intended.size(), 1001u);
  for (std::size_t i = 0; i < intended.size(); ++i) {
    // Each starts at the end of its window and keeps its own intended time,
    // so the wait (0 to 1.8 ms) shows as lag.
    EXPECT_EQ(started[i], WindowEnd(intended[i], 2ms)) << "arrival " << i;
    if (i > 0) {
      EXPECT_EQ(intended[i] - intended[i - 1], 200us);
    }
  }
  // 101 wake-ups (0 ms, then the end of each window) where sending each on
  // time would take 1,001.
  EXPECT_EQ(std::set<MonoTime>(started.begin(), started.end()).size(), 101u);
}

// The window holds at least two arrivals where the slack allows: the slack
// from two per slack up, twice the slack from one to two, none below one.
TEST(ScenarioRunner, TheGroupingWindowCarriesAtLeastTwoArrivalsOrNone) {
  EXPECT_EQ(GroupWindow(20'000, 1ms), 1ms);
  EXPECT_EQ(GroupWindow(2'000, 1ms), 1ms);
  EXPECT_EQ(GroupWindow(1'999, 1ms), 2ms);
  EXPECT_EQ(GroupWindow(1'000, 1ms), 2ms);
  EXPECT_EQ(GroupWindow(999, 1ms), Duration::zero());
  EXPECT_EQ(GroupWindow(5'000, 500us), 500us);
  EXPECT_EQ(GroupWindow(20'000, Duration::zero()), Duration::zero());
}

// 1,500/s with 1 ms of slack: 1.5 arrivals per millisecond, so the window is
// 2 ms and a wake-up sends three.
TEST(ScenarioRunner, BetweenOneAndTwoArrivalsPerSlackTheWindowDoubles) {
  RunnerRig rig;
  RunnerLimits limits;
  limits.timer_slack = 1ms;
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(1500), limits);
  runner.Start(rig.clock.Now());  // the fake clock's 0: on the 2 ms grid
  rig.RunFor(200ms);
  runner.Stop();
  const auto& intended = rig.scenario.starts;
  const auto& started = rig.scenario.started_at;
  // 0 to 200 ms, 666.7 us apart: 301 arrivals.
  ASSERT_EQ(intended.size(), 301u);
  for (std::size_t i = 0; i < intended.size(); ++i) {
    // At the end of its 2 ms window, not of a 1 ms one.
    EXPECT_EQ(started[i], WindowEnd(intended[i], 2ms)) << "arrival " << i;
  }
  // 101 wake-ups (0 ms, then the end of each 2 ms window); the slack itself
  // as the window would take 201, each on time 301.
  EXPECT_EQ(std::set<MonoTime>(started.begin(), started.end()).size(), 101u);
}

TEST(ScenarioRunner, AScheduleSlowerThanOnePerSlackIsSentOnTime) {
  RunnerRig rig;
  RunnerLimits limits;
  limits.timer_slack = 10ms;
  // 50/s is one arrival per 20 ms, more than the slack apart. The first is
  // due 1 ms into a window, so waiting for the window's end would make every
  // arrival 9 ms late.
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(50), limits);
  runner.Start(WindowEnd(rig.clock.Now() + 10ms, 10ms) + 1ms);
  rig.RunFor(400ms);
  runner.Stop();
  // 11, 31, ..., 391 ms: each started at its intended time.
  ASSERT_EQ(rig.scenario.starts.size(), 20u);
  for (std::size_t i = 0; i < rig.scenario.starts.size(); ++i)
    EXPECT_EQ(rig.scenario.started_at[i], rig.scenario.starts[i]);
}

// polar_loadd_target_rate reads what the schedule asks for now, also when no
// arrival is due: 50/s for 150 ms, then 0/s (a sharded step schedule ends
// like this for shards whose last arrival falls before the step's end), or
// then 1/h. The runner wakes at the step's end to say so; before, the gauge
// moved only at arrivals and kept reading 50/s.
TEST(ScenarioRunner, TheTargetRateFollowsTheScheduleWhenNoArrivalIsDue) {
  for (const double after : {0.0, 1.0 / 3600}) {
    SCOPED_TRACE(after);
    RunnerRig rig;
    RunnerPlan plan;
    plan.schedule.kind = ScheduleKind::kSteps;
    plan.schedule.steps = {{50, 150ms}, {after, 24h}};
    // Shard 1 of 2: its arrivals (25/s, 40 ms apart) start half a gap in,
    // at 20, 60, 100 and 140 ms, so the last one is 10 ms before the step
    // ends and says 25/s.
    plan.shard = Shard{1, 2};
    ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series, plan,
                          RunnerLimits{});
    runner.Start(rig.clock.Now());
    rig.RunFor(100ms);
    EXPECT_EQ(rig.series.target_rate->Value(), 25);
    rig.RunFor(150ms);  // past the step's end at 150 ms
    EXPECT_EQ(rig.series.target_rate->Value(), after / 2);
    EXPECT_EQ(rig.scenario.starts.size(), 4u);
    runner.Stop();
  }
}

TEST(RetryAfterGate, A429OnAStreamPausesTheRunnerLikeOneOnARequest) {
  for (bool via_head : {true, false}) {
    SCOPED_TRACE(via_head ? "head" : "end");
    RunnerRig rig;
    StreamCapture inner;
    RetryAfterGate gate(inner);
    ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                          ConstantPlan(1), RunnerLimits{});
    gate.set_runner(&runner);
    int heads = 0, ends = 0;
    StreamHandlers h;
    h.on_head = [&](const Response&) { ++heads; };
    h.on_end = [&](Response&&) { ++ends; };
    EXPECT_EQ(gate.OpenStream(Request{}, {}, std::move(h)), 7u);
    Response r;
    r.status = 429;
    r.retry_after = 5s;
    const MonoTime before = rig.clock.Now();
    if (via_head) {
      inner.handlers.on_head(r);
    } else {
      inner.handlers.on_end(std::move(r));
    }
    EXPECT_EQ(heads + ends, 1) << "the scenario still hears about it";
    EXPECT_EQ(runner.paused_until(), before + 5s);
    gate.CancelStream(7);
    EXPECT_EQ(inner.cancelled, 7u);
  }
}

}  // namespace
}  // namespace polar
