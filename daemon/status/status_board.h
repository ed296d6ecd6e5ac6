// StatusBoard: the live numbers behind the status page (GET /api/status).
//
// Owned by App; loop thread only (its timer and RenderJson run on the loop).
// Every second it snapshots each scenario's counters (arrivals, drops by
// reason, finished and failed requests) and each step's outcome counters into
// fixed rings, and every 5 s each step's latency histogram (the fine
// LogHistogram folded to 288 log buckets, 8 per power of two) plus every
// polar_loadd_webhook_* and polar_loadd_completion_* series found in the
// registry. Rates cover the last 5 s; error ratios, drops and percentiles
// the last minute. "The last minute" is
// then the live counters minus a snapshot a minute old: rates, error ratios
// and p50/p99 from histogram deltas, never from stored samples. Memory is
// fixed per series (a step: 13 x 288 + 62 x 9 counters = 34 KiB); at most
// 256 background series are followed. The charts' longer past (15 minutes,
// and the whole run for the report) is in StatusCharts (status_charts.h).
//
// Background series are read generically from the registry, so metrics that
// other parts add (the webhook receiver, completion probes) appear on the
// page as soon as they exist, with no change here.
#pragma once

#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/schedule/scheduler.h"
#include "daemon/status/status_charts.h"
#include "exporters/clock.h"
#include "exporters/metrics.h"
#include "exporters/snapshot_ring.h"
#include "scenarios/timers.h"

namespace polar {

// What the App knows about itself, passed in at each render.
struct StatusDaemonInfo {
  std::string config_path;
  MonoTime started{};
  WallTime started_wall{};
  std::string last_reload = "none";  // none, success, failure
  MonoTime last_reload_at{};         // when last_reload != "none"
  std::size_t problems = 0;          // of a failed reload
  std::size_t in_flight = 0;         // requests admitted and unanswered
  bool control_enabled = false;
  bool stopping = false;
};

// One running scenario.
struct StatusScenario {
  const ScenarioRunner* runner = nullptr;
  std::size_t max_in_flight = 0;
};

class StatusBoard {
 public:
  // Windows, exposed for the page's labels and the tests.
  static constexpr Duration kRateWindow = std::chrono::seconds(5);
  static constexpr Duration kLongWindow = std::chrono::seconds(60);
  // Family name prefixes shown as background work.
  static const std::vector<std::string>& BackgroundPrefixes();
  // The webhook receiver alone registers 77 (7 types x 9 verdicts, 7
  // latency histograms, 7 eviction counters; ~30 KiB of rings); completions
  // come on top, two per scenario. 64 cut completions off entirely.
  static constexpr std::size_t kMaxBackgroundSeries = 256;

  // Samples every second on `timers` (the event loop; tests drive Sample()).
  StatusBoard(Timers& timers, const Clock& clock, Metrics& metrics,
              prometheus::Registry& registry);
  StatusBoard(const StatusBoard&) = delete;
  StatusBoard& operator=(const StatusBoard&) = delete;

  std::string RenderJson(const StatusDaemonInfo& daemon,
                         const std::vector<StatusScenario>& scenarios) const;

  // Takes the snapshots now (the timer calls it every second; tests call it
  // with a FakeClock). `long_snapshot`: also the 5-second ones.
  void Sample(bool long_snapshot);

  // The charts' series (status_charts.h): the timer gives them a tick after
  // each Sample(); tests call charts().Tick() themselves.
  StatusCharts& charts() { return charts_; }
  const StatusCharts& charts() const { return charts_; }

  // The fine histogram folded to coarse buckets: upper bounds in seconds.
  static const std::vector<double>& CoarseUpperBounds();
  static std::vector<uint64_t> CoarseCounts(const LogHistogram& h);

 private:
  struct BackgroundSeries {
    std::string family;
    std::vector<std::pair<std::string, std::string>> labels;
    bool histogram = false;
    std::vector<double> upper;  // histogram bucket bounds
    SnapshotRing ring;
  };

  void Tick();
  std::vector<uint64_t> ScenarioCounters(const std::string& scenario) const;
  std::vector<uint64_t> StepCounters(const StepSeries& step) const;
  void SampleBackground(MonoTime now);

  const Clock& clock_;
  Metrics& metrics_;
  prometheus::Registry& registry_;
  StatusCharts charts_;
  Timer sample_timer_;  // last: cancelled first, before what it ticks goes
  unsigned ticks_ = 0;
  std::map<std::string, SnapshotRing> scenario_rings_;
  // Per step: outcome counters every second, latency buckets every 5 s.
  std::map<std::pair<std::string, std::string>, SnapshotRing>
      step_counter_rings_;
  std::map<std::pair<std::string, std::string>, SnapshotRing> step_rings_;
  std::map<std::string, BackgroundSeries> background_;  // by family{labels}
};

}  // namespace polar
