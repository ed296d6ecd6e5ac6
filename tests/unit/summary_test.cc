// Run summary: threshold verdicts and the text, JSON and JUnit renderings.
#include "exporters/summary.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace polar {
namespace {

StepSummary Ingest(double p99, double error_ratio, uint64_t count = 1000) {
  StepSummary s;
  s.scenario = "ingest";
  s.step = "ingest";
  s.count = count;
  s.outcomes[0] = static_cast<uint64_t>(double(count) * (1 - error_ratio));
  s.outcomes[static_cast<std::size_t>(Outcome::kHttp5xx)] =
      count - s.outcomes[0];
  s.rate = double(count) / 10;
  s.error_ratio = error_ratio;
  s.timed = s.outcomes[0];
  s.latency = {0.01, 0.05, p99, p99 * 2};
  s.service = {0.005, 0.01, 0.02, 0.03};
  return s;
}

Threshold P99(double limit, std::string source = "cfg") {
  return Threshold{"ingest", "ingest", ThresholdMetric::kLatencyP99, limit,
                   std::move(source)};
}

TEST(Thresholds, AP99OverItsLimitFailsAndUnderItPasses) {
  auto r = EvaluateThresholds({Ingest(0.8, 0)}, {P99(1.0), P99(0.5)});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].passed);
  EXPECT_DOUBLE_EQ(r[0].actual, 0.8);
  EXPECT_FALSE(r[1].passed);
}

TEST(Thresholds, ErrorRatioIsComparedAsAShare) {
  Threshold t{"ingest", "ingest", ThresholdMetric::kErrorRatio, 0.01, "cfg"};
  EXPECT_TRUE(EvaluateThresholds({Ingest(0.1, 0.005)}, {t})[0].passed);
  EXPECT_FALSE(EvaluateThresholds({Ingest(0.1, 0.02)}, {t})[0].passed);
}

TEST(Thresholds, AStepThatFinishedNothingFailsRatherThanPassingVacuously) {
  auto r = EvaluateThresholds({Ingest(0.1, 0, 0)}, {P99(1.0)});
  EXPECT_FALSE(r[0].passed);
  EXPECT_TRUE(r[0].no_data);
  r = EvaluateThresholds({}, {P99(1.0)});
  EXPECT_FALSE(r[0].passed);
}

// Every request failed (fast 500s): there is no latency to judge, and 0 s
// must not pass a latency limit. The error ratio is judged as usual.
TEST(Thresholds, ALatencyLimitOnAStepWhoseEveryRequestFailedFailsNotReadsZero) {
  Threshold errors{"ingest", "ingest", ThresholdMetric::kErrorRatio, 0.01,
                   "cfg"};
  StepSummary failed = Ingest(0, 1.0);
  ASSERT_EQ(failed.timed, 0u);
  auto r = EvaluateThresholds({failed}, {P99(1.0), errors});
  EXPECT_FALSE(r[0].passed);
  EXPECT_TRUE(r[0].no_data);
  EXPECT_FALSE(r[1].passed);
  EXPECT_FALSE(r[1].no_data);
  EXPECT_DOUBLE_EQ(r[1].actual, 1.0);
  RunSummary s;
  s.steps = {failed};
  s.thresholds = r;
  EXPECT_NE(FormatSummaryText(s).find("no request answered ok or timed out"),
            std::string::npos)
      << FormatSummaryText(s);
}

RunSummary Sample(bool pass) {
  RunSummary s;
  s.duration_seconds = 10;
  s.steps = {Ingest(pass ? 0.2 : 1.7, 0.01)};
  ScenarioTotals t;
  t.scenario = "ingest";
  t.arrivals = 1005;
  t.dropped[static_cast<std::size_t>(DropReason::kRetryAfter)] = 5;
  s.scenarios = {t};
  s.thresholds = EvaluateThresholds(
      s.steps, {P99(1.0, "LOAD_TEST_EVENT_INGEST_THRESHOLD")});
  return s;
}

TEST(SummaryText, ShowsTheTableTheDropsAndTheVerdict) {
  std::string text = FormatSummaryText(Sample(false));
  EXPECT_NE(text.find("ingest"), std::string::npos);
  EXPECT_NE(text.find("1.70s"), std::string::npos) << text;
  EXPECT_NE(text.find("retry_after=5"), std::string::npos) << text;
  EXPECT_NE(text.find("http_5xx=10"), std::string::npos) << text;
  EXPECT_NE(text.find("FAIL ingest/ingest p99 latency 1.70s > 1.00s (from "
                      "LOAD_TEST_EVENT_INGEST_THRESHOLD)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("result: FAIL (0 of 1 thresholds held)"),
            std::string::npos);
  EXPECT_NE(FormatSummaryText(Sample(true)).find("result: PASS"),
            std::string::npos);
}

TEST(SummaryJson, CarriesEveryFigureAndTheVerdict) {
  auto j = nlohmann::json::parse(FormatSummaryJson(Sample(false)));
  EXPECT_EQ(j["passed"], false);
  EXPECT_EQ(j["steps"][0]["count"], 1000);
  EXPECT_DOUBLE_EQ(j["steps"][0]["latency_seconds"]["p99"].get<double>(), 1.7);
  EXPECT_EQ(j["steps"][0]["outcomes"]["http_5xx"], 10);
  EXPECT_EQ(j["scenarios"][0]["dropped"]["retry_after"], 5);
  EXPECT_EQ(j["thresholds"][0]["source"], "LOAD_TEST_EVENT_INGEST_THRESHOLD");
  EXPECT_EQ(j["thresholds"][0]["passed"], false);
}

TEST(JUnit, OneTestcasePerThresholdWithAFailureElementWhenItFails) {
  std::string failing = FormatJUnit(Sample(false));
  EXPECT_NE(failing.find("tests=\"1\" failures=\"1\""), std::string::npos);
  EXPECT_NE(failing.find("<testcase classname=\"ingest.ingest\" name=\"p99 "
                         "&lt;= 1.00s\""),
            std::string::npos)
      << failing;
  EXPECT_NE(failing.find("<failure message="), std::string::npos);
  std::string passing = FormatJUnit(Sample(true));
  EXPECT_NE(passing.find("failures=\"0\""), std::string::npos);
  EXPECT_EQ(passing.find("<failure"), std::string::npos);
}

}  // namespace
}  // namespace polar
