// StatusCharts: the series behind the status page's live charts
// (GET /api/history: the last 15 minutes in 4-s points) and the run report's
// charts (the whole run in at most 256 points): one SeriesHistory
// (exporters/chart_history.h) per scenario and per step, fed once a second
// from Metrics.
//
// Per scenario: arrivals, drops by reason, requests and failures (counters),
// the schedule lag histogram (Prometheus buckets, 10 us to 5 s), and the
// target rate and requests in flight (gauges sampled each second). Per step:
// requests by outcome, and the latency from the intended start and the
// service time, each the fine LogHistogram folded to 8 buckets per power of
// two (status_board.h). Memory per series is fixed whatever the run's length
// (MemoryBytes(); docs/status-page.md has the figures).
//
// Owned by StatusBoard; loop thread only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "exporters/chart_history.h"
#include "exporters/clock.h"
#include "exporters/metrics.h"

namespace polar {

class StatusCharts {
 public:
  static constexpr Duration kTick = std::chrono::seconds(1);

  StatusCharts(const Clock& clock, Metrics& metrics,
               HistoryOptions options = {});

  // Starts series for scenarios and steps seen for the first time, from
  // their counters now (no tick).
  void Track();
  // One tick (every kTick): Track(), then every series gets its point.
  void Tick();
  // The order a scenario's steps are charted in (its funnel: create, update,
  // status, ...); steps not named come after, by name.
  void OrderSteps(const std::string& scenario, std::vector<std::string> steps);

  // The live view of `scenarios` (in that order) as JSON: see
  // docs/status-page.md, "GET /api/history".
  std::string LiveJson(const std::vector<std::string>& scenarios) const;
  // The whole run so far of every series, up to now, in the same shape:
  // the scenarios named in `order` first, in that order, then the others.
  std::string WholeJson(const std::vector<std::string>& order = {}) const;

  std::size_t MemoryBytes() const;

 private:
  struct ScenarioEntry {
    std::unique_ptr<SeriesHistory> history;
    std::vector<std::string> steps;  // charted, in OrderSteps' order
  };
  void SortSteps(const std::string& scenario);
  std::vector<uint64_t> ScenarioValues(const ScenarioSeries& s,
                                       const std::string& name) const;
  std::vector<double> ScenarioGauges(const ScenarioSeries& s) const;
  std::vector<uint64_t> StepValues(const StepSeries& s) const;
  std::string Render(const std::vector<std::string>& scenarios,
                     bool whole) const;

  const Clock& clock_;
  Metrics& metrics_;
  HistoryOptions options_;
  MonoTime origin_{};
  WallTime origin_wall_{};
  uint64_t tick_ = 0;
  std::map<std::string, ScenarioEntry> scenarios_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<SeriesHistory>>
      steps_;
  std::map<std::string, std::vector<std::string>> step_order_;
};

}  // namespace polar
