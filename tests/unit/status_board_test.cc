// StatusBoard: GET /api/status's numbers come from the last minute (snapshot
// deltas), not from everything since the start; background series appear
// generically from the registry; errors carry redacted snippets.
#include "daemon/status/status_board.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "daemon/status/status_html.h"
#include "daemon/status/status_page.h"
#include "exporters/log.h"

namespace polar {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class IdleScenario final : public Scenario {
 public:
  const std::string& name() const override { return name_; }
  void Start(const Arrival&) override {}
  std::size_t in_flight() const override { return 0; }

 private:
  std::string name_ = "ingest";
};

struct BoardRig {
  prometheus::Registry registry;
  Metrics metrics{registry};
  FakeClock clock;
  // Never advanced: the test drives Sample() itself.
  FakeTimers timers{clock};
  IdleScenario scenario;
  RunnerPlan plan;
  ScenarioRunner runner{timers,   clock,
                        scenario, metrics.Scenario("ingest"),
                        plan,     RunnerLimits{}};
  StepSeries& step = metrics.Step("ingest", "ingest");
  StatusBoard board{timers, clock, metrics, registry};

  void Finish(int n, Duration latency, Outcome outcome = Outcome::kOk) {
    for (int i = 0; i < n; ++i) {
      step.requests[static_cast<std::size_t>(outcome)]->Increment();
      step.latency_fine.Record(latency.count());
    }
  }
  // Advances in 1 s ticks, with the 5 s snapshots where the timer takes them.
  void Advance(int seconds) {
    for (int i = 0; i < seconds; ++i) {
      clock.Advance(1s);
      ++ticks;
      board.Sample(ticks % 5 == 0);
    }
  }
  json Render() {
    StatusDaemonInfo info;
    info.config_path = "/etc/polar-loadd/polar-loadd.toml";
    info.control_enabled = true;
    return json::parse(board.RenderJson(info, {StatusScenario{&runner, 1000}}));
  }
  int ticks = 0;
};

TEST(StatusBoard, PercentilesAndErrorsCoverTheLastMinuteNotTheWholeRun) {
  BoardRig rig;
  // The first minute: 10,000 fast, clean requests.
  rig.Finish(10'000, 2ms);
  rig.Advance(65);
  // The last minute: 1,000 slow ones, 10 % failing.
  rig.Finish(900, 800ms);
  rig.Finish(100, 800ms, Outcome::kHttp5xx);
  rig.Advance(5);
  json s = rig.Render()["scenarios"][0];
  json step = s["steps"][0];
  EXPECT_EQ(step["step"], "ingest");
  EXPECT_EQ(step["total"], 11'000);
  // All-time p50 would be 2 ms; the last minute's is 800 ms (within the
  // 12.5 % coarse bucket).
  EXPECT_NEAR(step["p50_seconds"].get<double>(), 0.8, 0.1);
  EXPECT_NEAR(step["p99_seconds"].get<double>(), 0.8, 0.1);
  EXPECT_NEAR(step["error_ratio"].get<double>(), 0.1, 1e-9);
  EXPECT_EQ(step["outcomes"]["http_5xx"], 100);
  EXPECT_NEAR(step["window_seconds"].get<double>(), 60, 5);
  EXPECT_NEAR(s["error_ratio"].get<double>(), 0.1, 1e-9);
}

TEST(StatusBoard, TheAchievedRateFollowsTheLastSecondsAndFallsToZero) {
  BoardRig rig;
  ScenarioSeries& series = rig.metrics.Scenario("ingest");
  for (int t = 0; t < 10; ++t) {
    series.arrivals->Increment(20);  // 20/s, 2 of them dropped
    series.dropped[0]->Increment(2);
    rig.Advance(1);
  }
  json s = rig.Render()["scenarios"][0];
  EXPECT_NEAR(s["achieved_rate"].get<double>(), 18, 0.5);
  EXPECT_EQ(s["dropped_last_minute"]["in_flight_cap"], 20);
  // Nothing more starts (paused): within the rate window the rate reads 0.
  rig.Advance(6);
  s = rig.Render()["scenarios"][0];
  EXPECT_EQ(s["achieved_rate"].get<double>(), 0);
  EXPECT_EQ(s["dropped_total"]["in_flight_cap"], 20);
}

TEST(StatusBoard, BackgroundSeriesFromOtherPartsAppearWithoutCodeHere) {
  BoardRig rig;
  // Stand-ins for what the webhook receiver and completion probes register.
  auto& deliveries = prometheus::BuildCounter()
                         .Name("polar_loadd_webhook_deliveries_total")
                         .Help("test")
                         .Register(rig.registry)
                         .Add({{"type", "order.paid"}, {"verdict", "ok"}});
  auto& completion =
      prometheus::BuildHistogram()
          .Name("polar_loadd_completion_seconds")
          .Help("test")
          .Register(rig.registry)
          .Add({{"scenario", "checkout"}, {"kind", "checkout_succeeded"}},
               prometheus::Histogram::BucketBoundaries{0.5, 1, 2, 5});
  // Not background work: never listed.
  prometheus::BuildCounter()
      .Name("polar_loadd_other_total")
      .Help("test")
      .Register(rig.registry)
      .Add({})
      .Increment();
  rig.Advance(5);
  for (int i = 0; i < 30; ++i) {
    deliveries.Increment();
    completion.Observe(1.5);
  }
  rig.Advance(60);
  json bg = rig.Render()["background"];
  ASSERT_EQ(bg.size(), 2u) << bg.dump();
  bool saw_counter = false, saw_histogram = false;
  for (const json& b : bg) {
    if (b["metric"] == "polar_loadd_webhook_deliveries_total") {
      saw_counter = true;
      EXPECT_EQ(b["labels"]["verdict"], "ok");
      EXPECT_EQ(b["total"], 30);
      EXPECT_NEAR(b["per_minute"].get<double>(), 30, 1);
    } else {
      saw_histogram = true;
      EXPECT_EQ(b["metric"], "polar_loadd_completion_seconds");
      EXPECT_EQ(b["labels"]["kind"], "checkout_succeeded");
      // 1.5 s lands in (1, 2]: interpolated p50 1.5, p99 ~2.
      EXPECT_NEAR(b["p50_seconds"].get<double>(), 1.5, 0.01);
      EXPECT_NEAR(b["p99_seconds"].get<double>(), 1.99, 0.01);
    }
  }
  EXPECT_TRUE(saw_counter && saw_histogram);
}

TEST(StatusBoard, RecentErrorsAreListedWithRedactedSnippets) {
  BoardRig rig;
  RegisterSecret("polar_oat_TOPSECRETTOKEN");
  rig.metrics.recent_errors().Record(
      "ingest", "ingest", Outcome::kHttp4xx, 401, rig.clock.Now(), "",
      R"({"error":"invalid_token","token":"polar_oat_TOPSECRETTOKEN"})");
  rig.Advance(3);
  json page = rig.Render();
  ClearSecretsForTesting();
  ASSERT_EQ(page["errors"].size(), 1u);
  json e = page["errors"][0];
  EXPECT_EQ(e["outcome"], "http_4xx");
  EXPECT_EQ(e["status"], 401);
  EXPECT_EQ(e["count"], 1);
  EXPECT_NEAR(e["last_seen_seconds_ago"].get<double>(), 3, 1e-6);
  EXPECT_EQ(page.dump().find("TOPSECRET"), std::string::npos);
  EXPECT_NE(e["snippet"].get<std::string>().find("invalid_token"),
            std::string::npos);
}

TEST(StatusBoard, TheControlStateOfEachScenarioIsShown) {
  BoardRig rig;
  rig.runner.Start(rig.clock.Now());
  rig.runner.Pause();
  rig.runner.OverrideRate(7, rig.clock.Now() + 10min);
  rig.clock.Advance(1min);
  json c = rig.Render()["scenarios"][0]["control"];
  rig.runner.Stop();
  EXPECT_TRUE(c["paused"].get<bool>());
  EXPECT_EQ(c["override"]["rate"], 7);
  EXPECT_NEAR(c["override"]["remaining_seconds"].get<double>(), 540, 1e-6);
}

TEST(StatusBoard, WebhooksAreAMatrixOfTypeByVerdictWithoutAllZeroRows) {
  BoardRig rig;
  // What the receiver registers: every type x verdict, all zero at first.
  auto& deliveries = prometheus::BuildCounter()
                         .Name("polar_loadd_webhook_deliveries_total")
                         .Help("test")
                         .Register(rig.registry);
  auto& evicted = prometheus::BuildCounter()
                      .Name("polar_loadd_webhook_expectations_evicted_total")
                      .Help("test")
                      .Register(rig.registry);
  for (const char* type : {"checkout.created", "order.paid", "other"}) {
    for (const char* verdict : {"ok", "lost", "bad_signature", "duplicate"})
      deliveries.Add({{"type", type}, {"verdict", verdict}});
    evicted.Add({{"type", type}});
  }
  rig.Advance(5);
  deliveries.Add({{"type", "order.paid"}, {"verdict", "ok"}}).Increment(40);
  deliveries.Add({{"type", "order.paid"}, {"verdict", "lost"}}).Increment(2);
  evicted.Add({{"type", "other"}}).Increment(3);
  rig.Advance(60);
  json w = rig.Render()["webhooks"];
  // Verdict columns in reading order: what worked, repeats, refusals, losses.
  EXPECT_EQ(w["verdicts"], json({"ok", "duplicate", "bad_signature", "lost"}));
  ASSERT_EQ(w["rows"].size(), 2u) << w.dump();
  EXPECT_EQ(w["hidden_types"], 1);  // checkout.created: nothing at all
  json paid = w["rows"][0];
  EXPECT_EQ(paid["type"], "order.paid");
  EXPECT_EQ(paid["counts"]["ok"], 40);
  EXPECT_EQ(paid["counts"]["lost"], 2);
  EXPECT_EQ(paid["counts"]["duplicate"], 0);
  EXPECT_EQ(paid["total"], 42);
  EXPECT_NEAR(paid["per_minute"].get<double>(), 42, 1);
  json other = w["rows"][1];
  EXPECT_EQ(other["type"], "other");
  EXPECT_EQ(other["total"], 0);
  EXPECT_EQ(other["evicted"], 3);  // shown: evictions are news
}

TEST(StatusBoard, ThePageCarriesItsNumbersForBrowsersWithoutJavaScript) {
  BoardRig rig;
  rig.metrics.recent_errors().Record(
      "ingest", "ingest", Outcome::kHttp5xx, 502, rig.clock.Now(), "",
      R"(<script>alert("from the target")</script>)");
  rig.Finish(600, 20ms);
  rig.Advance(10);
  StatusDaemonInfo info;
  info.config_path = "/etc/polar-loadd/<odd>.toml";
  const std::string page = RenderStatusPage(
      StatusPageHtml(),
      rig.board.RenderJson(info, {StatusScenario{&rig.runner, 1000}}),
      "12:00:00 UTC");
  EXPECT_EQ(page.find("<!--server:"), std::string::npos);  // all filled
  EXPECT_NE(page.find("<tr class=\"scenario\" data-scenario=\"ingest\">"),
            std::string::npos);
  EXPECT_NE(page.find("<tr class=\"step\" data-scenario=\"ingest\" "
                      "data-step=\"ingest\">"),
            std::string::npos);
  // The step's last-minute p50 (20 ms, within its 12.5 % bucket), formatted
  // as the script does.
  std::smatch p50;
  ASSERT_TRUE(
      std::regex_search(page, p50,
                        std::regex("data-step=\"ingest\">.*?data-field=\"p50\" "
                                   "class=\"num\">([0-9.]+) ms<")))
      << page;
  EXPECT_NEAR(std::stod(p50[1].str()), 20, 2.5);
  EXPECT_NE(page.find("/etc/polar-loadd/&lt;odd&gt;.toml"), std::string::npos);
  EXPECT_NE(page.find("as of 12:00:00 UTC"), std::string::npos);
  // What the target sent is text, never markup.
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;alert(&quot;from the target&quot;)"),
            std::string::npos);
  EXPECT_NE(page.find("<meta http-equiv=\"refresh\" content=\"10\">"),
            std::string::npos);
}

}  // namespace
}  // namespace polar
