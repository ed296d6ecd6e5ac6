#include "exporters/metrics.h"

#include <prometheus/text_serializer.h>

#include "exporters/process_stats.h"
#include "polar/version.h"

namespace polar {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2,
      0.3,    0.5,   0.75,  1.0,   1.2,  1.5,   2.0,  2.5, 3.0,
      4.0,    5.0,   5.5,   7.5,   10,   15,    30,   60};
  return kBuckets;
}

const prometheus::Histogram::BucketBoundaries& FlowBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = [] {
    prometheus::Histogram::BucketBoundaries b = LatencyBuckets();
    b.insert(b.end(), {120, 300, 600});
    return b;
  }();
  return kBuckets;
}

std::string_view CompletionKindName(CompletionKind kind) {
  switch (kind) {
    case CompletionKind::kCheckoutSucceeded:
      return "checkout_succeeded";
    case CompletionKind::kEventVisible:
      return "event_visible";
  }
  return "checkout_succeeded";
}

const prometheus::Histogram::BucketBoundaries& LagBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,   0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0};
  return kBuckets;
}

std::string_view DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kInFlightCap:
      return "in_flight_cap";
    case DropReason::kGlobalInFlightCap:
      return "global_in_flight_cap";
    case DropReason::kRetryAfter:
      return "retry_after";
  }
  return "in_flight_cap";
}

Metrics::Metrics(prometheus::Registry& registry)
    : registry_(registry),
      requests_(prometheus::BuildCounter()
                    .Name("polar_loadd_requests_total")
                    .Help("Finished requests by scenario, step and outcome.")
                    .Register(registry)),
      latency_(prometheus::BuildHistogram()
                   .Name("polar_loadd_request_latency_seconds")
                   .Help("Latency from the intended (scheduled) send time to "
                         "the response, of ok answers and timeouts.")
                   .Register(registry)),
      service_(prometheus::BuildHistogram()
                   .Name("polar_loadd_request_service_seconds")
                   .Help("Service time from the actual send to the response, "
                         "of ok answers and timeouts.")
                   .Register(registry)),
      schedule_lag_(prometheus::BuildHistogram()
                        .Name("polar_loadd_schedule_lag_seconds")
                        .Help("Actual send time minus intended send time.")
                        .Register(registry)),
      arrivals_(prometheus::BuildCounter()
                    .Name("polar_loadd_arrivals_total")
                    .Help("Arrivals the schedule produced.")
                    .Register(registry)),
      dropped_(prometheus::BuildCounter()
                   .Name("polar_loadd_arrivals_dropped_total")
                   .Help("Arrivals that could not start, by reason.")
                   .Register(registry)),
      target_rate_(prometheus::BuildGauge()
                       .Name("polar_loadd_target_rate")
                       .Help("Arrivals per second the schedule asks for now.")
                       .Register(registry)),
      in_flight_(prometheus::BuildGauge()
                     .Name("polar_loadd_in_flight")
                     .Help("Requests on the wire.")
                     .Register(registry)),
      events_(prometheus::BuildCounter()
                  .Name("polar_loadd_events_total")
                  .Help("Ingested events as Polar reported them: inserted or "
                        "duplicate.")
                  .Register(registry)),
      flow_duration_(
          prometheus::BuildHistogram()
              .Name("polar_loadd_flow_duration_seconds")
              .Help("Whole checkout flows from their intended start to their "
                    "last step, by the outcome of the step that ended them.")
              .Register(registry)),
      completion_(prometheus::BuildHistogram()
                      .Name("polar_loadd_completion_seconds")
                      .Help("Background work as a customer sees it: confirm "
                            "-> checkout succeeded, ingest -> event listed.")
                      .Register(registry)),
      probes_lost_(prometheus::BuildCounter()
                       .Name("polar_loadd_probes_lost_total")
                       .Help("Completions that did not happen before their "
                             "deadline (a checkout never seen succeeded, an "
                             "event never listed).")
                       .Register(registry)),
      loop_lag_family_(prometheus::BuildHistogram()
                           .Name("polar_loadd_loop_lag_seconds")
                           .Help("How late event-loop timers fire.")
                           .Register(registry)),
      build_info_(
          prometheus::BuildGauge()
              .Name("polar_loadd_build_info")
              .Help("Always 1; labels carry the version and git revision.")
              .Register(registry)),
      reloads_(prometheus::BuildCounter()
                   .Name("polar_loadd_config_reloads_total")
                   .Help("Configuration reloads (SIGHUP) by result: success "
                         "or failure (the old configuration kept running).")
                   .Register(registry)),
      last_reload_successful_family_(
          prometheus::BuildGauge()
              .Name("polar_loadd_config_last_reload_successful")
              .Help("1 if the last configuration reload worked (or none was "
                    "tried yet), 0 if it failed.")
              .Register(registry)),
      last_reload_success_timestamp_family_(
          prometheus::BuildGauge()
              .Name("polar_loadd_config_last_reload_success_timestamp_seconds")
              .Help("Unix time the running configuration was loaded (start or "
                    "last successful reload).")
              .Register(registry)),
      paused_(prometheus::BuildGauge()
                  .Name("polar_loadd_scenario_paused")
                  .Help("1 while the scenario is paused through the control "
                        "API, else 0.")
                  .Register(registry)),
      rate_overridden_(
          prometheus::BuildGauge()
              .Name("polar_loadd_scenario_rate_overridden")
              .Help("1 while the scenario's rate is overridden through the "
                    "control API, else 0.")
              .Register(registry)),
      control_actions_(prometheus::BuildCounter()
                           .Name("polar_loadd_control_actions_total")
                           .Help("Control API requests by action and result.")
                           .Register(registry)) {
  loop_lag_ = &loop_lag_family_.Add({}, LagBuckets());
  loop_utilisation_ =
      &prometheus::BuildGauge()
           .Name("polar_loadd_loop_utilisation")
           .Help(
               "Share of wall time the event loop spent working rather than "
               "waiting, over the last second (1 = saturated).")
           .Register(registry)
           .Add({});
  auto& connection_events =
      prometheus::BuildCounter()
          .Name("polar_loadd_connection_events_total")
          .Help(
              "Connection events of the built-in HTTPS client: attempts, TLS "
              "handshakes and resumptions, GOAWAYs, refused streams and "
              "requests sent again.")
          .Register(registry);
  const char* kConnectionEventNames[kConnectionEventCount] = {
      "opened", "handshake",      "tls_resumed",
      "goaway", "stream_refused", "resent"};
  for (std::size_t i = 0; i < kConnectionEventCount; ++i) {
    connection_events_[i] =
        &connection_events.Add({{"event", kConnectionEventNames[i]}});
  }
  engine_queued_ = &prometheus::BuildGauge()
                        .Name("polar_loadd_engine_queued")
                        .Help(
                            "Requests waiting inside the engine for a free "
                            "connection.")
                        .Register(registry)
                        .Add({});
  process_cpu_ = &prometheus::BuildCounter()
                      .Name("process_cpu_seconds_total")
                      .Help("Total user and system CPU time spent in seconds.")
                      .Register(registry)
                      .Add({});
  process_rss_ = &prometheus::BuildGauge()
                      .Name("process_resident_memory_bytes")
                      .Help("Resident memory size in bytes.")
                      .Register(registry)
                      .Add({});
  process_vsz_ = &prometheus::BuildGauge()
                      .Name("process_virtual_memory_bytes")
                      .Help("Virtual memory size in bytes.")
                      .Register(registry)
                      .Add({});
  process_fds_ = &prometheus::BuildGauge()
                      .Name("process_open_fds")
                      .Help("Number of open file descriptors.")
                      .Register(registry)
                      .Add({});
  process_max_fds_ = &prometheus::BuildGauge()
                          .Name("process_max_fds")
                          .Help("Maximum number of open file descriptors.")
                          .Register(registry)
                          .Add({});
  process_start_ = &prometheus::BuildGauge()
                        .Name("process_start_time_seconds")
                        .Help(
                            "Start time of the process since unix epoch in "
                            "seconds.")
                        .Register(registry)
                        .Add({});
  shard_index_ = &prometheus::BuildGauge()
                      .Name("polar_loadd_shard_index")
                      .Help(
                          "This instance's shard index (0-based) when several "
                          "instances share one load plan; 0 when alone.")
                      .Register(registry)
                      .Add({});
  shard_count_ = &prometheus::BuildGauge()
                      .Name("polar_loadd_shards")
                      .Help(
                          "How many instances share the load plan (each runs "
                          "1/count of every rate); 1 when alone.")
                      .Register(registry)
                      .Add({});
  shard_count_->Set(1);
  SampleProcess();
  build_info_.Add({{"version", kVersion}, {"revision", kRevision}}).Set(1);
  reloads_success_ = &reloads_.Add({{"result", "success"}});
  reloads_failure_ = &reloads_.Add({{"result", "failure"}});
  last_reload_successful_ = &last_reload_successful_family_.Add({});
  last_reload_successful_->Set(1);
  last_reload_success_timestamp_ =
      &last_reload_success_timestamp_family_.Add({});
  for (auto action : kControlActions)
    for (auto result : kControlResults) ControlAction(action, result);
}

prometheus::Counter& Metrics::ControlAction(std::string_view action,
                                            std::string_view result) {
  auto key = std::make_pair(std::string(action), std::string(result));
  auto it = control_children_.find(key);
  if (it != control_children_.end()) return *it->second;
  prometheus::Counter* c =
      &control_actions_.Add({{"action", key.first}, {"result", key.second}});
  control_children_.emplace(std::move(key), c);
  return *c;
}

void Metrics::SetShard(uint32_t index, uint32_t count) {
  shard_index_->Set(index);
  shard_count_->Set(count);
}

RequestTotals Metrics::Totals() const {
  RequestTotals totals;
  for (const auto& [key, step] : steps_) {
    for (std::size_t i = 0; i < kOutcomeCount; ++i) {
      double n = step.requests[i]->Value();
      totals.requests += n;
      if (static_cast<Outcome>(i) != Outcome::kOk) totals.failed += n;
    }
  }
  for (const auto& [name, series] : scenarios_) {
    totals.arrivals += series.arrivals->Value();
    for (const auto* dropped : series.dropped)
      totals.dropped += dropped->Value();
  }
  return totals;
}

double Metrics::TargetRate() const {
  double sum = 0;
  for (const auto& [name, series] : scenarios_)
    sum += series.target_rate->Value();
  return sum;
}

ScenarioSeries& Metrics::Scenario(const std::string& scenario) {
  auto [it, inserted] = scenarios_.try_emplace(scenario);
  ScenarioSeries& s = it->second;
  if (inserted) {
    s.arrivals = &arrivals_.Add({{"scenario", scenario}});
    for (std::size_t i = 0; i < kDropReasonCount; ++i) {
      auto reason = DropReasonName(static_cast<DropReason>(i));
      s.dropped[i] = &dropped_.Add(
          {{"scenario", scenario}, {"reason", std::string(reason)}});
    }
    s.target_rate = &target_rate_.Add({{"scenario", scenario}});
    s.in_flight = &in_flight_.Add({{"scenario", scenario}});
    s.schedule_lag = &schedule_lag_.Add({{"scenario", scenario}}, LagBuckets());
    s.paused = &paused_.Add({{"scenario", scenario}});
    s.rate_overridden = &rate_overridden_.Add({{"scenario", scenario}});
  }
  return s;
}

StepSeries& Metrics::Step(const std::string& scenario,
                          const std::string& step) {
  auto [it, inserted] = steps_.try_emplace({scenario, step});
  StepSeries& s = it->second;
  if (inserted) {
    for (Outcome o : AllOutcomes()) {
      s.requests[static_cast<std::size_t>(o)] =
          &requests_.Add({{"scenario", scenario},
                          {"step", step},
                          {"outcome", std::string(OutcomeName(o))}});
    }
    s.latency = &latency_.Add({{"scenario", scenario}, {"step", step}},
                              LatencyBuckets());
    s.service = &service_.Add({{"scenario", scenario}, {"step", step}},
                              LatencyBuckets());
  }
  return s;
}

prometheus::Counter& Metrics::Events(const std::string& scenario,
                                     const std::string& result) {
  auto [it, inserted] =
      events_children_.try_emplace({scenario, result}, nullptr);
  if (inserted)
    it->second = &events_.Add({{"scenario", scenario}, {"result", result}});
  return *it->second;
}

prometheus::Histogram& Metrics::FlowDuration(const std::string& scenario,
                                             Outcome outcome) {
  auto [it, inserted] =
      flow_children_.try_emplace({scenario, outcome}, nullptr);
  if (inserted) {
    it->second =
        &flow_duration_.Add({{"scenario", scenario},
                             {"outcome", std::string(OutcomeName(outcome))}},
                            FlowBuckets());
  }
  return *it->second;
}

CompletionSeries& Metrics::Completion(const std::string& scenario,
                                      CompletionKind kind) {
  auto [it, inserted] = completion_children_.try_emplace({scenario, kind});
  if (inserted) {
    const std::map<std::string, std::string> labels = {
        {"scenario", scenario},
        {"kind", std::string(CompletionKindName(kind))}};
    it->second.seconds = &completion_.Add(labels, FlowBuckets());
    it->second.lost = &probes_lost_.Add(labels);
  }
  return it->second;
}

void Metrics::SampleProcess() {
  ProcessStats stats;
  if (!ReadProcessStats(&stats)) return;
  // The counter only moves forward: add what /proc shows beyond what we have
  // already counted.
  if (stats.cpu_seconds > cpu_seconds_seen_) {
    process_cpu_->Increment(stats.cpu_seconds - cpu_seconds_seen_);
    cpu_seconds_seen_ = stats.cpu_seconds;
  }
  process_rss_->Set(stats.resident_bytes);
  process_vsz_->Set(stats.virtual_bytes);
  process_fds_->Set(stats.open_fds);
  process_max_fds_->Set(stats.max_fds);
  process_start_->Set(stats.start_time_seconds);
}

std::string SerializeMetrics(prometheus::Registry& registry) {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry.Collect());
}

}  // namespace polar
