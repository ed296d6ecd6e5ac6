// ScenarioRunner on a real event loop with a fake transport: Retry-After
// pauses, in-flight caps, and reconfiguration without losing counters.
#include "daemon/schedule/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using namespace std::chrono_literals;

// Answers on the loop (never inside Send) with whatever `answer` says; with
// hold = true it keeps the callbacks until Release().
class LoopTransport final : public Transport {
 public:
  LoopTransport(EventLoop& loop, const Clock& clock)
      : loop_(loop), clock_(clock) {}
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
    loop_.Post([this, r = std::move(r), done = std::move(done)]() mutable {
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
  EventLoop& loop_;
  const Clock& clock_;
  std::vector<std::pair<Response, ResponseCallback>> held_;
};

class FakeScenario final : public Scenario {
 public:
  FakeScenario(Transport& transport) : transport_(transport) {}
  const std::string& name() const override { return name_; }
  void Start(const Arrival& arrival) override {
    ++in_flight_;
    starts.push_back(arrival.intended);
    started_at.push_back(std::chrono::steady_clock::now());
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
  std::size_t in_flight_ = 0;
};

struct RunnerRig {
  prometheus::Registry registry;
  Metrics metrics{registry};
  SystemClock clock;
  EventLoop loop;
  LoopTransport transport{loop, clock};
  RetryAfterGate gate{transport};
  FakeScenario scenario{gate};
  ScenarioSeries& series = metrics.Scenario("fake");

  double Dropped(DropReason reason) {
    return series.dropped[static_cast<std::size_t>(reason)]->Value();
  }
  void RunFor(Duration d) {
    loop.AddTimerAfter(d, [this] { loop.Stop(); });
    loop.Run();
  }
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
  ScenarioRunner runner(rig.loop, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(100), RunnerLimits{});
  rig.gate.set_runner(&runner);
  runner.Start(rig.clock.Now());
  rig.RunFor(600ms);
  runner.Stop();
  const double arrivals = rig.series.arrivals->Value();
  const double dropped = rig.Dropped(DropReason::kRetryAfter);
  // 100/s for 0.6 s is ~60 arrivals; the pause of 0.3 s holds back ~30.
  EXPECT_NEAR(arrivals, 60, 8);
  EXPECT_NEAR(dropped, 30, 6);
  // Every arrival is either sent or counted: none vanished.
  EXPECT_EQ(arrivals, dropped + rig.transport.sent);
  // Nothing intended inside the pause was sent.
  const MonoTime pause_start = rig.scenario.starts.front();
  for (MonoTime t : rig.scenario.starts) {
    EXPECT_FALSE(t > pause_start + 20ms && t < pause_start + 300ms);
  }
}

TEST(ScenarioRunner, RetryAfterIsIgnoredWhenTheScenarioSaysSo) {
  RunnerRig rig;
  rig.transport.answer = [](Response& r) {
    r.status = 429;
    r.retry_after = 10s;
  };
  RunnerLimits limits;
  limits.honour_retry_after = false;
  ScenarioRunner runner(rig.loop, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(100), limits);
  rig.gate.set_runner(&runner);
  runner.Start(rig.clock.Now());
  rig.RunFor(300ms);
  runner.Stop();
  EXPECT_EQ(rig.Dropped(DropReason::kRetryAfter), 0);
  EXPECT_GT(rig.transport.sent, 20);
}

TEST(ScenarioRunner, ARetryAfterBeyondTheCapPausesOnlyForTheCap) {
  RunnerRig rig;
  rig.transport.answer = [](Response& r) {
    r.status = 429;
    r.retry_after = std::chrono::hours(1);
  };
  RunnerLimits limits;
  limits.max_retry_after = 100ms;
  ScenarioRunner runner(rig.loop, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(100), limits);
  rig.gate.set_runner(&runner);
  const MonoTime start = rig.clock.Now();
  runner.Start(start);
  rig.RunFor(50ms);
  EXPECT_LE(runner.paused_until(), rig.clock.Now() + 100ms);
  EXPECT_GT(runner.paused_until(), start);
  runner.Stop();
}

TEST(ScenarioRunner, ArrivalsBeyondTheInFlightCapAreCountedNotQueued) {
  RunnerRig rig;
  rig.transport.hold = true;  // a frozen target: nothing comes back
  RunnerLimits limits;
  limits.max_in_flight = 5;
  ScenarioRunner runner(rig.loop, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(200), limits);
  runner.Start(rig.clock.Now());
  rig.RunFor(200ms);
  runner.Stop();
  EXPECT_EQ(rig.transport.sent, 5);
  const double arrivals = rig.series.arrivals->Value();
  EXPECT_GT(arrivals, 30);
  EXPECT_EQ(rig.Dropped(DropReason::kInFlightCap), arrivals - 5);
  rig.transport.Release();
}

TEST(ScenarioRunner, TheGlobalCapIsCheckedAfterTheScenarioCap) {
  RunnerRig rig;
  RunnerLimits limits;
  limits.global_full = [] { return true; };
  ScenarioRunner runner(rig.loop, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(100), limits);
  runner.Start(rig.clock.Now());
  rig.RunFor(100ms);
  runner.Stop();
  EXPECT_EQ(rig.transport.sent, 0);
  EXPECT_EQ(rig.Dropped(DropReason::kGlobalInFlightCap),
            rig.series.arrivals->Value());
}

TEST(ScenarioRunner, ReconfigureChangesTheRateAndKeepsCountersAndSequence) {
  RunnerRig rig;
  ScenarioRunner runner(rig.loop, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(50), RunnerLimits{});
  runner.Start(rig.clock.Now());
  rig.RunFor(200ms);
  const uint64_t before = runner.arrivals();
  const double counted = rig.series.arrivals->Value();
  EXPECT_NEAR(double(before), 10, 3);
  runner.Reconfigure(ConstantPlan(500), RunnerLimits{});
  EXPECT_EQ(rig.series.target_rate->Value(), 500);
  const MonoTime switched = rig.clock.Now();
  rig.RunFor(200ms);
  runner.Stop();
  // The counter carried on (no reset) and the new rate took over at once:
  // ~100 more in 0.2 s, and the first new arrival within one old gap (20 ms).
  EXPECT_GE(rig.series.arrivals->Value(), counted);
  EXPECT_NEAR(double(runner.arrivals() - before), 100, 20);
  MonoTime first_after = MonoTime::max();
  for (MonoTime t : rig.scenario.starts)
    if (t >= switched) first_after = std::min(first_after, t);
  EXPECT_LT(first_after - switched, 20ms);
}

TEST(ScenarioRunner, ASuccessorStartsFromThePredecessorsRemainingWork) {
  // A reload at 10/s, 0.75 of the way through a gap: the successor's first
  // arrival comes 25 ms later, not at once (a burst) and not 100 ms later.
  RunnerRig rig;
  ScenarioRunner old(rig.loop, rig.clock, rig.scenario, rig.series,
                     ConstantPlan(10), RunnerLimits{});
  const MonoTime start = rig.clock.Now();
  old.Start(start);
  rig.RunFor(10ms);  // the first arrival (at once) goes; the next is at 100 ms
  auto left = old.RemainingWork(start + 75ms);
  ASSERT_TRUE(left.has_value());
  EXPECT_NEAR(*left, 0.25, 1e-6);
  old.Stop();

  ScenarioRunner next(rig.loop, rig.clock, rig.scenario, rig.series,
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
  ScenarioRunner runner(rig.loop, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(5000), limits);
  runner.Start(rig.clock.Now());
  rig.RunFor(200ms);
  runner.Stop();
  const auto& intended = rig.scenario.starts;
  const auto& started = rig.scenario.started_at;
  ASSERT_GT(intended.size(), 500u);
  std::size_t wakeups = 1;
  std::vector<Duration> late;
  for (std::size_t i = 0; i < intended.size(); ++i) {
    ASSERT_GE(started[i], intended[i]) << "arrival " << i << " started early";
    late.push_back(started[i] - intended[i]);
    if (i == 0) continue;
    // Each keeps its own intended time, 200 us apart: the wait is lag.
    EXPECT_EQ(intended[i] - intended[i - 1], 200us);
    // Starts in one wake-up are microseconds apart.
    if (started[i] - started[i - 1] > 100us) ++wakeups;
  }
  // 100 windows in 200 ms (a few more when a wake-up runs late); sent one by
  // one it would be about 1,000.
  EXPECT_LE(wakeups, 130u);
  // Waiting for the window's end: 1 ms late on average, from 0 to 2 ms.
  std::sort(late.begin(), late.end());
  EXPECT_GE(late[late.size() / 2], 500us);
}

TEST(ScenarioRunner, AScheduleSlowerThanOnePerSlackIsSentOnTime) {
  RunnerRig rig;
  RunnerLimits limits;
  limits.timer_slack = 10ms;
  // 50/s is one arrival per 20 ms, more than the slack apart. The first is
  // due 1 ms into a window, so waiting for the window's end would make every
  // arrival 9 ms late.
  ScenarioRunner runner(rig.loop, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(50), limits);
  runner.Start(WindowEnd(rig.clock.Now() + 10ms, 10ms) + 1ms);
  rig.RunFor(400ms);
  runner.Stop();
  std::vector<Duration> late;
  for (std::size_t i = 0; i < rig.scenario.starts.size(); ++i)
    late.push_back(rig.scenario.started_at[i] - rig.scenario.starts[i]);
  ASSERT_GE(late.size(), 15u);
  std::sort(late.begin(), late.end());
  EXPECT_LT(late[late.size() / 2], 4ms);
}

TEST(RetryAfterGate, A429OnAStreamPausesTheRunnerLikeOneOnARequest) {
  for (bool via_head : {true, false}) {
    SCOPED_TRACE(via_head ? "head" : "end");
    RunnerRig rig;
    StreamCapture inner;
    RetryAfterGate gate(inner);
    ScenarioRunner runner(rig.loop, rig.clock, rig.scenario, rig.series,
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
    EXPECT_GE(runner.paused_until(), before + 5s);
    gate.CancelStream(7);
    EXPECT_EQ(inner.cancelled, 7u);
  }
}

}  // namespace
}  // namespace polar
