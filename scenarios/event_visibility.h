// EventVisibilityScenario: a low-rate probe of how long an ingested event
// takes to become visible in GET /v1/events/ (Polar's chain event.ingested ->
// tinybird.ingest -> Tinybird, docs/polar-api.md §3.3).
//
// Built by its type's factory (scenarios/event_visibility_type.cc) on the
// loop thread and used only there; it needs ScenarioContext::timers. Each
// arrival ingests one tagged event (step `ingest`): a fixed probe
// external_customer_id, a fixed name (a new name per probe would create an
// EventType row each time) and metadata {"probe_id": "<run>-<n>"}, which also
// makes its external_id unique. Then it polls (step `probe`)
//   GET /v1/events/?external_customer_id=<probe>&metadata[probe_id]=<id>
//       &start_timestamp=<ingest time - margin>&limit=1
// every poll_interval until pagination.total_count >= 1. Ingest answered ->
// listed is polar_loadd_completion_seconds{kind="event_visible"} (to within
// one poll interval); a probe not listed by the deadline counts in
// polar_loadd_probes_lost_total{kind="event_visible"}. A step that does not end
// ok ends the probe with that step's outcome (not as lost).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "scenarios/generators.h"
#include "scenarios/random.h"
#include "scenarios/scenario.h"
#include "scenarios/timers.h"

namespace polar {

struct EventVisibilityOptions {
  // Polar does not check that external customers exist; one fixed id keeps
  // the probes apart from real usage and from the ingestion scenario's.
  std::string probe_customer_id = "polar-loadd-probe";
  std::string event_name = "polar_loadd.probe";
  Duration poll_interval = std::chrono::seconds(1);
  Duration deadline = std::chrono::seconds(60);
  // As EventIngestionOptions::timestamp_backdate: unset, Polar stamps it.
  std::optional<Duration> timestamp_backdate;
  // start_timestamp is the load box's time at ingest minus this: it narrows
  // the search while tolerating clocks that differ by less than this.
  Duration search_margin = std::chrono::minutes(5);
  bool operator==(const EventVisibilityOptions&) const = default;
};

class EventVisibilityScenario final : public Scenario {
 public:
  EventVisibilityScenario(ScenarioContext context,
                          EventVisibilityOptions options);
  ~EventVisibilityScenario() override;

  const std::string& name() const override { return context_.name; }
  void Start(const Arrival& arrival) override;
  std::size_t in_flight() const override { return probes_.size(); }

 private:
  struct Probe {
    uint64_t id = 0;
    std::string probe_id;
    std::string start_timestamp;  // the query's lower bound, ISO 8601
    MonoTime ingested_at{};       // when Polar answered the ingest
    Timers::Id timer = Timers::kNone;
    bool busy = false;
  };

  Probe* Find(uint64_t id);
  void OnIngested(uint64_t id, Response&& response);
  void Poll(Probe& probe, MonoTime at);
  void OnPolled(uint64_t id, Response&& response);
  void End(Probe& probe);

  ScenarioContext context_;
  EventVisibilityOptions options_;
  Timers& timers_;
  Rng rng_;
  std::string run_id_;
  std::string customer_json_;   // the probe customer id, JSON-escaped
  std::string customer_query_;  // and URL-encoded
  StepRecorder ingest_;
  StepRecorder probe_;
  ScenarioSeries& series_;
  CompletionSeries& completion_;
  std::unordered_map<uint64_t, std::unique_ptr<Probe>> probes_;
  uint64_t next_probe_ = 1;
};

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string UrlEncode(std::string_view text);

}  // namespace polar
