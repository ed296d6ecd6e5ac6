#include "daemon/status/status_board.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "daemon/status/control_api.h"
#include "polar/version.h"

namespace polar {
namespace {

using nlohmann::json;

constexpr Duration kTick = std::chrono::seconds(1);
// Step and background snapshots every 5 ticks, 13 of them: the newest and one
// a minute before it.
constexpr unsigned kLongEvery = 5;
constexpr std::size_t kLongCapacity = 13;
// Scenario snapshots every tick, 62 of them: a minute and a spare.
constexpr std::size_t kShortCapacity = 62;
// LogHistogram buckets folded into one coarse bucket: 16 of its 128 per power
// of two, so 8 per power of two (12.5 % wide, interpolated inside).
constexpr std::size_t kFold = 16;
constexpr std::size_t kCoarseBuckets = LogHistogram::kBuckets / kFold;

// Scenario counter layout.
constexpr std::size_t kArrivals = 0;
constexpr std::size_t kDropped = 1;  // kDropReasonCount of them
constexpr std::size_t kRequests = kDropped + kDropReasonCount;
constexpr std::size_t kFailed = kRequests + 1;
constexpr std::size_t kScenarioWidth = kFailed + 1;

uint64_t Count(double v) {
  return v > 0 ? static_cast<uint64_t>(std::llround(v)) : 0;
}

double PerSecond(double n, Duration span) {
  const double s = ToSeconds(span);
  return s > 0 ? n / s : 0;
}

json Ratio(double part, double whole) {
  if (whole <= 0) return nullptr;
  return part / whole;
}

json Seconds(std::optional<double> v) {
  if (!v) return nullptr;
  return *v;
}

// The webhook deliveries as a matrix, event type x verdict (totals since the
// start), one row per type that has anything to show: a receiver that only
// ever saw order.paid shows one row, not 63 mostly-zero series. Verdicts in
// the order an operator reads them (what worked, what was a repeat, what was
// refused, what never came); a verdict this list does not know goes last.
json WebhookMatrix(const json& background) {
  static const std::vector<std::string> kOrder = {
      "ok",    "duplicate",     "replayed",  "ignored", "unmatched",
      "stale", "bad_signature", "malformed", "lost"};
  struct Row {
    json counts = json::object();
    uint64_t total = 0, evicted = 0;
    double per_minute = 0;
    bool rate_known = false;
    json p50 = nullptr, p99 = nullptr;
  };
  std::map<std::string, Row> rows;
  std::vector<std::string> verdicts;
  for (const json& b : background) {
    const std::string& metric = b["metric"].get_ref<const std::string&>();
    if (!b["labels"].contains("type")) continue;
    const std::string type = b["labels"]["type"];
    const uint64_t total = b["total"];
    if (metric == "polar_loadd_webhook_deliveries_total" &&
        b["labels"].contains("verdict")) {
      const std::string verdict = b["labels"]["verdict"];
      Row& row = rows[type];
      row.counts[verdict] = total;
      row.total += total;
      if (b["per_minute"].is_number()) {
        row.per_minute += b["per_minute"].get<double>();
        row.rate_known = true;
      }
      if (std::find(verdicts.begin(), verdicts.end(), verdict) ==
          verdicts.end())
        verdicts.push_back(verdict);
    } else if (metric == "polar_loadd_webhook_latency_seconds") {
      rows[type].p50 = b.value("p50_seconds", json(nullptr));
      rows[type].p99 = b.value("p99_seconds", json(nullptr));
    } else if (metric == "polar_loadd_webhook_expectations_evicted_total") {
      rows[type].evicted = total;
    }
  }
  auto rank = [](const std::string& v) {
    return static_cast<std::size_t>(std::find(kOrder.begin(), kOrder.end(), v) -
                                    kOrder.begin());
  };
  std::sort(verdicts.begin(), verdicts.end(),
            [&](const std::string& a, const std::string& b) {
              return std::make_pair(rank(a), a) < std::make_pair(rank(b), b);
            });
  json list = json::array();
  std::size_t hidden = 0;
  for (auto& [type, row] : rows) {
    if (row.total == 0 && row.evicted == 0) {
      ++hidden;
      continue;
    }
    for (const std::string& v : verdicts) {
      if (!row.counts.contains(v)) row.counts[v] = 0;
    }
    list.push_back(
        {{"type", type},
         {"counts", std::move(row.counts)},
         {"total", row.total},
         {"per_minute", row.rate_known ? json(row.per_minute) : json(nullptr)},
         {"p50_seconds", row.p50},
         {"p99_seconds", row.p99},
         {"evicted", row.evicted}});
  }
  return {{"verdicts", verdicts},
          {"rows", std::move(list)},
          {"hidden_types", hidden}};
}

}  // namespace

const std::vector<std::string>& StatusBoard::BackgroundPrefixes() {
  static const std::vector<std::string> kPrefixes = {"polar_loadd_webhook_",
                                                     "polar_loadd_completion_"};
  return kPrefixes;
}

const std::vector<double>& StatusBoard::CoarseUpperBounds() {
  static const std::vector<double> kBounds = [] {
    std::vector<double> b(kCoarseBuckets);
    for (std::size_t i = 0; i < kCoarseBuckets; ++i) {
      b[i] =
          static_cast<double>(LogHistogram::BucketHigh(i * kFold + kFold - 1)) *
          1e-9;
    }
    return b;
  }();
  return kBounds;
}

std::vector<uint64_t> StatusBoard::CoarseCounts(const LogHistogram& h) {
  // Every second for every step (the charts): sums of 16 neighbours, which
  // the compiler vectorises.
  std::vector<uint64_t> out(kCoarseBuckets);
  const uint64_t* in = h.bucket_counts().data();
  for (std::size_t i = 0; i < kCoarseBuckets; ++i) {
    uint64_t sum = 0;
    for (std::size_t j = 0; j < kFold; ++j) sum += in[i * kFold + j];
    out[i] = sum;
  }
  return out;
}

StatusBoard::StatusBoard(Timers& timers, const Clock& clock, Metrics& metrics,
                         prometheus::Registry& registry)
    : clock_(clock),
      metrics_(metrics),
      registry_(registry),
      charts_(clock, metrics) {
  Sample(true);
  sample_timer_ = timers.Every(kTick, [this] { Tick(); });
}

void StatusBoard::Tick() {
  Sample(++ticks_ % kLongEvery == 0);
  charts_.Tick();
}

std::vector<uint64_t> StatusBoard::ScenarioCounters(
    const std::string& scenario) const {
  std::vector<uint64_t> v(kScenarioWidth);
  auto it = metrics_.scenarios().find(scenario);
  if (it != metrics_.scenarios().end()) {
    v[kArrivals] = Count(it->second.arrivals->Value());
    for (std::size_t i = 0; i < kDropReasonCount; ++i)
      v[kDropped + i] = Count(it->second.dropped[i]->Value());
  }
  const auto& steps = metrics_.steps();
  for (auto s = steps.lower_bound({scenario, ""});
       s != steps.end() && s->first.first == scenario; ++s) {
    for (std::size_t o = 0; o < kOutcomeCount; ++o) {
      const uint64_t n = Count(s->second.requests[o]->Value());
      v[kRequests] += n;
      if (static_cast<Outcome>(o) != Outcome::kOk) v[kFailed] += n;
    }
  }
  return v;
}

std::vector<uint64_t> StatusBoard::StepCounters(const StepSeries& step) const {
  std::vector<uint64_t> v(kOutcomeCount);
  for (std::size_t o = 0; o < kOutcomeCount; ++o)
    v[o] = Count(step.requests[o]->Value());
  return v;
}

void StatusBoard::Sample(bool long_snapshot) {
  const MonoTime now = clock_.Now();
  for (const auto& [name, series] : metrics_.scenarios()) {
    auto it =
        scenario_rings_.try_emplace(name, kScenarioWidth, kShortCapacity).first;
    it->second.Push(now, ScenarioCounters(name));
  }
  for (const auto& [key, step] : metrics_.steps()) {
    step_counter_rings_.try_emplace(key, kOutcomeCount, kShortCapacity)
        .first->second.Push(now, StepCounters(step));
    auto [it, fresh] =
        step_rings_.try_emplace(key, kCoarseBuckets, kLongCapacity);
    // A step seen for the first time gets its baseline at once, not up to
    // 5 s later.
    if (long_snapshot || fresh)
      it->second.Push(now, CoarseCounts(step.latency_fine));
  }
  if (long_snapshot) SampleBackground(now);
  charts_.Track();
}

void StatusBoard::SampleBackground(MonoTime now) {
  const auto& prefixes = BackgroundPrefixes();
  for (const prometheus::MetricFamily& family : registry_.Collect()) {
    bool wanted = false;
    for (const std::string& p : prefixes)
      wanted = wanted || family.name.rfind(p, 0) == 0;
    if (!wanted) continue;
    const bool histogram = family.type == prometheus::MetricType::Histogram;
    if (!histogram && family.type != prometheus::MetricType::Counter) continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      std::string key = family.name + "{";
      std::vector<std::pair<std::string, std::string>> labels;
      for (const auto& l : m.label) {
        key += l.name + "=\"" + l.value + "\",";
        labels.emplace_back(l.name, l.value);
      }
      key += "}";
      auto it = background_.find(key);
      if (it == background_.end()) {
        if (background_.size() >= kMaxBackgroundSeries) continue;
        std::vector<double> upper;
        if (histogram) {
          for (const auto& b : m.histogram.bucket)
            upper.push_back(b.upper_bound);
        }
        const std::size_t width = histogram ? 1 + upper.size() : 1;
        it = background_
                 .emplace(key,
                          BackgroundSeries{family.name, std::move(labels),
                                           histogram, std::move(upper),
                                           SnapshotRing(width, kLongCapacity)})
                 .first;
      }
      BackgroundSeries& s = it->second;
      std::vector<uint64_t> v(s.ring.width());
      if (histogram) {
        v[0] = m.histogram.sample_count;
        uint64_t below = 0;
        for (std::size_t i = 0;
             i < m.histogram.bucket.size() && i + 1 < v.size(); ++i) {
          const uint64_t cumulative = m.histogram.bucket[i].cumulative_count;
          v[i + 1] = cumulative >= below ? cumulative - below : 0;
          below = cumulative;
        }
      } else {
        v[0] = Count(m.counter.value);
      }
      s.ring.Push(now, v);
    }
  }
}

std::string StatusBoard::RenderJson(
    const StatusDaemonInfo& daemon,
    const std::vector<StatusScenario>& scenarios) const {
  const MonoTime now = clock_.Now();
  json out;
  out["version"] = kVersion;
  out["revision"] = kRevision;
  out["config_path"] = daemon.config_path;
  out["started"] = fmt::format(
      "{:%Y-%m-%dT%H:%M:%SZ}",
      std::chrono::time_point_cast<std::chrono::seconds>(daemon.started_wall));
  out["uptime_seconds"] = ToSeconds(now - daemon.started);
  json reload{{"result", daemon.last_reload}};
  if (daemon.last_reload != "none") {
    reload["seconds_ago"] = ToSeconds(now - daemon.last_reload_at);
  }
  if (daemon.last_reload == "failure") reload["problems"] = daemon.problems;
  out["last_reload"] = std::move(reload);
  out["in_flight"] = daemon.in_flight;
  out["control_enabled"] = daemon.control_enabled;
  out["stopping"] = daemon.stopping;
  out["windows"] = {{"rate_seconds", ToSeconds(kRateWindow)},
                    {"long_seconds", ToSeconds(kLongWindow)}};

  json list = json::array();
  for (const StatusScenario& sc : scenarios) {
    const ScenarioRunner& runner = *sc.runner;
    const std::string& name = runner.name();
    json s;
    s["name"] = name;
    auto series = metrics_.scenarios().find(name);
    if (series != metrics_.scenarios().end()) {
      s["target_rate"] = series->second.target_rate->Value();
      s["in_flight"] = series->second.in_flight->Value();
    }
    s["max_in_flight"] = sc.max_in_flight;
    s["control"] = RunnerControlState(runner, now);
    const std::vector<uint64_t> current = ScenarioCounters(name);
    json dropped_total = json::object();
    json dropped_window = json::object();
    auto ring = scenario_rings_.find(name);
    for (std::size_t i = 0; i < kDropReasonCount; ++i) {
      dropped_total[std::string(DropReasonName(static_cast<DropReason>(i)))] =
          current[kDropped + i];
    }
    s["achieved_rate"] = nullptr;
    s["completed_rate"] = nullptr;
    s["error_ratio"] = nullptr;
    if (ring != scenario_rings_.end()) {
      if (auto base = ring->second.Baseline(now, kRateWindow)) {
        auto d = SnapshotRing::Delta(current, base->values);
        uint64_t dropped = 0;
        for (std::size_t i = 0; i < kDropReasonCount; ++i)
          dropped += d[kDropped + i];
        const uint64_t started =
            d[kArrivals] >= dropped ? d[kArrivals] - dropped : 0;
        s["achieved_rate"] =
            PerSecond(static_cast<double>(started), now - base->at);
        s["completed_rate"] =
            PerSecond(static_cast<double>(d[kRequests]), now - base->at);
        s["rate_window_seconds"] = ToSeconds(now - base->at);
      }
      if (auto base = ring->second.Baseline(now, kLongWindow)) {
        auto d = SnapshotRing::Delta(current, base->values);
        s["error_ratio"] = Ratio(static_cast<double>(d[kFailed]),
                                 static_cast<double>(d[kRequests]));
        for (std::size_t i = 0; i < kDropReasonCount; ++i) {
          dropped_window[std::string(
              DropReasonName(static_cast<DropReason>(i)))] = d[kDropped + i];
        }
        s["long_window_seconds"] = ToSeconds(now - base->at);
      }
    }
    s["dropped_total"] = std::move(dropped_total);
    s["dropped_last_minute"] = std::move(dropped_window);

    json steps = json::array();
    const auto& all = metrics_.steps();
    for (auto st = all.lower_bound({name, ""});
         st != all.end() && st->first.first == name; ++st) {
      json step{{"step", st->first.second}};
      const std::vector<uint64_t> counts = StepCounters(st->second);
      uint64_t total = 0;
      for (uint64_t n : counts) total += n;
      step["total"] = total;
      step["rate"] = nullptr;
      step["error_ratio"] = nullptr;
      step["p50_seconds"] = nullptr;
      step["p99_seconds"] = nullptr;
      auto cr = step_counter_rings_.find(st->first);
      if (cr != step_counter_rings_.end()) {
        if (auto base = cr->second.Baseline(now, kRateWindow)) {
          uint64_t n = 0;
          for (uint64_t d : SnapshotRing::Delta(counts, base->values)) n += d;
          step["rate"] = PerSecond(static_cast<double>(n), now - base->at);
        }
        if (auto base = cr->second.Baseline(now, kLongWindow)) {
          auto d = SnapshotRing::Delta(counts, base->values);
          uint64_t n = 0;
          for (uint64_t x : d) n += x;
          const double failed = static_cast<double>(
              n - d[static_cast<std::size_t>(Outcome::kOk)]);
          step["error_ratio"] = Ratio(failed, static_cast<double>(n));
          json outcomes = json::object();
          for (std::size_t o = 0; o < kOutcomeCount; ++o) {
            if (d[o] > 0)
              outcomes[std::string(OutcomeName(static_cast<Outcome>(o)))] =
                  d[o];
          }
          step["outcomes"] = std::move(outcomes);
        }
      }
      auto sr = step_rings_.find(st->first);
      if (sr != step_rings_.end()) {
        if (auto base = sr->second.Baseline(now, kLongWindow)) {
          auto d = SnapshotRing::Delta(CoarseCounts(st->second.latency_fine),
                                       base->values);
          step["window_seconds"] = ToSeconds(now - base->at);
          step["p50_seconds"] =
              Seconds(QuantileFromBuckets(CoarseUpperBounds(), d, 0.5));
          step["p99_seconds"] =
              Seconds(QuantileFromBuckets(CoarseUpperBounds(), d, 0.99));
        }
      }
      steps.push_back(std::move(step));
    }
    s["steps"] = std::move(steps);
    list.push_back(std::move(s));
  }
  out["scenarios"] = std::move(list);

  json background = json::array();
  for (const auto& [key, b] : background_) {
    auto newest = b.ring.Newest();
    if (!newest) continue;
    json item{{"metric", b.family},
              {"type", b.histogram ? "histogram" : "counter"}};
    json labels = json::object();
    for (const auto& [k, v] : b.labels) labels[k] = v;
    item["labels"] = std::move(labels);
    item["total"] = newest->values[0];
    auto base = b.ring.Baseline(newest->at, kLongWindow);
    if (base && base->at < newest->at) {
      auto d = SnapshotRing::Delta(newest->values, base->values);
      item["per_minute"] =
          60.0 * PerSecond(static_cast<double>(d[0]), newest->at - base->at);
      if (b.histogram) {
        std::span<const uint64_t> buckets(d.data() + 1, d.size() - 1);
        item["p50_seconds"] =
            Seconds(QuantileFromBuckets(b.upper, buckets, 0.5));
        item["p99_seconds"] =
            Seconds(QuantileFromBuckets(b.upper, buckets, 0.99));
      }
    } else {
      item["per_minute"] = nullptr;
    }
    background.push_back(std::move(item));
  }
  out["webhooks"] = WebhookMatrix(background);
  out["background"] = std::move(background);

  json errors = json::array();
  for (const RecentError& e : metrics_.recent_errors().Snapshot()) {
    errors.push_back({{"scenario", e.scenario},
                      {"step", e.step},
                      {"outcome", std::string(OutcomeName(e.outcome))},
                      {"status", e.status},
                      {"count", e.count},
                      {"first_seen_seconds_ago", ToSeconds(now - e.first_seen)},
                      {"last_seen_seconds_ago", ToSeconds(now - e.last_seen)},
                      {"snippet", e.snippet}});
  }
  out["errors"] = std::move(errors);
  return out.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace polar
