// End to end for scaling out (docs/operations.md, "Scaling out"): three
// polar-loadd processes, shards 0/3 (from the file), 1/3 and 2/3 (from
// POLAR_LOADD_SHARD, as polar-loadd@.service and the StatefulSet set it), run
// one load plan against one polar-sim while a real Prometheus (Debian's
// package) scrapes all three.
//
// Checked: the target received the configured rate within 1% in total, each
// shard a third of it (rates over the time polar-sim measured between each
// shard's first and last event, not over the configured duration), polar-sim
// answered no event as a duplicate (the shards' external_ids never collide),
// and Prometheus's cluster-wide
// queries, written as the dashboards write them (sum of rates; p99 from the
// sum of bucket rates), equal the sum of the per-instance series they are
// made of.
//
// Bounded: each instance runs `--once --duration 12s`; 90 batches/s in all
// (30 per instance) is light enough for the sanitizer build, so the rate is
// not scaled by POLAR_TEST_RATE_SCALE: the 1% criterion needs the counts.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/daemons.h"
#include "tests/support/process.h"
#include "tests/support/prometheus.h"

namespace polar::cluster_e2e {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Process;

constexpr int kShards = 3;
constexpr double kRate = 90;  // batches/s for the whole cluster
constexpr int kSeconds = 12;  // each instance's --once --duration

// Prometheus started before the load boxes exist (it takes seconds to get
// ready); SetTargets() hands it their addresses through file_sd, which it
// watches, so no scrape time is lost.
class Prometheus : public testing::TestPrometheus {
 public:
  Prometheus() : Prometheus(testing::TempDir()) {}
  void SetTargets(const std::vector<std::string>& targets) {
    json list = json::array({{{"targets", targets}}});
    // Written aside and renamed: Prometheus never reads half a file.
    testing::WriteFile(dir() + "/targets.json.new", list.dump());
    std::filesystem::rename(dir() + "/targets.json.new",
                            dir() + "/targets.json");
  }
  // The single value of a query that returns one series.
  double Scalar(const std::string& expr, double time) const {
    json result = Query(expr, time);
    if (result.size() != 1)
      throw std::runtime_error(expr + ": " + std::to_string(result.size()) +
                               " series, expected 1: " + result.dump());
    return std::stod(result[0]["value"][1].get<std::string>());
  }

 private:
  explicit Prometheus(const std::string& dir)
      : TestPrometheus(PROMETHEUS_BIN, dir, Config(dir)) {}
  // No targets yet: SetTargets() adds them.
  static std::string Config(const std::string& dir) {
    testing::WriteFile(dir + "/targets.json", "[]");
    return fmt::format(R"(
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: polar-loadd
    file_sd_configs:
      - files: ["{}/targets.json"]
        refresh_interval: 1s
)",
                       dir);
  }
};

using testing::Sim;

// Each shard's events go to a customer of its own (polar-sim's seeded
// loadtest-customer-INDEX), so the test can tell them apart at the target:
// polar-sim lists events by customer, not by external_id.
std::string ShardCustomer(int index) {
  return fmt::format("loadtest-customer-{}", index);
}

struct Shard {
  std::unique_ptr<Process> process;
  std::string instance;  // host:port, Prometheus's `instance` label
  std::string summary;   // --summary-json path
};

// `cluster` is the [cluster] table; `env` may add POLAR_LOADD_SHARD; `index`
// is the shard it will run, for its customer id.
Shard StartShard(const Sim& sim, const std::string& cluster,
                 std::map<std::string, std::string> env, int index) {
  const std::string dir = testing::TempDir();
  testing::WriteFile(dir + "/polar-loadd.toml",
                     fmt::format(R"(
[target]
base_url = "{}"
timeout = "10s"

[metrics]
listen = "127.0.0.1:0"

[daemon]
shutdown_grace = "5s"

{}

[scenarios.ingest]
type = "event_ingestion"
rate = "{}/s"
batch_size = 1
external_customer_ids = ["{}"]
)",
                                 sim.ready["base_url"].get<std::string>(),
                                 cluster, kRate, ShardCustomer(index)));
  env["LOAD_TEST_API_TOKEN"] = sim.ready["token"].get<std::string>();
  Shard s;
  s.summary = dir + "/summary.json";
  s.process = std::make_unique<Process>(
      POLAR_LOADD_BIN,
      std::vector<std::string>{"--config", dir + "/polar-loadd.toml", "--once",
                               "--duration", std::to_string(kSeconds) + "s",
                               "--summary-json", s.summary},
      env);
  auto err = s.process->WaitForStderr("/metrics", 10s);
  if (!err)
    throw std::runtime_error("polar-loadd did not start: " +
                             s.process->Stderr());
  std::smatch m;
  std::regex re("http://(127\\.0\\.0\\.1:[0-9]+)/metrics");
  if (!std::regex_search(*err, m, re))
    throw std::runtime_error("no metrics URL in: " + *err);
  s.instance = m[1].str();
  return s;
}

// Prometheus's histogram_quantile over cumulative buckets {le: count}, as
// promql/quantile.go computes it (linear within the bucket, the lowest bucket
// starting at 0, the +Inf bucket answered with the highest finite bound).
double HistogramQuantile(double q, const std::map<double, double>& buckets) {
  if (buckets.empty()) return std::nan("");
  const double total = buckets.rbegin()->second;
  if (total == 0) return std::nan("");
  const double rank = q * total;
  double lower = 0, below = 0;
  auto last_finite = std::prev(buckets.end());
  if (std::isinf(last_finite->first) && last_finite != buckets.begin())
    --last_finite;
  for (auto it = buckets.begin(); it != buckets.end(); ++it) {
    if (it->second >= rank) {
      if (std::isinf(it->first)) return last_finite->first;
      if (it == buckets.begin() && it->first <= 0) return it->first;
      return lower +
             (it->first - lower) * (rank - below) / (it->second - below);
    }
    lower = it->first;
    below = it->second;
  }
  return last_finite->first;
}

double Value(const json& series) {
  return std::stod(series["value"][1].get<std::string>());
}

double SimCounter(const Sim& sim, const std::string& series) {
  auto r = testing::HttpGet(sim.ready["metrics_url"].get<std::string>());
  EXPECT_EQ(r.status, 200) << r.error;
  auto metrics = testing::ParseMetrics(r.body);
  auto it = metrics.find(series);
  if (it == metrics.end()) {
    ADD_FAILURE() << series << " not in polar-sim's /metrics:\n" << r.body;
    return -1;
  }
  return it->second;
}

TEST(
    Cluster,
    ThreeShardsAddUpToTheConfiguredRateWithoutDuplicatesAndPrometheusSumsTheirParts) {
  Prometheus prom;
  // Events are listed as soon as they are stored (no Tinybird delay).
  Sim sim = testing::StartSim({"--event-lag", "0ms"});
  std::vector<Shard> shards;
  shards.push_back(StartShard(sim, "[cluster]\nshard = \"0/3\"", {}, 0));
  for (int i = 1; i < kShards; ++i) {
    shards.push_back(StartShard(sim, "[cluster]\nshards = 3",
                                {{"POLAR_LOADD_SHARD", std::to_string(i)}}, i));
  }
  std::vector<std::string> instances;
  for (const Shard& s : shards) instances.push_back(s.instance);
  prom.SetTargets(instances);

  // Wait until every instance has been scraped a few times, then evaluate
  // everything at one instant T while all three still run.
  const std::string ingest = R"(scenario="ingest")";
  auto deadline = std::chrono::steady_clock::now() + 20s;
  double t = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    json r = prom.Query(fmt::format(
        "count_over_time(polar_loadd_arrivals_total{{{}}}[1m]) >= 5", ingest));
    if (r.size() == kShards) {
      t = std::chrono::duration<double>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
      break;
    }
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_GT(t, 0) << "Prometheus did not scrape all three instances 5 times:\n"
                  << prom.Stderr();

  // Each instance says which share it runs; together they are 0, 1, 2 of 3.
  std::set<int> indexes;
  for (const json& s : prom.Query("polar_loadd_shard_index", t))
    indexes.insert(static_cast<int>(Value(s)));
  EXPECT_EQ(indexes, (std::set<int>{0, 1, 2}));
  for (const json& s : prom.Query("polar_loadd_shards", t))
    EXPECT_EQ(Value(s), kShards) << s.dump();
  // The dashboards' "target" line: the per-instance targets sum to the plan.
  EXPECT_NEAR(
      prom.Scalar(fmt::format("sum(polar_loadd_target_rate{{{}}})", ingest), t),
      kRate, 1e-9);

  // Rate: the cluster-wide sum equals the sum of its instances' rates, and
  // each instance carries a third.
  const std::string rate =
      fmt::format("rate(polar_loadd_requests_total{{{}}}[4s])", ingest);
  const double total = prom.Scalar("sum(" + rate + ")", t);
  double parts = 0;
  const json per_instance = prom.Query("sum by (instance) (" + rate + ")", t);
  ASSERT_EQ(per_instance.size(), static_cast<std::size_t>(kShards));
  for (const json& s : per_instance) {
    parts += Value(s);
    // rate() over 1 s scrapes extrapolates at the window's edges: ±15%.
    EXPECT_NEAR(Value(s), kRate / kShards, 0.15 * kRate / kShards) << s.dump();
  }
  EXPECT_NEAR(total, parts, 1e-9 * total);
  EXPECT_NEAR(total, kRate, 0.1 * kRate);

  // p99: histogram_quantile over the summed bucket rates (the dashboards'
  // form) equals the quantile of the instances' buckets merged by hand.
  const std::string buckets = fmt::format(
      "rate(polar_loadd_request_latency_seconds_bucket{{{},step=\"ingest\"}}"
      "[4s])",
      ingest);
  const double p99 =
      prom.Scalar("histogram_quantile(0.99, sum by (le) (" + buckets + "))", t);
  std::map<double, double> merged;
  std::set<std::string> bucket_instances;
  for (const json& s : prom.Query(buckets, t)) {
    const std::string le = s["metric"]["le"];
    merged[le == "+Inf" ? std::numeric_limits<double>::infinity()
                        : std::stod(le)] += Value(s);
    bucket_instances.insert(s["metric"]["instance"]);
  }
  EXPECT_EQ(bucket_instances.size(), static_cast<std::size_t>(kShards));
  const double by_hand = HistogramQuantile(0.99, merged);
  ASSERT_TRUE(std::isfinite(p99)) << p99;
  EXPECT_NEAR(p99, by_hand, 1e-9 * by_hand) << "merged buckets by hand";

  // The runs end by themselves; every arrival was sent and answered ok.
  uint64_t arrivals = 0, ok = 0;
  for (Shard& s : shards) {
    auto code = s.process->Wait(30s);
    ASSERT_TRUE(code) << "still running: " << s.process->Stderr();
    EXPECT_EQ(*code, 0) << s.process->Stderr();
    json summary = json::parse(testing::ReadFile(s.summary), nullptr, false);
    ASSERT_FALSE(summary.is_discarded()) << s.summary;
    ASSERT_EQ(summary["scenarios"].size(), 1u) << summary.dump();
    const json& sc = summary["scenarios"][0];
    const uint64_t mine = sc["arrivals"];
    // A third of 90/s for 12 s, give or take the one arrival at each end.
    EXPECT_NEAR(static_cast<double>(mine), kRate / kShards * kSeconds, 1.5)
        << s.instance;
    for (const auto& [reason, n] : sc["dropped"].items())
      EXPECT_EQ(n, 0) << reason;
    arrivals += mine;
    for (const json& step : summary["steps"]) {
      EXPECT_EQ(step["outcomes"]["ok"], step["count"]) << step.dump();
      ok += step["outcomes"]["ok"].get<uint64_t>();
    }
  }
  EXPECT_EQ(ok, arrivals);

  // What the target received, and not one event answered as a duplicate.
  const double inserted =
      SimCounter(sim, R"(polar_sim_events_ingested_total{result="inserted"})");
  const double duplicates =
      SimCounter(sim, R"(polar_sim_events_ingested_total{result="duplicate"})");
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(inserted, static_cast<double>(arrivals));

  // The rate, over time measured at the target: each shard's events as
  // polar-sim stamped them on arrival, n events over the n - 1 gaps from its
  // first to its last (each shard over its own span: they started a moment
  // apart). A third of 90/s each within 1%, and 90/s within 1% in all. The
  // count alone cannot tell a run that kept its rate from one that took
  // twice as long at half the rate: this can (45/s would miss by 50%).
  double achieved = 0, listed = 0;
  for (int i = 0; i < kShards; ++i) {
    const std::vector<double> times = testing::StoredEventTimes(
        sim, "external_customer_id=" + ShardCustomer(i));
    ASSERT_GE(times.size(), 2u) << "shard " << i;
    listed += static_cast<double>(times.size());
    const double span = times.back() - times.front();
    const double rate_i = static_cast<double>(times.size() - 1) / span;
    EXPECT_NEAR(rate_i, kRate / kShards, 0.01 * kRate / kShards)
        << "shard " << i << ": " << times.size() << " events in " << span
        << " s";
    achieved += rate_i;
  }
  EXPECT_EQ(listed, inserted) << "every event went to its shard's customer";
  EXPECT_NEAR(achieved, kRate, 0.01 * kRate);
  std::printf(
      "cluster: %.0f events from %d shards at %.2f/s of %.0f/s (%+.2f%%), "
      "measured at the target; Prometheus at T: sum(rate) %.2f/s, p99 %.4f "
      "s\n",
      inserted, kShards, achieved, kRate, 100 * (achieved - kRate) / kRate,
      total, p99);
}

}  // namespace
}  // namespace polar::cluster_e2e
