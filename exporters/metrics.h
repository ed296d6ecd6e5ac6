// Metrics: the catalogue of polar_loadd_* metric families and cached label
// children.
//
// Owned by the daemon's App; constructed once with a registry that is passed in
// (never a global), so tests build their own. Families and children are created
// at setup time on the loop thread; the returned pointers stay valid for the
// registry's lifetime, so the hot path is one atomic add or one histogram
// observe with no label lookup. Scraping (Serialize) may run on any thread:
// prometheus-cpp guards collection internally. docs/metrics.md lists every name
// defined here.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporters/log_histogram.h"
#include "exporters/outcome.h"
#include "exporters/recent_errors.h"

namespace polar {

// Latency buckets in seconds. They contain Polar's SLO p99 targets (0.3 s GET
// checkout, 1.2 s client GET, 2.5 s create and client PATCH, 5.5 s confirm) and
// the Locust thresholds (1 s list/ingest, 2 s create, 3 s confirm) as exact
// boundaries, so "share slower than the SLO" is a bucket ratio, not an
// interpolation. The low end starts at 0.5 ms because loopback service times
// are ~100 us-1 ms.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();

// Buckets for whole flows and background completions: LatencyBuckets() plus
// 120 s, 300 s and 600 s, because a flow with think time and a completion
// deadline (60 s by default) lasts longer than one request, and the
// completion alerts' 10 s threshold must stay an exact boundary.
const prometheus::Histogram::BucketBoundaries& FlowBuckets();

// Buckets for timer and schedule lag: 10 us .. 5 s, because a healthy loop is
// late by microseconds and an overloaded one by tens of milliseconds.
const prometheus::Histogram::BucketBoundaries& LagBuckets();

// Why an arrival could not start. Fixed set: it is a label.
enum class DropReason : unsigned char {
  kInFlightCap,        // the scenario's max_in_flight was reached
  kGlobalInFlightCap,  // the daemon-wide max_in_flight was reached
  kRetryAfter,         // the target said 429 + Retry-After and the scenario is
                       // honouring it
};
inline constexpr std::size_t kDropReasonCount = 3;
std::string_view DropReasonName(DropReason reason);

// Background work a scenario waits for, as a customer sees it. Fixed set: it
// is the `kind` label of polar_loadd_completion_seconds and
// polar_loadd_probes_lost_total.
enum class CompletionKind : unsigned char {
  kCheckoutSucceeded,  // confirm answered -> the checkout is `succeeded`
  kEventVisible,       // ingest answered -> GET /v1/events/ lists the event
};
inline constexpr std::size_t kCompletionKindCount = 2;
std::string_view CompletionKindName(CompletionKind kind);

// Control API requests (daemon/status/control_api.h). Fixed sets: they are
// the `action` and `result` labels of polar_loadd_control_actions_total. Every
// pair is exported at 0 from the start (30 series per box, all fixed), because
// a series born at 1 by its first request is invisible to increase() and
// rate(): the dashboards' "Control actions" annotation and panel would miss
// the first pause of a box's life.
inline constexpr std::array<std::string_view, 5> kControlActions = {
    "pause", "resume", "rate", "clear_rate", "burst"};
inline constexpr std::array<std::string_view, 6> kControlResults = {
    "ok",      "no_token_configured", "unauthorized",
    "invalid", "unknown_scenario",    "conflict"};
constexpr bool IsControlAction(std::string_view action) {
  for (auto a : kControlActions)
    if (a == action) return true;
  return false;
}
constexpr bool IsControlResult(std::string_view result) {
  for (auto r : kControlResults)
    if (r == result) return true;
  return false;
}

// Children for one (scenario, kind) of background completion.
struct CompletionSeries {
  prometheus::Histogram* seconds = nullptr;  // polar_loadd_completion_seconds
  prometheus::Counter* lost = nullptr;       // polar_loadd_probes_lost_total
};

// Children for one (scenario, step): a request counter per outcome and both
// latency histograms.
struct StepSeries {
  std::array<prometheus::Counter*, kOutcomeCount> requests{};
  prometheus::Histogram* latency = nullptr;  // intended start -> response
  prometheus::Histogram* service = nullptr;  // actual send -> response
  // Fine-grained copies for run summaries (exact percentiles, not buckets).
  LogHistogram latency_fine;
  LogHistogram service_fine;
};

// Children for one scenario that do not depend on the step.
struct ScenarioSeries {
  prometheus::Counter* arrivals = nullptr;
  std::array<prometheus::Counter*, kDropReasonCount> dropped{};
  prometheus::Gauge* target_rate = nullptr;
  prometheus::Gauge* in_flight = nullptr;
  prometheus::Histogram* schedule_lag = nullptr;
  // Control API state (daemon/status/control_api.h): 1 while an operator has
  // paused the scenario / overridden its rate, else 0.
  prometheus::Gauge* paused = nullptr;
  prometheus::Gauge* rate_overridden = nullptr;
};

// Connection-level events of the built-in HTTPS client. Fixed set: it is
// the `event` label of polar_loadd_connection_events_total.
enum class ConnectionEvent : unsigned char {
  kOpened,         // a connection attempt began
  kHandshake,      // a TLS handshake completed
  kTlsResumed,     // ... and resumed a kept session
  kGoaway,         // the server said GOAWAY on a connection
  kStreamRefused,  // REFUSED_STREAM, or above a GOAWAY's last stream id
  kResent,         // a request sent again (after a refusal, or a stale
                   // keep-alive connection)
};
inline constexpr std::size_t kConnectionEventCount = 6;

// Requests finished so far, summed over every scenario and step (for the
// one-line status systemd shows; the time series are in the registry).
struct RequestTotals {
  double requests = 0;
  double failed = 0;    // every outcome but ok
  double arrivals = 0;  // every scenario's, dropped ones included
  double dropped = 0;   // arrivals that could not start, whatever the reason
};

class Metrics {
 public:
  explicit Metrics(prometheus::Registry& registry);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Returns cached children, creating them on first use. Setup-time calls (map
  // lookup).
  ScenarioSeries& Scenario(const std::string& scenario);
  StepSeries& Step(const std::string& scenario, const std::string& step);
  prometheus::Counter& Events(const std::string& scenario,
                              const std::string& result);
  // polar_loadd_flow_duration_seconds{scenario, outcome}: children are made
  // on first use (a flow ends a few times per second at most; callers cache
  // the reference per outcome).
  prometheus::Histogram& FlowDuration(const std::string& scenario,
                                      Outcome outcome);
  // The completion histogram and lost-probe counter of (scenario, kind),
  // created together so a scenario that never lost a probe still shows 0.
  CompletionSeries& Completion(const std::string& scenario,
                               CompletionKind kind);

  prometheus::Histogram& loop_lag() { return *loop_lag_; }
  // Share of wall time the event loop spent working, sampled every second:
  // near 1 means our box, not the target, is the bottleneck.
  prometheus::Gauge& loop_utilisation() { return *loop_utilisation_; }
  // Requests accepted by the engine and waiting for a connection.
  prometheus::Gauge& engine_queued() { return *engine_queued_; }
  prometheus::Counter& connection_events(ConnectionEvent event) {
    return *connection_events_[static_cast<std::size_t>(event)];
  }
  // Standard process_* metrics (Prometheus client conventions), refreshed by
  // SampleProcess() from /proc/self.
  void SampleProcess();

  // Every (scenario, step) seen so far, in name order; for run summaries.
  const std::map<std::pair<std::string, std::string>, StepSeries>& steps()
      const {
    return steps_;
  }
  const std::map<std::string, ScenarioSeries>& scenarios() const {
    return scenarios_;
  }
  prometheus::Registry& registry() { return registry_; }

  // Configuration reloads (SIGHUP): counted by result; the gauges say whether
  // the last one worked and when one last did (the start counts as one).
  prometheus::Counter& config_reloads(bool success) {
    return success ? *reloads_success_ : *reloads_failure_;
  }
  prometheus::Gauge& config_last_reload_successful() {
    return *last_reload_successful_;
  }
  prometheus::Gauge& config_last_reload_success_timestamp() {
    return *last_reload_success_timestamp_;
  }

  // Control API requests (daemon/status/control_api.h) by action and result:
  // the children of kControlActions x kControlResults, created with the
  // catalogue (a pair outside them gets a child on first use).
  prometheus::Counter& ControlAction(std::string_view action,
                                     std::string_view result);

  // The most recent distinct request failures, for the status page.
  RecentErrors& recent_errors() { return recent_errors_; }
  const RecentErrors& recent_errors() const { return recent_errors_; }

  // polar_loadd_shard_index and polar_loadd_shards: this instance's
  // share of a cluster (0 and 1 when it runs alone). Plain gauges, not
  // labels, so a shard never multiplies a series.
  void SetShard(uint32_t index, uint32_t count);

  // Sums over the cached children; a few dozen atomic loads.
  RequestTotals Totals() const;
  // Sum of polar_loadd_target_rate over the scenarios.
  double TargetRate() const;

 private:
  prometheus::Registry& registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Histogram>& service_;
  prometheus::Family<prometheus::Histogram>& schedule_lag_;
  prometheus::Family<prometheus::Counter>& arrivals_;
  prometheus::Family<prometheus::Counter>& dropped_;
  prometheus::Family<prometheus::Gauge>& target_rate_;
  prometheus::Family<prometheus::Gauge>& in_flight_;
  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Family<prometheus::Histogram>& flow_duration_;
  prometheus::Family<prometheus::Histogram>& completion_;
  prometheus::Family<prometheus::Counter>& probes_lost_;
  prometheus::Family<prometheus::Histogram>& loop_lag_family_;
  prometheus::Family<prometheus::Gauge>& build_info_;
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Family<prometheus::Gauge>& last_reload_successful_family_;
  prometheus::Family<prometheus::Gauge>& last_reload_success_timestamp_family_;
  prometheus::Family<prometheus::Gauge>& paused_;
  prometheus::Family<prometheus::Gauge>& rate_overridden_;
  prometheus::Family<prometheus::Counter>& control_actions_;
  std::array<prometheus::Counter*, kConnectionEventCount> connection_events_{};
  prometheus::Histogram* loop_lag_ = nullptr;
  prometheus::Counter* reloads_success_ = nullptr;
  prometheus::Counter* reloads_failure_ = nullptr;
  prometheus::Gauge* last_reload_successful_ = nullptr;
  prometheus::Gauge* last_reload_success_timestamp_ = nullptr;
  prometheus::Gauge* loop_utilisation_ = nullptr;
  prometheus::Gauge* engine_queued_ = nullptr;
  prometheus::Gauge* shard_index_ = nullptr;
  prometheus::Gauge* shard_count_ = nullptr;
  prometheus::Counter* process_cpu_ = nullptr;
  prometheus::Gauge* process_rss_ = nullptr;
  prometheus::Gauge* process_vsz_ = nullptr;
  prometheus::Gauge* process_fds_ = nullptr;
  prometheus::Gauge* process_max_fds_ = nullptr;
  prometheus::Gauge* process_start_ = nullptr;
  double cpu_seconds_seen_ = 0;

  std::map<std::string, ScenarioSeries> scenarios_;
  std::map<std::pair<std::string, std::string>, StepSeries> steps_;
  std::map<std::pair<std::string, std::string>, prometheus::Counter*>
      events_children_;
  std::map<std::pair<std::string, std::string>, prometheus::Counter*,
           std::less<>>
      control_children_;
  RecentErrors recent_errors_;
  std::map<std::pair<std::string, Outcome>, prometheus::Histogram*>
      flow_children_;
  std::map<std::pair<std::string, CompletionKind>, CompletionSeries>
      completion_children_;
};

// The Prometheus text exposition (format 0.0.4) of everything in the registry.
std::string SerializeMetrics(prometheus::Registry& registry);

}  // namespace polar
