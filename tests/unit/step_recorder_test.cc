// StepRecorder: what one finished request adds to the metrics. Fast failures
// are counted as outcomes but never timed as fast answers.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <chrono>

#include "exporters/metrics.h"
#include "scenarios/scenario.h"
#include "tests/support/process.h"

namespace polar {
namespace {

using namespace std::chrono_literals;

// A request due at t = 100 s, sent `lag` later, answered `service` after that.
Response Answer(Duration lag, Duration service) {
  Response r;
  r.intended = MonoTime{} + 100s;
  r.sent = r.intended + lag;
  r.done = r.sent + service;
  return r;
}

TEST(StepRecorder, FastFailuresAreCountedButNotTimedAsFastAnswers) {
  prometheus::Registry registry;
  Metrics metrics(registry);
  StepRecorder recorder(metrics, "checkout", "create");
  // An ok answer in 200 ms and a timeout at 10 s: timed. A 500 in 3 ms, a
  // refused connection, a 429 and a wrong body in 5 ms: counted only.
  recorder.Record(Outcome::kOk, Answer(0ms, 200ms));
  recorder.Record(Outcome::kTimeout, Answer(0ms, 10s));
  recorder.Record(Outcome::kHttp5xx, Answer(0ms, 3ms));
  recorder.Record(Outcome::kConnectError, Answer(0ms, 1ms));
  recorder.Record(Outcome::kRateLimited, Answer(0ms, 2ms));
  recorder.Record(Outcome::kCheckFailed, Answer(0ms, 5ms));

  auto m = testing::ParseMetrics(SerializeMetrics(registry));
  const std::vector<std::string> step = {"scenario=\"checkout\"",
                                         "step=\"create\""};
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_requests_total", step), 6);
  for (const char* histogram : {"polar_loadd_request_latency_seconds",
                                "polar_loadd_request_service_seconds"}) {
    const std::string name = histogram;
    EXPECT_EQ(testing::SumSeries(m, name + "_count", step), 2) << name;
    EXPECT_DOUBLE_EQ(testing::SumSeries(m, name + "_sum", step), 10.2) << name;
    auto within = [&](const char* le) {
      auto labels = step;
      labels.push_back(std::string("le=\"") + le + "\"");
      return testing::SumSeries(m, name + "_bucket", labels);
    };
    // Nothing within 5 ms: the fast failures are not fast answers.
    EXPECT_EQ(within("0.005"), 0) << name;
    EXPECT_EQ(within("0.2"), 1) << name;
    EXPECT_EQ(within("+Inf"), 2) << name;
  }
  const StepSeries& series = metrics.steps().at({"checkout", "create"});
  EXPECT_EQ(series.latency_fine.count(), 2u);
  EXPECT_EQ(series.service_fine.count(), 2u);
  // The schedule lag is ours whatever Polar answered: all six.
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_schedule_lag_seconds_count",
                               {"scenario=\"checkout\""}),
            6);
}

}  // namespace
}  // namespace polar
