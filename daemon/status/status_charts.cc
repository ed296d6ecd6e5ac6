#include "daemon/status/status_charts.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "daemon/status/status_board.h"

namespace polar {
namespace {

using nlohmann::json;

// Scenario counters, then the schedule lag buckets.
constexpr std::size_t kChartArrivals = 0;
constexpr std::size_t kChartDropped = 1;  // kDropReasonCount of them
constexpr std::size_t kChartRequests = kChartDropped + kDropReasonCount;
constexpr std::size_t kChartFailed = kChartRequests + 1;
constexpr std::size_t kChartScenarioCounters = kChartFailed + 1;
// Scenario gauges.
constexpr std::size_t kChartTargetRate = 0;
constexpr std::size_t kChartInFlight = 1;

uint64_t ChartCount(double v) {
  return v > 0 ? static_cast<uint64_t>(std::llround(v)) : 0;
}

const std::vector<double>& LagUpperBounds() {
  static const std::vector<double> kBounds = [] {
    std::vector<double> b(LagBuckets().begin(), LagBuckets().end());
    b.push_back(std::numeric_limits<double>::infinity());
    return b;
  }();
  return kBounds;
}

SeriesLayout ScenarioLayout() {
  SeriesLayout l;
  l.counters = kChartScenarioCounters;
  l.histograms = {LagUpperBounds()};
  l.gauges = 2;
  return l;
}

SeriesLayout StepLayout() {
  SeriesLayout l;
  l.counters = kOutcomeCount;
  l.histograms = {StatusBoard::CoarseUpperBounds(),
                  StatusBoard::CoarseUpperBounds()};
  return l;
}

// Three significant digits: enough for a chart, and short in the JSON (a
// whole-day report carries some 10,000 numbers).
json Round(double v) {
  if (!std::isfinite(v)) return nullptr;
  if (v == 0) return 0;
  const double scale =
      std::pow(10.0, 2 - static_cast<int>(std::floor(std::log10(std::abs(v)))));
  return std::round(v * scale) / scale;
}

json PerSecond(uint64_t n, double seconds) {
  return seconds > 0 ? Round(static_cast<double>(n) / seconds) : json(nullptr);
}

json Millis(float seconds) {
  return std::isnan(seconds) ? json(nullptr)
                             : Round(static_cast<double>(seconds) * 1e3);
}

// {"p50": [...], "p90": [...], "p99": [...]} in milliseconds, of histogram h.
json Percentiles(const std::vector<SeriesHistory::Point>& points,
                 std::size_t h) {
  json out = json::object();
  for (std::size_t q = 0; q < kChartQuantiles.size(); ++q) {
    json values = json::array();
    for (const auto& p : points)
      values.push_back(Millis(p.quantiles[h * kChartQuantiles.size() + q]));
    out[fmt::format("p{}",
                    static_cast<int>(std::lround(kChartQuantiles[q] * 100)))] =
        std::move(values);
  }
  return out;
}

}  // namespace

StatusCharts::StatusCharts(const Clock& clock, Metrics& metrics,
                           HistoryOptions options)
    : clock_(clock),
      metrics_(metrics),
      options_(options),
      origin_(clock.Now()),
      origin_wall_(clock.WallNow()) {}

std::vector<uint64_t> StatusCharts::ScenarioValues(
    const ScenarioSeries& s, const std::string& name) const {
  std::vector<uint64_t> v(kChartScenarioCounters);
  v[kChartArrivals] = ChartCount(s.arrivals->Value());
  for (std::size_t i = 0; i < kDropReasonCount; ++i)
    v[kChartDropped + i] = ChartCount(s.dropped[i]->Value());
  const auto& steps = metrics_.steps();
  for (auto it = steps.lower_bound({name, ""});
       it != steps.end() && it->first.first == name; ++it) {
    for (std::size_t o = 0; o < kOutcomeCount; ++o) {
      const uint64_t n = ChartCount(it->second.requests[o]->Value());
      v[kChartRequests] += n;
      if (static_cast<Outcome>(o) != Outcome::kOk) v[kChartFailed] += n;
    }
  }
  // The lag histogram's cumulative buckets, as counts per bucket.
  const prometheus::ClientMetric m = s.schedule_lag->Collect();
  uint64_t below = 0;
  for (std::size_t i = 0; i < LagUpperBounds().size(); ++i) {
    const uint64_t cumulative = i < m.histogram.bucket.size()
                                    ? m.histogram.bucket[i].cumulative_count
                                    : below;
    v.push_back(cumulative >= below ? cumulative - below : 0);
    below = std::max(below, cumulative);
  }
  return v;
}

std::vector<double> StatusCharts::ScenarioGauges(
    const ScenarioSeries& s) const {
  return {s.target_rate->Value(), s.in_flight->Value()};
}

std::vector<uint64_t> StatusCharts::StepValues(const StepSeries& s) const {
  std::vector<uint64_t> v(kOutcomeCount);
  for (std::size_t o = 0; o < kOutcomeCount; ++o)
    v[o] = ChartCount(s.requests[o]->Value());
  for (const LogHistogram* h : {&s.latency_fine, &s.service_fine}) {
    const std::vector<uint64_t> coarse = StatusBoard::CoarseCounts(*h);
    v.insert(v.end(), coarse.begin(), coarse.end());
  }
  return v;
}

void StatusCharts::Track() {
  const MonoTime now = clock_.Now();
  for (const auto& [name, series] : metrics_.scenarios()) {
    if (scenarios_.count(name)) continue;
    scenarios_[name].history = std::make_unique<SeriesHistory>(
        ScenarioLayout(), options_, tick_, now, ScenarioValues(series, name));
  }
  for (const auto& [key, series] : metrics_.steps()) {
    if (steps_.count(key)) continue;
    steps_.emplace(
        key, std::make_unique<SeriesHistory>(StepLayout(), options_, tick_, now,
                                             StepValues(series)));
    auto sc = scenarios_.find(key.first);
    if (sc != scenarios_.end()) {
      sc->second.steps.push_back(key.second);
      SortSteps(key.first);
    }
  }
}

void StatusCharts::OrderSteps(const std::string& scenario,
                              std::vector<std::string> steps) {
  step_order_[scenario] = std::move(steps);
  SortSteps(scenario);
}

void StatusCharts::SortSteps(const std::string& scenario) {
  auto sc = scenarios_.find(scenario);
  if (sc == scenarios_.end()) return;
  const std::vector<std::string>& order = step_order_[scenario];
  auto rank = [&](const std::string& step) {
    return std::make_pair(
        std::find(order.begin(), order.end(), step) - order.begin(), step);
  };
  std::sort(sc->second.steps.begin(), sc->second.steps.end(),
            [&](const std::string& a, const std::string& b) {
              return rank(a) < rank(b);
            });
}

void StatusCharts::Tick() {
  Track();
  ++tick_;
  const MonoTime now = clock_.Now();
  for (auto& [name, entry] : scenarios_) {
    const ScenarioSeries& s = metrics_.scenarios().at(name);
    SeriesHistory& h = *entry.history;
    h.Feed(tick_, now,
           h.Closes(tick_) ? ScenarioValues(s, name) : std::vector<uint64_t>{},
           ScenarioGauges(s));
  }
  for (auto& [key, history] : steps_) {
    if (history->Closes(tick_)) {
      history->Feed(tick_, now, StepValues(metrics_.steps().at(key)), {});
    } else {
      history->Feed(tick_, now, {}, {});
    }
  }
}

std::string StatusCharts::LiveJson(
    const std::vector<std::string>& scenarios) const {
  return Render(scenarios, false);
}

std::string StatusCharts::WholeJson(
    const std::vector<std::string>& order) const {
  std::vector<std::string> names;
  for (const std::string& name : order) {
    if (scenarios_.count(name) &&
        std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(name);
  }
  for (const auto& [name, entry] : scenarios_) {
    if (std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(name);
  }
  return Render(names, true);
}

std::string StatusCharts::Render(const std::vector<std::string>& scenarios,
                                 bool whole) const {
  const MonoTime now = clock_.Now();
  auto wall_ms = [&](MonoTime at) -> int64_t {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               (origin_wall_ +
                std::chrono::duration_cast<WallTime::duration>(at - origin_))
                   .time_since_epoch())
        .count();
  };
  json out;
  out["tick_seconds"] = ToSeconds(kTick);
  out["start_ms"] = wall_ms(origin_);
  out["now_ms"] = wall_ms(now);
  json list = json::array();
  uint64_t span_ticks = uint64_t{1} << options_.live_level;
  for (const std::string& name : scenarios) {
    auto entry = scenarios_.find(name);
    if (entry == scenarios_.end()) continue;
    const ScenarioSeries& series = metrics_.scenarios().at(name);
    std::vector<SeriesHistory::Point> points;
    if (whole) {
      span_ticks = entry->second.history->WholeSpanTicks();
      points = entry->second.history->Whole(now, ScenarioValues(series, name),
                                            ScenarioGauges(series));
    } else {
      points = entry->second.history->Live();
    }
    json s{{"name", name}};
    json t = json::array(), target = json::array(), achieved = json::array(),
         done = json::array(), in_flight = json::array();
    json dropped = json::object();
    for (std::size_t r = 0; r < kDropReasonCount; ++r) {
      bool any = false;
      json values = json::array();
      for (const auto& p : points) {
        any = any || p.counters[kChartDropped + r] > 0;
        values.push_back(PerSecond(p.counters[kChartDropped + r], p.seconds()));
      }
      if (any)
        dropped[std::string(DropReasonName(static_cast<DropReason>(r)))] =
            std::move(values);
    }
    for (const auto& p : points) {
      t.push_back(wall_ms(p.end));
      target.push_back(Round(p.gauge_mean[kChartTargetRate]));
      uint64_t lost = 0;
      for (std::size_t r = 0; r < kDropReasonCount; ++r)
        lost += p.counters[kChartDropped + r];
      const uint64_t started = p.counters[kChartArrivals] >= lost
                                   ? p.counters[kChartArrivals] - lost
                                   : 0;
      achieved.push_back(PerSecond(started, p.seconds()));
      done.push_back(PerSecond(p.counters[kChartRequests], p.seconds()));
      in_flight.push_back(Round(p.gauge_max[kChartInFlight]));
    }
    s["t"] = std::move(t);
    s["target"] = std::move(target);
    s["achieved"] = std::move(achieved);
    s["done"] = std::move(done);
    s["dropped"] = std::move(dropped);
    s["in_flight"] = std::move(in_flight);
    s["lag"] = Percentiles(points, 0);

    json steps = json::array();
    for (const std::string& step : entry->second.steps) {
      const auto key = std::make_pair(name, step);
      const SeriesHistory& history = *steps_.at(key);
      const std::vector<SeriesHistory::Point> sp =
          whole ? history.Whole(now, StepValues(metrics_.steps().at(key)), {})
                : history.Live();
      json rate = json::array();
      json outcomes = json::object();
      for (std::size_t o = 0; o < kOutcomeCount; ++o) {
        bool any = false;
        json values = json::array();
        for (const auto& p : sp) {
          any = any || p.counters[o] > 0;
          values.push_back(PerSecond(p.counters[o], p.seconds()));
        }
        if (any)
          outcomes[std::string(OutcomeName(static_cast<Outcome>(o)))] =
              std::move(values);
      }
      for (const auto& p : sp) {
        uint64_t n = 0;
        for (std::size_t o = 0; o < kOutcomeCount; ++o) n += p.counters[o];
        rate.push_back(PerSecond(n, p.seconds()));
      }
      steps.push_back({{"step", step},
                       {"rate", std::move(rate)},
                       {"outcomes", std::move(outcomes)},
                       {"latency", Percentiles(sp, 0)},
                       {"service", Percentiles(sp, 1)}});
    }
    s["steps"] = std::move(steps);
    list.push_back(std::move(s));
  }
  out["span_seconds"] = ToSeconds(kTick) * static_cast<double>(span_ticks);
  out["window_seconds"] = whole ? ToSeconds(now - origin_)
                                : ToSeconds(kTick) *
                                      static_cast<double>(span_ticks) *
                                      static_cast<double>(options_.live_points);
  out["scenarios"] = std::move(list);
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::size_t StatusCharts::MemoryBytes() const {
  std::size_t bytes = sizeof(*this);
  for (const auto& [name, entry] : scenarios_)
    bytes += name.capacity() + entry.history->MemoryBytes();
  for (const auto& [key, history] : steps_)
    bytes +=
        key.first.capacity() + key.second.capacity() + history->MemoryBytes();
  return bytes;
}

}  // namespace polar
