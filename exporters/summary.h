// Run summary: what a one-shot run (`polar-loadd --once`) prints and writes:
// per scenario and step the request count, achieved rate, error share and
// p50/p90/p99/max of both latencies; the threshold verdicts; as a text table,
// JSON and JUnit XML.
//
// Pure value types and formatting functions: any thread, no I/O. The daemon
// fills a RunSummary from Metrics at the end of the run and writes the strings
// where the command line says.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "exporters/log_histogram.h"
#include "exporters/metrics.h"
#include "exporters/outcome.h"

namespace polar {

struct LatencyStats {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;  // seconds
  static LatencyStats From(const LogHistogram& h);
};

struct StepSummary {
  std::string scenario;
  std::string step;
  uint64_t count = 0;  // finished requests
  // Requests in the latency figures: ok answers and timeouts (failures are
  // not answers; scenarios/scenario.h, StepRecorder::Record).
  uint64_t timed = 0;
  std::array<uint64_t, kOutcomeCount> outcomes{};
  double rate = 0;         // finished requests per second of the run
  double error_ratio = 0;  // share not `ok`
  LatencyStats latency;    // from the intended start
  LatencyStats service;    // from the actual send
};

struct ScenarioTotals {
  std::string scenario;
  uint64_t arrivals = 0;
  std::array<uint64_t, kDropReasonCount> dropped{};
};

// One limit on one step. Latency limits apply to the latency from the intended
// start (what a user feels), in seconds; error_ratio to the share of requests
// whose outcome is not `ok`.
enum class ThresholdMetric : unsigned char {
  kLatencyP50,
  kLatencyP90,
  kLatencyP99,
  kLatencyMax,
  kErrorRatio,
};
std::string_view ThresholdMetricName(ThresholdMetric metric);  // "p99", ...

struct Threshold {
  std::string scenario;
  std::string step;
  ThresholdMetric metric = ThresholdMetric::kLatencyP99;
  double limit = 0;
  std::string source;  // the config key or environment variable it came from
  bool operator==(const Threshold&) const = default;
};

struct ThresholdResult {
  Threshold threshold;
  double actual = 0;
  bool passed = false;
  // The step finished no request (or, for a latency limit, none answered ok
  // or timed out): fails, says so.
  bool no_data = false;
};

struct RunSummary {
  double duration_seconds = 0;
  std::vector<StepSummary> steps;
  std::vector<ScenarioTotals> scenarios;
  std::vector<ThresholdResult> thresholds;
  bool passed() const;
};

// Checks every threshold against the step it names. A threshold on a step
// that finished no request fails (a run that sent nothing proves nothing), and
// so does a latency limit on a step whose every request failed (no latency
// was measured: 0 s would pass anything).
std::vector<ThresholdResult> EvaluateThresholds(
    const std::vector<StepSummary>& steps,
    const std::vector<Threshold>& thresholds);

std::string FormatSummaryText(const RunSummary& summary);
// The pieces the text summary is made of, for other formats (the HTML
// report): "850us", "12.3ms", "1.52s"; a limit or actual in the threshold's
// unit; one verdict as a sentence.
std::string FormatLatency(double seconds);
std::string FormatThresholdValue(const Threshold& threshold, double value);
std::string DescribeThreshold(const ThresholdResult& result);
std::string FormatSummaryJson(const RunSummary& summary);
std::string FormatJUnit(const RunSummary& summary);

// A short progress line for long runs: elapsed, finished, rate, errors.
std::string FormatProgress(double elapsed_seconds, double duration_seconds,
                           const std::vector<StepSummary>& steps);

}  // namespace polar
