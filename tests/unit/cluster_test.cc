// Scaling out: [cluster] shard config and its environment variables, each
// shard's share of every schedule (rates add up, uniform arrivals interleave
// evenly, Poisson streams are independent), global arrival numbers and pool
// slices that never collide across shards.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "daemon/config/config.h"
#include "daemon/schedule/arrivals.h"
#include "daemon/schedule/scheduler.h"
#include "scenarios/shard.h"
#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using testing::FakeEnv;

using namespace std::chrono_literals;

std::string Cfg(const std::string& cluster) {
  return R"([target]
token = "t"
)" + cluster +
         R"(
[scenarios.ingest]
type = "event_ingestion"
rate = "30/s"
)";
}

std::string Errors(const ConfigResult& r) {
  std::string out;
  for (const ConfigError& e : r.errors) out += e.ToString() + "\n";
  return out;
}

TEST(ClusterConfig, WithoutAClusterTableTheInstanceRunsEverything) {
  ConfigResult r = ParseConfig(Cfg(""), "c.toml", FakeEnv());
  ASSERT_TRUE(r.config) << Errors(r);
  EXPECT_EQ(r.config->cluster.shard, (Shard{0, 1}));
}

TEST(ClusterConfig, ShardIndexOverCountIsReadFromTheFile) {
  ConfigResult r =
      ParseConfig(Cfg("[cluster]\nshard = \"2/3\"\n"), "c.toml", FakeEnv());
  ASSERT_TRUE(r.config) << Errors(r);
  EXPECT_EQ(r.config->cluster.shard, (Shard{2, 3}));
}

TEST(ClusterConfig, TheEnvironmentOverridesTheFileInEveryForm) {
  const std::string file = Cfg("[cluster]\nshard = \"0/3\"\n");
  // "i/N"
  ConfigResult a =
      ParseConfig(file, "c.toml", FakeEnv({{"POLAR_LOADD_SHARD", "1/4"}}));
  ASSERT_TRUE(a.config) << Errors(a);
  EXPECT_EQ(a.config->cluster.shard, (Shard{1, 4}));
  // A bare ordinal takes the file's count.
  ConfigResult b =
      ParseConfig(file, "c.toml", FakeEnv({{"POLAR_LOADD_SHARD", "2"}}));
  ASSERT_TRUE(b.config) << Errors(b);
  EXPECT_EQ(b.config->cluster.shard, (Shard{2, 3}));
  // A StatefulSet pod name and the count from POLAR_LOADD_SHARDS, with only
  // `shards` in the file.
  ConfigResult c = ParseConfig(Cfg("[cluster]\nshards = 3\n"), "c.toml",
                               FakeEnv({{"POLAR_LOADD_SHARD", "polar-loadd-4"},
                                        {"POLAR_LOADD_SHARDS", "5"}}));
  ASSERT_TRUE(c.config) << Errors(c);
  EXPECT_EQ(c.config->cluster.shard, (Shard{4, 5}));
  // No [cluster] at all: the environment alone.
  ConfigResult d = ParseConfig(
      Cfg(""), "c.toml",
      FakeEnv({{"POLAR_LOADD_SHARD", "1"}, {"POLAR_LOADD_SHARDS", "2"}}));
  ASSERT_TRUE(d.config) << Errors(d);
  EXPECT_EQ(d.config->cluster.shard, (Shard{1, 2}));
  EXPECT_FALSE(d.notes.empty());
}

TEST(ClusterConfig, FileMistakesAreReportedWithLineColumnAndKey) {
  ConfigResult r =
      ParseConfig(Cfg("[cluster]\nshard = \"3/3\"\n"), "c.toml", FakeEnv());
  EXPECT_FALSE(r.config);
  EXPECT_NE(Errors(r).find("c.toml:4:9: cluster.shard: shard index 3 is not "
                           "below the count 3"),
            std::string::npos)
      << Errors(r);

  r = ParseConfig(Cfg("[cluster]\nshard = \"one of three\"\n"), "c.toml",
                  FakeEnv());
  EXPECT_NE(Errors(r).find("c.toml:4:9: cluster.shard: \"one of three\" is "
                           "not index/count"),
            std::string::npos)
      << Errors(r);

  r = ParseConfig(Cfg("[cluster]\nshard = \"0/0\"\n"), "c.toml", FakeEnv());
  EXPECT_NE(Errors(r).find("c.toml:4:9: cluster.shard: the shard count 0 is "
                           "out of range"),
            std::string::npos)
      << Errors(r);

  r = ParseConfig(Cfg("[cluster]\nshards = 3\nshard = \"1/3\"\nsize = 2\n"),
                  "c.toml", FakeEnv({{"POLAR_LOADD_SHARD", "1"}}));
  const std::string all = Errors(r);
  EXPECT_NE(all.find("c.toml:4:10: cluster.shards: set shard"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("c.toml:6:8: cluster.size: unknown key"),
            std::string::npos)
      << all;

  // A count without an index would make every instance shard 0.
  r = ParseConfig(Cfg("[cluster]\nshards = 3\n"), "c.toml", FakeEnv());
  EXPECT_NE(Errors(r).find("c.toml:4:10: cluster.shards: 3 shards but no "
                           "index"),
            std::string::npos)
      << Errors(r);
}

TEST(ClusterConfig, EnvironmentMistakesNameTheVariable) {
  auto errors = [](std::map<std::string, std::string> vars) {
    return Errors(ParseConfig(Cfg(""), "c.toml", FakeEnv(std::move(vars))));
  };
  EXPECT_NE(errors({{"POLAR_LOADD_SHARD", "2"}})
                .find("c.toml: env POLAR_LOADD_SHARD: \"2\" gives the index "
                      "only"),
            std::string::npos);
  EXPECT_NE(errors({{"POLAR_LOADD_SHARD", "polar-loadd"}})
                .find("env POLAR_LOADD_SHARD: \"polar-loadd\" is not a shard"),
            std::string::npos);
  EXPECT_NE(errors({{"POLAR_LOADD_SHARD", "1/3"}, {"POLAR_LOADD_SHARDS", "4"}})
                .find("says 3 shards but POLAR_LOADD_SHARDS says 4"),
            std::string::npos);
  EXPECT_NE(errors({{"POLAR_LOADD_SHARDS", "-1"}})
                .find("env POLAR_LOADD_SHARDS: \"-1\" is not a shard count"),
            std::string::npos);
  EXPECT_NE(errors({{"POLAR_LOADD_SHARD", "5"}, {"POLAR_LOADD_SHARDS", "5"}})
                .find("env POLAR_LOADD_SHARD: shard index 5 is not below the "
                      "count 5"),
            std::string::npos);
}

TEST(ClusterConfig, ACheckoutPoolSmallerThanTheClusterIsAnError) {
  const std::string text = R"([target]
token = "t"
[cluster]
shard = "0/4"
[scenarios.buy]
type = "checkout"
rate = "1/s"
product_id = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
customer_pool = 3
)";
  ConfigResult r = ParseConfig(text, "c.toml", FakeEnv());
  EXPECT_NE(Errors(r).find("c.toml:9:17: scenarios.buy.customer_pool: 3 "
                           "customers cannot be split over 4 shards"),
            std::string::npos)
      << Errors(r);
}

TEST(ClusterConfig, MetricsListenAndTokenFileCanComeFromTheEnvironment) {
  const std::string path = ::testing::TempDir() + "cluster-token";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_TRUE(f);
    std::fputs("polar_oat_from_credential\n", f);
    std::fclose(f);
  }
  ConfigResult r =
      ParseConfig(Cfg(""), "c.toml",
                  FakeEnv({{"POLAR_LOADD_METRICS_LISTEN", "127.0.0.1:9479"},
                           {"POLAR_LOADD_TOKEN_FILE", path}}));
  ASSERT_TRUE(r.config) << Errors(r);
  EXPECT_EQ(r.config->metrics.listen.port, 9479);
  EXPECT_EQ(r.config->target.token, "polar_oat_from_credential");
  // An unreadable file is an error naming the variable, never a fallback to
  // the file's token.
  r = ParseConfig(Cfg(""), "c.toml",
                  FakeEnv({{"POLAR_LOADD_TOKEN_FILE", path + ".missing"}}));
  EXPECT_NE(Errors(r).find("env POLAR_LOADD_TOKEN_FILE: cannot read"),
            std::string::npos)
      << Errors(r);
  r = ParseConfig(Cfg(""), "c.toml",
                  FakeEnv({{"POLAR_LOADD_METRICS_LISTEN", "nowhere"}}));
  EXPECT_NE(Errors(r).find("env POLAR_LOADD_METRICS_LISTEN"), std::string::npos)
      << Errors(r);
}

TEST(ClusterConfig, EachInstanceGetsItsOwnWebhookReceiverFromTheEnvironment) {
  const std::string webhooks = R"(
[webhooks]
listen = "127.0.0.1:9478"
register_url = "http://127.0.0.1:9478/webhooks/polar"
register_allow_loopback = true
)";
  ConfigResult r =
      ParseConfig(Cfg(webhooks), "c.toml",
                  FakeEnv({{"POLAR_LOADD_WEBHOOKS_LISTEN", "127.0.0.1:9481"},
                           {"POLAR_LOADD_WEBHOOKS_REGISTER_URL",
                            "http://127.0.0.1:9481/webhooks/polar"}}));
  ASSERT_TRUE(r.config) << Errors(r);
  EXPECT_EQ(r.config->webhooks.listen.port, 9481);
  EXPECT_EQ(r.config->webhooks.register_url,
            "http://127.0.0.1:9481/webhooks/polar");
  std::string notes;
  for (const auto& n : r.notes) notes += n + "\n";
  EXPECT_NE(notes.find("POLAR_LOADD_WEBHOOKS_LISTEN overrides"),
            std::string::npos)
      << notes;

  // The variable's URL gets the file key's checks, naming the variable.
  r = ParseConfig(Cfg(webhooks), "c.toml",
                  FakeEnv({{"POLAR_LOADD_WEBHOOKS_REGISTER_URL",
                            "http://10.0.0.5/webhooks/polar"}}));
  EXPECT_NE(Errors(r).find("env POLAR_LOADD_WEBHOOKS_REGISTER_URL: Polar "
                           "delivers only to https:// URLs"),
            std::string::npos)
      << Errors(r);
  r = ParseConfig(Cfg(webhooks), "c.toml",
                  FakeEnv({{"POLAR_LOADD_WEBHOOKS_LISTEN", "nowhere"}}));
  EXPECT_NE(Errors(r).find("env POLAR_LOADD_WEBHOOKS_LISTEN"),
            std::string::npos)
      << Errors(r);
  // Not a way to turn a receiver on: without the table they change nothing.
  r = ParseConfig(Cfg(""), "c.toml",
                  FakeEnv({{"POLAR_LOADD_WEBHOOKS_LISTEN", "127.0.0.1:9481"}}));
  ASSERT_TRUE(r.config) << Errors(r);
  EXPECT_FALSE(r.config->webhooks.enabled);
  // An endpoint made by hand has no URL to override.
  r = ParseConfig(Cfg("[webhooks]\nsecret = \"whsec_dGVzdA==\"\n"), "c.toml",
                  FakeEnv({{"POLAR_LOADD_WEBHOOKS_REGISTER_URL",
                            "https://hooks.example.net/polar"}}));
  EXPECT_NE(Errors(r).find("has no register_url to override"),
            std::string::npos)
      << Errors(r);
}

// The arrival times of `shard` over [origin, origin + span), for a process
// started at `start` (monotonic) whose wall time is wall0 + (start - origin).
std::vector<double> ShardArrivals(const ScheduleSpec& full, ArrivalKind kind,
                                  Shard shard, Duration start, Duration span,
                                  WallTime wall0, uint64_t seed = 7) {
  const MonoTime origin{};
  const MonoTime begin = origin + start;
  const WallTime wall =
      wall0 + std::chrono::duration_cast<WallTime::duration>(start);
  const ScheduleSpec spec =
      shard.sharded() ? full.Scaled(1.0 / shard.count) : full;
  std::optional<double> first;
  if (shard.sharded() && kind == ArrivalKind::kUniform)
    first = ShardPhase(full, shard, wall);
  ArrivalProcess p(spec, kind, shard.Seed(seed), begin, wall, first);
  std::vector<double> out;
  while (p.next() < origin + span) {
    out.push_back(ToSeconds(p.next() - origin));
    p.Advance();
  }
  return out;
}

TEST(ShardSchedule, ThreeShardsStartedAtDifferentMomentsInterleaveEvenly) {
  ScheduleSpec full;
  full.kind = ScheduleKind::kConstant;
  full.rate = 30;  // the cluster's rate: one arrival every 33.3 ms
  // An arbitrary wall time with a fractional second, so the grid is not
  // trivially aligned with the start.
  const WallTime wall0 = WallTime{} + 1'764'000'123'456'789ns;
  std::vector<double> all;
  const Duration starts[] = {0ms, 7ms, 412ms};  // the boxes start apart
  for (uint32_t i = 0; i < 3; ++i) {
    auto mine = ShardArrivals(full, ArrivalKind::kUniform, Shard{i, 3},
                              starts[i], 10s, wall0);
    // Each shard runs 1/3 of 30/s, evenly: 100 ms apart.
    for (std::size_t k = 1; k < mine.size(); ++k)
      EXPECT_NEAR(mine[k] - mine[k - 1], 0.1, 1e-6);
    all.insert(all.end(), mine.begin(), mine.end());
  }
  std::sort(all.begin(), all.end());
  // From the moment all three run, the sum is one arrival every 1/30 s: the
  // schedule one instance at 30/s would produce.
  std::vector<double> joint;
  for (double t : all)
    if (t >= 0.412) joint.push_back(t);
  ASSERT_GT(joint.size(), 250u);
  for (std::size_t k = 1; k < joint.size(); ++k)
    EXPECT_NEAR(joint[k] - joint[k - 1], 1.0 / 30, 1e-6) << "at " << joint[k];
}

TEST(ShardSchedule, SuccessiveShardsArePhasedAThirdOfAnIntervalApart) {
  // The property above is the phase's doing: without it, three shards that
  // start at once would send their arrivals in bursts of three.
  ScheduleSpec full;
  full.kind = ScheduleKind::kConstant;
  full.rate = 30;
  const WallTime wall0 = WallTime{} + 1'764'000'123'456'789ns;
  const double a = ShardPhase(full, Shard{0, 3}, wall0);
  const double b = ShardPhase(full, Shard{1, 3}, wall0);
  const double c = ShardPhase(full, Shard{2, 3}, wall0);
  // Successive shards are a third of an interval apart (mod 1).
  EXPECT_NEAR(std::fmod(b - a + 1, 1.0), 1.0 / 3, 1e-9);
  EXPECT_NEAR(std::fmod(c - b + 1, 1.0), 1.0 / 3, 1e-9);
  EXPECT_EQ(ShardPhase(full, Shard{0, 1}, wall0), 0);
}

TEST(ShardSchedule, RampsAndStepsAddUpToTheFullRateAcrossShards) {
  ScheduleSpec ramp;
  ramp.kind = ScheduleKind::kRamp;
  ramp.from = 10;
  ramp.to = 70;
  ramp.over = 6s;
  ScheduleSpec steps;
  steps.kind = ScheduleKind::kSteps;
  steps.steps = {{40, 2s}, {10, 2s}, {90, 2s}};
  const WallTime wall0 = WallTime{} + 1'764'000'000s;
  for (const ScheduleSpec& full : {ramp, steps}) {
    auto one = BuildSchedule(full, wall0);
    const double expected = IntegrateRate(*one, 0s, 6s);  // 240 and 280
    for (ArrivalKind kind : {ArrivalKind::kUniform, ArrivalKind::kPoisson}) {
      std::size_t total = 0;
      for (uint32_t i = 0; i < 4; ++i)
        total += ShardArrivals(full, kind, Shard{i, 4}, 0s, 6s, wall0).size();
      // Uniform: within one arrival per shard; Poisson: within 4 standard
      // deviations (sqrt(280) ~ 17).
      const double slack = kind == ArrivalKind::kUniform ? 4 : 4 * 17;
      EXPECT_NEAR(static_cast<double>(total), expected, slack);
    }
  }
}

TEST(ShardSchedule, PoissonShardsDrawIndependentGaps) {
  ScheduleSpec full;
  full.kind = ScheduleKind::kConstant;
  full.rate = 300;
  const WallTime wall0 = WallTime{} + 1'764'000'000s;
  auto a =
      ShardArrivals(full, ArrivalKind::kPoisson, Shard{0, 3}, 0s, 2s, wall0);
  auto b =
      ShardArrivals(full, ArrivalKind::kPoisson, Shard{1, 3}, 0s, 2s, wall0);
  ASSERT_GT(a.size(), 100u);
  ASSERT_GT(b.size(), 100u);
  // Same seed in the config, but no shared arrival instant: the streams are
  // not copies (copies would superpose to bursts of 3, not a Poisson
  // process).
  std::set<double> sa(a.begin(), a.end());
  int shared = 0;
  for (double t : b) shared += sa.count(t) ? 1 : 0;
  EXPECT_EQ(shared, 0);
  // Unsharded, the seed is the configured one: nothing changes for a single
  // box.
  EXPECT_EQ(Shard{}.Seed(42), 42u);
  EXPECT_NE(Shard({0, 3}).Seed(42), Shard({1, 3}).Seed(42));
}

TEST(ShardIds, GlobalSequencesAndPoolSlicesNeverCollideAndCoverEverything) {
  for (uint32_t n : {1u, 2u, 3u, 7u}) {
    std::set<uint64_t> sequences;
    std::set<uint64_t> pool;
    const uint64_t pool_size = 100;
    uint64_t slices = 0;
    for (uint32_t i = 0; i < n; ++i) {
      const Shard s{i, n};
      for (uint64_t local = 0; local < 50; ++local)
        EXPECT_TRUE(sequences.insert(s.GlobalSequence(local)).second);
      slices += s.SliceSize(pool_size);
      for (uint64_t j = 0; j < s.SliceSize(pool_size); ++j) {
        EXPECT_LT(s.SliceItem(j), pool_size);
        EXPECT_EQ(s.SliceItem(j) % n, i);
        EXPECT_TRUE(pool.insert(s.SliceItem(j)).second);
      }
    }
    // The shards' numbers are exactly 0 .. 50n-1: one instance's sequence.
    EXPECT_EQ(*sequences.rbegin(), 50u * n - 1);
    EXPECT_EQ(sequences.size(), 50u * n);
    EXPECT_EQ(slices, pool_size);
    EXPECT_EQ(pool.size(), pool_size);
  }
}

// A scenario that records the arrival numbers the runner hands it.
class SequenceScenario final : public Scenario {
 public:
  const std::string& name() const override { return name_; }
  void Start(const Arrival& arrival) override {
    sequences.push_back(arrival.sequence);
  }
  std::size_t in_flight() const override { return 0; }
  std::vector<uint64_t> sequences;

 private:
  std::string name_ = "seq";
};

TEST(ShardRunner, TheRunnerRunsItsShareAndNumbersArrivalsGlobally) {
  prometheus::Registry registry;
  Metrics metrics{registry};
  FakeClock clock;
  FakeTimers timers(clock);
  SequenceScenario scenario;
  ScenarioSeries& series = metrics.Scenario("seq");
  RunnerPlan plan = testing::ConstantPlan(300);
  plan.shard = Shard{1, 3};
  ScenarioRunner runner(timers, clock, scenario, series, plan, RunnerLimits{});
  runner.Start(clock.Now());
  // The gauge shows this instance's share: the cluster's rate over 3.
  EXPECT_DOUBLE_EQ(series.target_rate->Value(), 100);
  timers.AdvanceBy(500ms);
  runner.Stop();
  // 100/s for 0.5 s, each 10 ms apart from a phase inside the first 10 ms
  // (the cluster's grid: shard 1 of 3 takes every third 300/s slot).
  ASSERT_EQ(scenario.sequences.size(), 50u);
  for (std::size_t k = 0; k < scenario.sequences.size(); ++k)
    EXPECT_EQ(scenario.sequences[k], 3 * k + 1);
}

}  // namespace
}  // namespace polar
