// StatusCharts: GET /api/history's series come from the daemon's own
// counters, point by point (rates, percentiles of each point's requests,
// outcomes, in flight, schedule lag), over the last 15 minutes; the report's
// whole-run series cover the run and stay small over a simulated day.
#include "daemon/status/status_charts.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "daemon/config/config.h"
#include "exporters/report.h"

namespace polar {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct ChartsRig {
  prometheus::Registry registry;
  Metrics metrics{registry};
  FakeClock clock;
  StatusCharts charts{clock, metrics};

  // One second of `n` arrivals of `scenario` finishing at `latency` on
  // `step`, `failed` of them with a 5xx.
  void Second(const std::string& scenario, const std::string& step, int n,
              Duration latency, int failed = 0, double target = 0) {
    ScenarioSeries& s = metrics.Scenario(scenario);
    StepSeries& st = metrics.Step(scenario, step);
    s.target_rate->Set(target > 0 ? target : n);
    s.in_flight->Set(n / 10.0);
    s.arrivals->Increment(n);
    for (int i = 0; i < n; ++i) {
      const Outcome o = i < failed ? Outcome::kHttp5xx : Outcome::kOk;
      st.requests[static_cast<std::size_t>(o)]->Increment();
      st.latency_fine.Record(latency.count());
      st.service_fine.Record(latency.count() / 2);
      s.schedule_lag->Observe(0.0002);
    }
  }
  void Tick() {
    clock.Advance(1s);
    charts.Tick();
  }
};

TEST(StatusCharts, LiveChartsShowTheLastFifteenMinutesPointByPoint) {
  ChartsRig rig;
  rig.metrics.Scenario("ingest");
  rig.metrics.Step("ingest", "ingest");
  rig.charts.Track();
  // Ten minutes fast and clean, then ten slow minutes with 10 % failing.
  for (int s = 0; s < 600; ++s) {
    rig.Second("ingest", "ingest", 10, 2ms);
    rig.Tick();
  }
  for (int s = 0; s < 600; ++s) {
    rig.Second("ingest", "ingest", 10, 80ms, 1, 12);
    rig.Tick();
  }
  json h = json::parse(rig.charts.LiveJson({"ingest"}));
  EXPECT_EQ(h["span_seconds"], 4.0);
  EXPECT_EQ(h["window_seconds"], 900.0);
  ASSERT_EQ(h["scenarios"].size(), 1u);
  json sc = h["scenarios"][0];
  ASSERT_EQ(sc["t"].size(), 225u);  // 15 minutes of 4-s points
  const int64_t start = h["start_ms"];
  EXPECT_EQ(sc["t"].back().get<int64_t>(), start + 1'200'000);
  EXPECT_EQ(sc["t"][0].get<int64_t>(), start + 300'000 + 4'000);
  EXPECT_EQ(sc["achieved"].back(), 10.0);
  EXPECT_EQ(sc["target"].back(), 12.0);
  EXPECT_EQ(sc["target"][0], 10.0);
  EXPECT_EQ(sc["in_flight"].back(), 1.0);
  // 0.2 ms lag lands in the (0.1, 0.25] ms Prometheus bucket.
  EXPECT_GT(sc["lag"]["p50"].back().get<double>(), 0.1);
  EXPECT_LE(sc["lag"]["p50"].back().get<double>(), 0.25);
  json step = sc["steps"][0];
  EXPECT_EQ(step["step"], "ingest");
  ASSERT_EQ(step["latency"]["p99"].size(), 225u);
  // Minute 5 (the window's start): 2 ms; the last point: 80 ms. Each point's
  // own requests, within the 12.5 % coarse buckets.
  EXPECT_NEAR(step["latency"]["p50"][0].get<double>(), 2, 0.25);
  EXPECT_NEAR(step["latency"]["p50"].back().get<double>(), 80, 10);
  EXPECT_NEAR(step["service"]["p50"].back().get<double>(), 40, 5);
  EXPECT_EQ(step["rate"].back(), 10.0);
  EXPECT_EQ(step["outcomes"]["http_5xx"].back(), 1.0);
  EXPECT_EQ(step["outcomes"]["http_5xx"][0], 0.0);
  EXPECT_EQ(step["outcomes"]["ok"].back(), 9.0);
  EXPECT_FALSE(step["outcomes"].contains("timeout"));  // never happened
}

TEST(StatusCharts, OnlyTheNamedScenariosAreLiveAndAnIdlePointHasNoPercentile) {
  ChartsRig rig;
  rig.metrics.Step("ingest", "ingest");
  rig.metrics.Step("gone", "ingest");  // e.g. removed by a reload
  rig.metrics.Scenario("ingest");
  rig.metrics.Scenario("gone");
  rig.charts.Track();
  for (int s = 0; s < 8; ++s) {
    if (s < 4) rig.Second("ingest", "ingest", 5, 1ms);
    rig.Tick();
  }
  json h = json::parse(rig.charts.LiveJson({"ingest"}));
  ASSERT_EQ(h["scenarios"].size(), 1u);
  json p50 = h["scenarios"][0]["steps"][0]["latency"]["p50"];
  ASSERT_EQ(p50.size(), 2u);
  EXPECT_TRUE(p50[0].is_number());
  EXPECT_TRUE(p50[1].is_null());  // no request in it: a gap, not a zero
  // The whole run lists every series, up to now.
  json w = json::parse(rig.charts.WholeJson());
  EXPECT_EQ(w["scenarios"].size(), 2u);
  EXPECT_EQ(w["scenarios"][0]["t"].size(), 8u);  // 1-s points so far
}

// The example configuration's shape (three scenarios, nine steps) for a
// simulated day at a steady load: the report stays a few hundred KiB and the
// charts' memory is the same after a day as after three hours.
TEST(StatusCharts, ADayLongRunMakesAReportOfAFewHundredKiBInFlatMemory) {
  ChartsRig rig;
  const std::vector<std::pair<std::string, std::vector<std::string>>> plan = {
      {"checkout", {"create", "update", "status", "confirm", "stream", "get"}},
      {"ingest", {"ingest"}},
      {"visibility", {"ingest", "probe"}}};
  for (const auto& [scenario, steps] : plan) {
    rig.metrics.Scenario(scenario);
    for (const auto& step : steps) rig.metrics.Step(scenario, step);
  }
  rig.charts.Track();
  std::size_t after_3h = 0;
  for (int s = 1; s <= 86'400; ++s) {
    for (const auto& [scenario, steps] : plan) {
      // A daily wave of latency, so the points differ.
      const auto latency = std::chrono::microseconds(
          20'000 + static_cast<int>(15'000 * std::sin(s / 13'750.0)));
      for (const auto& step : steps)
        rig.Second(scenario, step, 2, latency, s % 500 == 0 ? 1 : 0);
    }
    rig.Tick();
    if (s == 3 * 3600) after_3h = rig.charts.MemoryBytes();
  }
  const std::size_t after_24h = rig.charts.MemoryBytes();
  // Per step: a snapshot of 585 counters (4.6 KiB) for each of the ~10
  // levels kept, and the points (112 bytes each) of the live ring and the
  // whole-run levels, 768 at most; ~160 KiB. Per scenario ~20 KiB. Nine steps
  // and three scenarios: under 1.75 MiB, whatever the run's length.
  EXPECT_LT(after_24h, 1792u * 1024) << after_24h;
  EXPECT_LT(after_24h, after_3h * 11 / 10) << after_3h << " " << after_24h;

  const std::string whole = rig.charts.WholeJson();
  json w = json::parse(whole);
  // 86,400 s in 512-s points: 168, and the last partial one.
  EXPECT_EQ(w["span_seconds"], 512.0);
  EXPECT_EQ(w["scenarios"][0]["t"].size(), 169u);
  ReportInput in;
  in.version = "test";
  in.started = rig.clock.WallNow() - 24h;
  in.ended = rig.clock.WallNow();
  in.summary.duration_seconds = 86'400;
  in.config_text = "[target]\nbase_url = \"http://127.0.0.1:8000\"\n";
  in.charts_json = whole;
  const std::string html = FormatReportHtml(in);
  // Chart.js is 195 KiB of it; the data for nine steps a day ~100 KiB.
  EXPECT_LT(html.size(), 400u * 1024) << html.size();
  EXPECT_GT(html.size(), 200u * 1024) << html.size();  // Chart.js is in it
  std::printf(
      "charts memory after 3 h %zu B, after 24 h %zu B; report %zu B "
      "(chart data %zu B)\n",
      after_3h, after_24h, html.size(), whole.size());
}

}  // namespace
}  // namespace polar
