// polar-sim's building blocks: time parsing, distributions, the rate limiter,
// the worker's queues, the timer, webhook signing and backoff, fault and
// option parsing. Everything timed runs on a FakeClock: nothing sleeps.
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>

#include "sim/api/webhooks.h"
#include "sim/base/clock.h"
#include "sim/base/distribution.h"
#include "sim/base/timer.h"
#include "sim/middleware/faults.h"
#include "sim/middleware/rate_limit.h"
#include "sim/options.h"
#include "sim/worker/worker.h"

namespace polar::sim {
namespace {

using namespace std::chrono_literals;

// A worker on a fake clock, and its metrics as Prometheus text.
struct WorkerRig {
  explicit WorkerRig(const WorkerOptions& options)
      : worker(options, clock, registry) {}
  // Settles first: a job enqueued just before must start at the old time.
  void Advance(Duration d) {
    worker.Settle();
    clock.Advance(d);
    worker.Settle();
  }
  std::string Metrics() {
    worker.UpdateGauges();
    return prometheus::TextSerializer().Serialize(registry.Collect());
  }
  FakeClock clock;
  prometheus::Registry registry;
  Worker worker;
};

TEST(SimClock, DurationsParseWithUnitsAndRejectJunk) {
  Duration d;
  ASSERT_TRUE(ParseDuration("1m30s", &d));
  EXPECT_EQ(d, 90s);
  ASSERT_TRUE(ParseDuration("250ms", &d));
  EXPECT_EQ(d, 250ms);
  ASSERT_TRUE(ParseDuration("1.5s", &d));
  EXPECT_EQ(d, 1500ms);
  EXPECT_FALSE(ParseDuration("soon", &d));
  EXPECT_FALSE(ParseDuration("10", &d));
  EXPECT_FALSE(ParseDuration("", &d));
}

TEST(SimClock, TimestampsRoundTripAndNaiveOnesAreRefused) {
  SysMicros t;
  ASSERT_TRUE(ParseTimestamp("2026-03-04T05:06:07.123456+01:00", &t));
  EXPECT_EQ(FormatTimestamp(t), "2026-03-04T04:06:07.123456Z");
  EXPECT_FALSE(ParseTimestamp("2026-03-04T05:06:07", &t));
  EXPECT_FALSE(ParseTimestamp("yesterday", &t));
}

// Regression (found by tests/fuzz/sim_request_fuzz.cc): the offset's digits
// went to std::stol, which threw on "+`2:00" (an uncaught exception out of an
// event ingest: polar-sim gone) and took "+1x:00", "+ 1:00" and "+-1:00".
TEST(SimClock, AMalformedOffsetOrSecondIsRefusedNotThrown) {
  SysMicros t;
  for (const char* bad :
       {"8055-01-01T00:00:00+`2:00", "2026-01-01T00:00:00+1x:00",
        "2026-01-01T00:00:00+ 1:00", "2026-01-01T00:00:00+-1:00",
        "2026-01-01T00:00:00+01:6x", "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+01:60", "2026-01-01T00:00:nanZ",
        "2026-01-01T-1:00:00Z"}) {
    bool parsed = true;
    EXPECT_NO_THROW(parsed = ParseTimestamp(bad, &t)) << bad;
    EXPECT_FALSE(parsed) << bad;
  }
  ASSERT_TRUE(ParseTimestamp("2026-01-01T00:00:00-23:59", &t));
  EXPECT_EQ(FormatTimestamp(t), "2026-01-01T23:59:00.000000Z");
}

TEST(SimDistribution, EachKindSamplesWithinItsShape) {
  std::string error;
  std::mt19937_64 rng(1);
  auto fixed = Distribution::Parse("50ms", &error);
  ASSERT_TRUE(fixed) << error;
  EXPECT_EQ(fixed->Sample(rng), 50ms);
  auto uniform = Distribution::Parse("uniform:10ms,20ms", &error);
  ASSERT_TRUE(uniform) << error;
  for (int i = 0; i < 100; ++i) {
    auto s = uniform->Sample(rng);
    EXPECT_GE(s, 10ms);
    EXPECT_LE(s, 20ms);
  }
  // Log-normal with median 10 ms and p99 100 ms: about half the samples are
  // below the median and about 1% above the p99.
  auto lognormal = Distribution::Parse("lognormal:10ms,100ms", &error);
  ASSERT_TRUE(lognormal) << error;
  int below = 0, above = 0;
  for (int i = 0; i < 20000; ++i) {
    auto s = lognormal->Sample(rng);
    below += s < 10ms;
    above += s > 100ms;
  }
  EXPECT_NEAR(below, 10000, 400);
  EXPECT_NEAR(above, 200, 80);
  EXPECT_EQ(lognormal->ToString(), "lognormal:10ms,100ms");
  EXPECT_FALSE(Distribution::Parse("uniform:20ms,10ms", &error));
  EXPECT_FALSE(Distribution::Parse("gamma:1s", &error));
  EXPECT_NE(error.find("unknown kind"), std::string::npos);
}

TEST(SimRateLimit, SandboxAllows100PerMinuteThenAnswersTheWholeMinute) {
  RateLimiter limiter(RateLimitMode::kSandbox);
  auto t0 = SteadyTime{} + 1h;
  for (int i = 0; i < 100; ++i) {
    ASSERT_FALSE(limiter.Check("/v1/events/ingest", "organization:a",
                               RateLimitGroup::kDefault, t0 + i * 10ms))
        << i;
  }
  // asgi-ratelimit answers the window's whole period, not what is left of it
  // (the window opened at t0 and has 40 s to go).
  auto retry = limiter.Check("/v1/events/ingest", "organization:a",
                             RateLimitGroup::kDefault, t0 + 20s);
  ASSERT_TRUE(retry);
  EXPECT_EQ(*retry, 60);
  // A refused request spends nothing; another organization has its own
  // bucket; the window reopens 60 s after its first request.
  EXPECT_FALSE(limiter.Check("/v1/events/ingest", "organization:b",
                             RateLimitGroup::kDefault, t0 + 20s));
  EXPECT_TRUE(limiter.Check("/v1/checkouts/", "organization:a",
                            RateLimitGroup::kDefault, t0 + 59s));
  EXPECT_FALSE(limiter.Check("/v1/events/ingest", "organization:a",
                             RateLimitGroup::kDefault, t0 + 60s));
  // Outside ^/v1 nothing is limited.
  EXPECT_FALSE(limiter.Check("/healthz", "organization:a",
                             RateLimitGroup::kDefault, t0 + 20s));
}

TEST(SimRateLimit, ProductionAllows500AndPendingAuth60PerMinute) {
  RateLimiter limiter(RateLimitMode::kProduction);
  auto t0 = SteadyTime{} + 1h;
  int allowed = 0;
  for (int i = 0; i < 600; ++i)
    allowed += !limiter.Check("/v1/checkouts/", "organization:a",
                              RateLimitGroup::kDefault, t0);
  EXPECT_EQ(allowed, 500);
  allowed = 0;
  for (int i = 0; i < 100; ++i)
    allowed += !limiter.Check("/v1/checkouts/", "token:x",
                              RateLimitGroup::kPendingAuth, t0);
  EXPECT_EQ(allowed, 60);
}

TEST(SimRateLimit, TheSeventhConfirmInAMinuteBlocksTheWholeIdentityFor30Min) {
  RateLimiter limiter(RateLimitMode::kSandbox);
  auto t0 = SteadyTime{} + 1h;
  const std::string confirm = "/v1/checkouts/client/polar_c_x/confirm";
  const std::string get = "/v1/checkouts/client/polar_c_x";
  for (int i = 0; i < 6; ++i)
    ASSERT_FALSE(limiter.Check(confirm, "10.0.0.1", RateLimitGroup::kDefault,
                               t0 + i * 1s));
  auto first =
      limiter.Decide(confirm, {"10.0.0.1", RateLimitGroup::kDefault}, t0 + 10s);
  ASSERT_TRUE(first.limited);
  EXPECT_EQ(first.retry_after, 1800);
  EXPECT_TRUE(first.block_started);
  EXPECT_STREQ(first.zone, "checkout-confirm");
  // blocking:{user}: the same IP's GET, PATCH and stream (zone "api") are
  // refused too, with the block's remaining time.
  auto later = limiter.Decide(get, {"10.0.0.1", RateLimitGroup::kDefault},
                              t0 + 10s + 5min);
  ASSERT_TRUE(later.limited);
  EXPECT_TRUE(later.blocked);
  EXPECT_EQ(later.retry_after, 1500);
  // Rounded to the nearest second, as Redis' TTL is.
  EXPECT_EQ(*limiter.Check(get, "10.0.0.1", RateLimitGroup::kDefault,
                           t0 + 10s + 5min + 400ms),
            1500);
  EXPECT_EQ(*limiter.Check(get, "10.0.0.1", RateLimitGroup::kDefault,
                           t0 + 10s + 5min + 600ms),
            1499);
  // Another IP is untouched; the block ends after 30 minutes.
  EXPECT_FALSE(
      limiter.Check(get, "10.0.0.2", RateLimitGroup::kDefault, t0 + 11s));
  EXPECT_FALSE(limiter.Check(get, "10.0.0.1", RateLimitGroup::kDefault,
                             t0 + 10s + 30min));
  // The confirm's minute window is over by then too.
  EXPECT_FALSE(limiter.Check(confirm, "10.0.0.1", RateLimitGroup::kDefault,
                             t0 + 10s + 30min));
}

TEST(SimRateLimit, TwentyConfirmsAnHourTripTheBlockEvenAtFivePerMinute) {
  RateLimiter limiter(RateLimitMode::kProduction);
  auto t0 = SteadyTime{} + 1h;
  const std::string confirm = "/v1/checkouts/client/s/confirm";
  // 5 a minute never spends the minute window; the 21st in the hour is
  // refused by the hour window, and the block follows.
  int allowed = 0;
  RateLimiter::Decision refused;
  for (int i = 0; i < 25 && !refused.limited; ++i) {
    auto d = limiter.Decide(
        confirm, {"organization:o", RateLimitGroup::kDefault}, t0 + i * 12s);
    if (d.limited)
      refused = d;
    else
      ++allowed;
  }
  EXPECT_EQ(allowed, 20);
  ASSERT_TRUE(refused.limited);
  EXPECT_EQ(refused.retry_after, 1800);
  // pending_auth has the same confirm rule under its own key.
  for (int i = 0; i < 6; ++i)
    EXPECT_FALSE(
        limiter.Check(confirm, "token:t", RateLimitGroup::kPendingAuth, t0));
  EXPECT_EQ(
      *limiter.Check(confirm, "token:t", RateLimitGroup::kPendingAuth, t0),
      1800);
}

TEST(SimRateLimit, TheTimeScaleShortensWindowsAndBlocksNotRetryAfter) {
  // 0.01: a Polar minute is 600 ms, the 30-minute block 18 s.
  RateLimiter limiter(RateLimitMode::kSandbox, TimeScale(0.01));
  auto t0 = SteadyTime{} + 1h;
  const std::string confirm = "/v1/checkouts/client/s/confirm";
  for (int i = 0; i < 6; ++i)
    ASSERT_FALSE(limiter.Check(confirm, "ip", RateLimitGroup::kDefault, t0));
  EXPECT_FALSE(limiter.Check(confirm, "other", RateLimitGroup::kDefault, t0));
  // After 600 ms the minute window is new: 6 more (the hour window holds 20).
  for (int i = 0; i < 6; ++i)
    ASSERT_FALSE(
        limiter.Check(confirm, "ip", RateLimitGroup::kDefault, t0 + 600ms));
  auto block =
      limiter.Check(confirm, "ip", RateLimitGroup::kDefault, t0 + 600ms);
  ASSERT_TRUE(block);
  EXPECT_EQ(*block, 1800);  // Polar's seconds
  EXPECT_EQ(*limiter.Check("/v1/checkouts/client/s", "ip",
                           RateLimitGroup::kDefault, t0 + 600ms + 9s),
            900);
  EXPECT_FALSE(limiter.Check("/v1/checkouts/client/s", "ip",
                             RateLimitGroup::kDefault, t0 + 600ms + 18s));
}

TEST(SimRateLimit, OffModeNeverLimits) {
  RateLimiter limiter(RateLimitMode::kOff);
  for (int i = 0; i < 1000; ++i)
    ASSERT_FALSE(limiter.Check("/v1/events/ingest", "organization:a",
                               RateLimitGroup::kDefault, SteadyTime{} + 1h));
}

TEST(SimWorker, OneThreadRunsJobsOneAtATimeForTheirJobTime) {
  WorkerOptions options;
  options.concurrency = {{kQueueHigh, 1}};
  options.job_time["slow"] = Distribution::Fixed(40ms);
  WorkerRig rig(options);
  std::atomic<int> running{0}, max_running{0}, done{0};
  for (int i = 0; i < 3; ++i) {
    rig.worker.Enqueue(kQueueHigh, "slow", [&](JobContext& ctx) {
      int now = ++running;
      max_running = std::max(max_running.load(), now);
      ctx.Work();
      --running;
      ++done;
      return JobResult::Done();
    });
  }
  rig.worker.Settle();
  EXPECT_EQ(done, 0);
  rig.Advance(39ms);
  EXPECT_EQ(done, 0);
  rig.Advance(1ms);
  EXPECT_EQ(done, 1);
  rig.Advance(40ms);
  EXPECT_EQ(done, 2);
  rig.Advance(40ms);
  EXPECT_EQ(done, 3);
  EXPECT_EQ(max_running, 1);
}

TEST(SimWorker, QueueSizeAndOldestAgeShowABacklog) {
  WorkerOptions options;
  options.concurrency = {{kQueueLow, 1}};
  options.job_time["blocker"] = Distribution::Fixed(300ms);
  WorkerRig rig(options);
  rig.worker.Enqueue(kQueueLow, "blocker", [](JobContext& ctx) {
    ctx.Work();
    return JobResult::Done();
  });
  rig.worker.Settle();  // the blocker is running now
  for (int i = 0; i < 5; ++i)
    rig.worker.Enqueue(kQueueLow, "later",
                       [](JobContext&) { return JobResult::Done(); });
  rig.Advance(100ms);
  std::string metrics = rig.Metrics();
  EXPECT_NE(metrics.find("polar_queue_size{queue=\"low_priority\"} 5\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(
      metrics.find(
          "polar_queue_oldest_message_age_seconds{queue=\"low_priority\"} "
          "0.1\n"),
      std::string::npos)
      << metrics;
  rig.Advance(200ms);  // the blocker ends; the five run at once
  metrics = rig.Metrics();
  EXPECT_NE(metrics.find("polar_queue_size{queue=\"low_priority\"} 0\n"),
            std::string::npos);
}

TEST(SimWorker, RetriesComeBackAfterTheirDelayAndSlowdownStretchesJobs) {
  WorkerOptions options;
  options.concurrency = {{kQueueWebhooks, 2}};
  options.job_time["job"] = Distribution::Fixed(10ms);
  WorkerRig rig(options);
  rig.worker.SetSlowdown("*", 5.0, 20ms);  // 10 ms × 5 + 20 ms = 70 ms
  std::atomic<int> attempts{0};
  std::atomic<bool> finished{false};
  rig.worker.Enqueue(kQueueWebhooks, "job", [&](JobContext& ctx) {
    ctx.Work();
    if (++attempts < 2) return JobResult::Retry(50ms);
    finished = true;
    return JobResult::Done();
  });
  // Two runs of 70 ms plus the 50 ms retry delay: 190 ms.
  rig.Advance(70ms);
  EXPECT_EQ(attempts, 1);
  rig.Advance(50ms);
  rig.Advance(69ms);
  EXPECT_FALSE(finished);
  rig.Advance(1ms);
  EXPECT_TRUE(finished);
  EXPECT_NE(
      rig.Metrics().find(
          "polar_task_retries_total{queue=\"webhooks\",task_name=\"job\"} 1"),
      std::string::npos);
}

TEST(SimWorker, AFullQueueDropsAndCountsInsteadOfGrowing) {
  WorkerOptions options;
  options.concurrency = {{kQueueLow, 1}};
  options.max_queued = 2;
  options.job_time["block"] = Distribution::Fixed(200ms);
  WorkerRig rig(options);
  auto noop = [](JobContext& ctx) {
    ctx.Work();
    return JobResult::Done();
  };
  EXPECT_TRUE(rig.worker.Enqueue(kQueueLow, "block", noop));
  rig.worker.Settle();
  EXPECT_TRUE(rig.worker.Enqueue(kQueueLow, "x", noop));
  EXPECT_TRUE(rig.worker.Enqueue(kQueueLow, "x", noop));
  EXPECT_FALSE(rig.worker.Enqueue(kQueueLow, "x", noop));
  EXPECT_NE(rig.Metrics().find(
                "polar_sim_jobs_dropped_total{queue=\"low_priority\"} 1"),
            std::string::npos);
}

TEST(SimTimer, CallbacksRunInTimeOrderNotScheduleOrder) {
  FakeClock clock;
  TimerThread timer(clock);
  std::mutex mutex;
  std::vector<int> order;
  auto seen = [&] {
    std::lock_guard lock(mutex);
    return order;
  };
  timer.After(60ms, [&] {
    std::lock_guard lock(mutex);
    order.push_back(2);
  });
  timer.After(20ms, [&] {
    std::lock_guard lock(mutex);
    order.push_back(1);
  });
  timer.Settle();
  clock.Advance(19ms);
  timer.Settle();
  EXPECT_EQ(seen(), std::vector<int>{});
  clock.Advance(1ms);
  timer.Settle();
  EXPECT_EQ(seen(), std::vector<int>{1});
  clock.Advance(40ms);
  timer.Settle();
  EXPECT_EQ(seen(), (std::vector<int>{1, 2}));
}

TEST(SimWebhookSigning, MatchesAnHmacOfTheWholeSecretComputedElsewhere) {
  // Computed with Python: base64(hmac.new(b"whsec_testsecret",
  // b'msg_1.1700000000.{"a":1}', sha256).digest()).
  EXPECT_EQ(SignWebhook("whsec_testsecret", "msg_1", 1700000000, R"({"a":1})"),
            "v1,P6kG2RjDvj+/sFy6pgTeRrmsTQKn+SWFuO6nhz69iwc=");
}

TEST(SimWebhookBackoff, FollowsDramatiqsJitteredDoublingWithA20MinuteCap) {
  std::mt19937_64 rng(3);
  for (int n = 1; n <= 12; ++n) {
    double full = std::min(2000.0 * (1 << n), 1.2e6);
    for (int i = 0; i < 50; ++i) {
      double ms =
          std::chrono::duration<double, std::milli>(WebhookBackoff(n, rng))
              .count();
      EXPECT_GE(ms, full / 2 - 1) << n;
      EXPECT_LE(ms, full + 1) << n;
    }
  }
}

TEST(SimFaults, RouteFaultsParseFromJsonAndBadKeysAreAllReported) {
  RouteFaults f;
  std::string error;
  ASSERT_TRUE(ParseRouteFaults(nlohmann::json{{"latency", "uniform:1ms,2ms"},
                                              {"error_ratio", 0.5},
                                              {"error_status", 503}},
                               &f, &error))
      << error;
  EXPECT_EQ(f.error_status, 503);
  EXPECT_EQ(f.latency->ToString(), "uniform:1ms,2ms");
  RouteFaults bad;
  EXPECT_FALSE(ParseRouteFaults(
      nlohmann::json{{"latency", "slow"}, {"error_ratio", 2}, {"bogus", 1}},
      &bad, &error));
  EXPECT_NE(error.find("latency"), std::string::npos);
  EXPECT_NE(error.find("error_ratio"), std::string::npos);
  EXPECT_NE(error.find("bogus"), std::string::npos);
}

TEST(SimFaults, ARouteEntryReplacesTheWildcardAndStallHoldsEverything) {
  FakeClock clock;
  prometheus::Registry registry;
  Faults faults(clock, registry);
  RouteFaults all;
  all.error_ratio = 1;
  faults.SetRoute("*", all);
  RouteFaults ingest;
  ingest.latency = Distribution::Fixed(30ms);
  faults.SetRoute("events:ingest", ingest);
  EXPECT_TRUE(faults.Decide("checkouts:create").error);
  auto d = faults.Decide("events:ingest");
  EXPECT_FALSE(d.error);
  EXPECT_EQ(d.latency, 30ms);
  faults.Stall(200ms);
  EXPECT_EQ(faults.Decide("checkouts:create").stall_until, clock.Now() + 200ms);
  faults.Clear();
  auto none = faults.Decide("checkouts:create");
  EXPECT_FALSE(none.error);
  EXPECT_EQ(none.stall_until, SteadyClock::time_point{});
}

TEST(SimOptions, FlagsSetTheModelAndEveryBadFlagIsReported) {
  SimOptions o;
  std::vector<std::string> errors;
  bool help = false;
  ASSERT_TRUE(ParseOptions(
      {"--time-scale", "0.001", "--rate-limit", "sandbox", "--queue",
       "webhooks=8", "--job-time", "checkout.handle_free_success=fixed:5ms",
       "--latency", "events:ingest=exp:10ms", "--allow-loopback-webhooks",
       "--outage", "reset:2s"},
      &o, &errors, &help));
  EXPECT_EQ(o.rate_limit, RateLimitMode::kSandbox);
  EXPECT_EQ(o.worker.concurrency[kQueueWebhooks], 8);
  EXPECT_TRUE(o.webhooks.allow_loopback);
  EXPECT_EQ(o.webhooks.scale(2s), 2ms);
  EXPECT_EQ(o.faults.routes["events:ingest"].latency->ToString(), "exp:10ms");
  ASSERT_TRUE(o.outage);
  EXPECT_EQ(o.outage->first, SimServer::Outage::kReset);

  SimOptions bad;
  errors.clear();
  EXPECT_FALSE(ParseOptions({"--rate-limit", "always", "--queue", "nope=1",
                             "--time-scale", "x", "--frobnicate"},
                            &bad, &errors, &help));
  EXPECT_EQ(errors.size(), 4u);
}

TEST(SimOptions, ATomlFileSetsTheSameKeysAndErrorsNameLineAndColumn) {
  std::string path = ::testing::TempDir() + "/sim.toml";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(
        "time_scale = 0.01\n"
        "confirm_time = \"fixed:50ms\"\n"
        "[queues]\nwebhooks = 2\n"
        "[faults]\nstall = \"1s\"\n"
        "[faults.routes.\"events:ingest\"]\nerror_ratio = 0.25\n"
        "[faults.worker.\"*\"]\nfactor = 3\n",
        f);
    std::fclose(f);
  }
  SimOptions o;
  std::vector<std::string> errors;
  bool help = false;
  ASSERT_TRUE(ParseOptions({"--config", path}, &o, &errors, &help))
      << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(o.worker.concurrency[kQueueWebhooks], 2);
  EXPECT_EQ(o.faults.routes["events:ingest"].error_ratio, 0.25);
  EXPECT_EQ(o.faults.worker["*"].factor, 3);
  ASSERT_TRUE(o.stall);

  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("time_scale = 0.01\nrate_limit = \"maybe\"\n", f);
    std::fclose(f);
  }
  SimOptions bad;
  errors.clear();
  EXPECT_FALSE(ParseOptions({"--config", path}, &bad, &errors, &help));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(path + ":2:14: rate_limit:"), std::string::npos)
      << errors[0];
}

}  // namespace
}  // namespace polar::sim
