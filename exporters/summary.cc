#include "exporters/summary.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "exporters/markup.h"

namespace polar {
namespace {

// "850us", "12.3ms", "1.52s": three significant digits, the unit a reader
// expects at that size.
std::string Dur(double seconds) {
  if (seconds <= 0) return "0";
  if (seconds < 1e-3) return fmt::format("{:.0f}us", seconds * 1e6);
  if (seconds < 1e-2) return fmt::format("{:.2f}ms", seconds * 1e3);
  if (seconds < 1e-1) return fmt::format("{:.1f}ms", seconds * 1e3);
  if (seconds < 1) return fmt::format("{:.0f}ms", seconds * 1e3);
  if (seconds < 10) return fmt::format("{:.2f}s", seconds);
  return fmt::format("{:.1f}s", seconds);
}

std::string Limit(const Threshold& t, double value) {
  if (t.metric == ThresholdMetric::kErrorRatio)
    return fmt::format("{:.2f}%", value * 100);
  return Dur(value);
}

double Actual(const StepSummary& s, ThresholdMetric m) {
  switch (m) {
    case ThresholdMetric::kLatencyP50:
      return s.latency.p50;
    case ThresholdMetric::kLatencyP90:
      return s.latency.p90;
    case ThresholdMetric::kLatencyP99:
      return s.latency.p99;
    case ThresholdMetric::kLatencyMax:
      return s.latency.max;
    case ThresholdMetric::kErrorRatio:
      return s.error_ratio;
  }
  return 0;
}

std::string Describe(const ThresholdResult& r) {
  const Threshold& t = r.threshold;
  std::string what =
      t.metric == ThresholdMetric::kErrorRatio
          ? "error ratio"
          : fmt::format("{} latency", ThresholdMetricName(t.metric));
  if (r.no_data)
    return fmt::format("{}/{} {}: {} (limit {}, from {})", t.scenario, t.step,
                       what,
                       t.metric == ThresholdMetric::kErrorRatio
                           ? "no finished requests"
                           : "no request answered ok or timed out",
                       Limit(t, t.limit), t.source);
  return fmt::format("{}/{} {} {} {} {} (from {})", t.scenario, t.step, what,
                     Limit(t, r.actual), r.passed ? "<=" : ">",
                     Limit(t, t.limit), t.source);
}

nlohmann::json StatsJson(const LatencyStats& s) {
  return {{"p50", s.p50}, {"p90", s.p90}, {"p99", s.p99}, {"max", s.max}};
}

}  // namespace

std::string FormatLatency(double seconds) { return Dur(seconds); }
std::string FormatThresholdValue(const Threshold& threshold, double value) {
  return Limit(threshold, value);
}
std::string DescribeThreshold(const ThresholdResult& result) {
  return Describe(result);
}

LatencyStats LatencyStats::From(const LogHistogram& h) {
  LatencyStats s;
  s.p50 = static_cast<double>(h.Percentile(0.50)) * 1e-9;
  s.p90 = static_cast<double>(h.Percentile(0.90)) * 1e-9;
  s.p99 = static_cast<double>(h.Percentile(0.99)) * 1e-9;
  s.max = static_cast<double>(h.max()) * 1e-9;
  return s;
}

std::string_view ThresholdMetricName(ThresholdMetric metric) {
  switch (metric) {
    case ThresholdMetric::kLatencyP50:
      return "p50";
    case ThresholdMetric::kLatencyP90:
      return "p90";
    case ThresholdMetric::kLatencyP99:
      return "p99";
    case ThresholdMetric::kLatencyMax:
      return "max";
    case ThresholdMetric::kErrorRatio:
      return "error_ratio";
  }
  return "p99";
}

bool RunSummary::passed() const {
  return std::all_of(thresholds.begin(), thresholds.end(),
                     [](const ThresholdResult& r) { return r.passed; });
}

std::vector<ThresholdResult> EvaluateThresholds(
    const std::vector<StepSummary>& steps,
    const std::vector<Threshold>& thresholds) {
  std::vector<ThresholdResult> results;
  for (const Threshold& t : thresholds) {
    ThresholdResult r;
    r.threshold = t;
    auto it =
        std::find_if(steps.begin(), steps.end(), [&](const StepSummary& s) {
          return s.scenario == t.scenario && s.step == t.step;
        });
    // A latency limit needs answers to measure: a step whose every request
    // failed has no latency, which must not pass as 0 s.
    const bool latency = t.metric != ThresholdMetric::kErrorRatio;
    if (it == steps.end() || it->count == 0 || (latency && it->timed == 0)) {
      r.no_data = true;
      r.passed = false;
    } else {
      r.actual = Actual(*it, t.metric);
      r.passed = r.actual <= t.limit;
    }
    results.push_back(std::move(r));
  }
  return results;
}

std::string FormatSummaryText(const RunSummary& summary) {
  std::string out = fmt::format("polar-loadd run summary ({:.1f} s)\n\n",
                                summary.duration_seconds);
  out += fmt::format(
      "{:<16} {:<10} {:>9} {:>9} {:>7}  {:>8} {:>8} {:>8} {:>8}  {:>8} {:>8} "
      "{:>8} {:>8}\n",
      "scenario", "step", "count", "rate/s", "errors", "lat p50", "p90", "p99",
      "max", "svc p50", "p90", "p99", "max");
  for (const StepSummary& s : summary.steps) {
    out += fmt::format(
        "{:<16} {:<10} {:>9} {:>9.1f} {:>6.2f}%  {:>8} {:>8} {:>8} {:>8}  "
        "{:>8} {:>8} {:>8} {:>8}\n",
        s.scenario, s.step, s.count, s.rate, s.error_ratio * 100,
        Dur(s.latency.p50), Dur(s.latency.p90), Dur(s.latency.p99),
        Dur(s.latency.max), Dur(s.service.p50), Dur(s.service.p90),
        Dur(s.service.p99), Dur(s.service.max));
    std::string errors;
    for (Outcome o : AllOutcomes()) {
      const uint64_t n = s.outcomes[static_cast<std::size_t>(o)];
      if (o != Outcome::kOk && n > 0)
        errors += fmt::format(" {}={}", OutcomeName(o), n);
    }
    if (!errors.empty()) out += fmt::format("{:<27} outcomes:{}\n", "", errors);
  }
  out += "\n";
  for (const ScenarioTotals& t : summary.scenarios) {
    out += fmt::format("{}: {} arrivals", t.scenario, t.arrivals);
    std::string dropped;
    for (std::size_t i = 0; i < kDropReasonCount; ++i) {
      if (t.dropped[i] > 0)
        dropped += fmt::format(
            " {}={}", DropReasonName(static_cast<DropReason>(i)), t.dropped[i]);
    }
    out += dropped.empty() ? ", none dropped\n"
                           : fmt::format(", dropped:{}\n", dropped);
  }
  if (summary.thresholds.empty()) {
    out += "\nno thresholds configured: result PASS\n";
    return out;
  }
  out += "\nthresholds:\n";
  std::size_t held = 0;
  for (const ThresholdResult& r : summary.thresholds) {
    held += r.passed ? 1 : 0;
    out += fmt::format("  {} {}\n", r.passed ? "PASS" : "FAIL", Describe(r));
  }
  out += fmt::format("\nresult: {} ({} of {} thresholds held)\n",
                     summary.passed() ? "PASS" : "FAIL", held,
                     summary.thresholds.size());
  return out;
}

std::string FormatSummaryJson(const RunSummary& summary) {
  nlohmann::json j;
  j["duration_seconds"] = summary.duration_seconds;
  j["passed"] = summary.passed();
  j["steps"] = nlohmann::json::array();
  for (const StepSummary& s : summary.steps) {
    nlohmann::json outcomes = nlohmann::json::object();
    for (Outcome o : AllOutcomes())
      outcomes[std::string(OutcomeName(o))] =
          s.outcomes[static_cast<std::size_t>(o)];
    j["steps"].push_back({{"scenario", s.scenario},
                          {"step", s.step},
                          {"count", s.count},
                          {"rate", s.rate},
                          {"error_ratio", s.error_ratio},
                          {"outcomes", outcomes},
                          {"latency_seconds", StatsJson(s.latency)},
                          {"service_seconds", StatsJson(s.service)}});
  }
  j["scenarios"] = nlohmann::json::array();
  for (const ScenarioTotals& t : summary.scenarios) {
    nlohmann::json dropped = nlohmann::json::object();
    for (std::size_t i = 0; i < kDropReasonCount; ++i)
      dropped[std::string(DropReasonName(static_cast<DropReason>(i)))] =
          t.dropped[i];
    j["scenarios"].push_back({{"scenario", t.scenario},
                              {"arrivals", t.arrivals},
                              {"dropped", dropped}});
  }
  j["thresholds"] = nlohmann::json::array();
  for (const ThresholdResult& r : summary.thresholds) {
    const Threshold& t = r.threshold;
    nlohmann::json item = {
        {"scenario", t.scenario},
        {"step", t.step},
        {"metric", std::string(ThresholdMetricName(t.metric))},
        {"limit", t.limit},
        {"source", t.source},
        {"passed", r.passed}};
    item["actual"] =
        r.no_data ? nlohmann::json(nullptr) : nlohmann::json(r.actual);
    j["thresholds"].push_back(std::move(item));
  }
  return j.dump(2) + "\n";
}

std::string FormatJUnit(const RunSummary& summary) {
  std::size_t failures = 0;
  for (const auto& r : summary.thresholds) failures += r.passed ? 0 : 1;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuites name=\"polar-loadd\" tests=\"{}\" failures=\"{}\" "
      "time=\"{:.3f}\">\n",
      summary.thresholds.size(), failures, summary.duration_seconds);
  out += fmt::format(
      "  <testsuite name=\"polar-loadd thresholds\" tests=\"{}\" "
      "failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"{:.3f}\">\n",
      summary.thresholds.size(), failures, summary.duration_seconds);
  for (const ThresholdResult& r : summary.thresholds) {
    const Threshold& t = r.threshold;
    std::string name = fmt::format("{} <= {}", ThresholdMetricName(t.metric),
                                   Limit(t, t.limit));
    out += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0\">",
                       EscapeMarkup(t.scenario + "." + t.step),
                       EscapeMarkup(name));
    if (!r.passed) {
      out += fmt::format("\n      <failure message=\"{}\"/>\n    ",
                         EscapeMarkup(Describe(r)));
    }
    out += "</testcase>\n";
  }
  out += "    <system-out>" + EscapeMarkup(FormatSummaryText(summary)) +
         "</system-out>\n";
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

std::string FormatProgress(double elapsed, double duration,
                           const std::vector<StepSummary>& steps) {
  uint64_t count = 0, errors = 0;
  for (const StepSummary& s : steps) {
    count += s.count;
    errors += s.count - s.outcomes[static_cast<std::size_t>(Outcome::kOk)];
  }
  double rate = elapsed > 0 ? static_cast<double>(count) / elapsed : 0;
  return fmt::format(
      "{:.0f}/{:.0f} s: {} requests ({:.1f}/s), {} errors ({:.2f}%)", elapsed,
      duration, count, rate, errors,
      count ? 100.0 * static_cast<double>(errors) / static_cast<double>(count)
            : 0.0);
}

}  // namespace polar
