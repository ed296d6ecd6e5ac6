// The event_visibility scenario type: its keys, parser, factory and load
// (scenarios/scenario_type.h). What it sends: scenarios/event_visibility.h.
#include <fmt/format.h>

#include "scenarios/event_visibility.h"
#include "scenarios/scenario_type.h"

namespace polar {
namespace {

std::any ParseEventVisibility(ScenarioConfigReader& r) {
  EventVisibilityOptions o;
  if (auto v = r.String("probe_customer_id")) {
    if (v->empty() || v->size() > 256) {
      r.Error("probe_customer_id", "must be 1-256 characters");
    } else {
      o.probe_customer_id = *v;
    }
  }
  if (auto v = r.String("event_name")) {
    // Polar's limit on event names (docs/polar-api.md §3.1).
    if (v->empty() || v->size() > 128) {
      r.Error("event_name", "must be 1-128 characters");
    } else {
      o.event_name = *v;
    }
  }
  if (auto v = r.DurationIn("poll_interval", std::chrono::milliseconds(50),
                            std::chrono::minutes(1))) {
    o.poll_interval = *v;
  }
  if (auto v = r.DurationIn("deadline", std::chrono::seconds(1),
                            std::chrono::hours(1))) {
    o.deadline = *v;
  }
  if (auto v = r.DurationIn("timestamp_backdate", Duration::zero(),
                            std::chrono::hours(1))) {
    o.timestamp_backdate = *v;
  }
  if (auto v = r.DurationIn("search_margin", Duration::zero(),
                            std::chrono::hours(24))) {
    o.search_margin = *v;
  }
  return o;
}

std::unique_ptr<Scenario> MakeEventVisibility(ScenarioContext context,
                                              const std::any& options) {
  return std::make_unique<EventVisibilityScenario>(
      std::move(context),
      std::any_cast<const EventVisibilityOptions&>(options));
}

// How long a probe polls in the estimate: Tinybird's visibility usually takes
// a few seconds.
constexpr double kVisibilityWaitSeconds = 3;

// The ingest and the polls of GET /v1/events/, all with the token.
PolarLoad EventVisibilityLoad(const std::any& options) {
  const auto& o = std::any_cast<const EventVisibilityOptions&>(options);
  PolarLoad load;
  load.parts = {
      {PolarBucket::kOrganization, 1, 1},
      {PolarBucket::kOrganization, 1,
       PollsForWait(o.poll_interval, o.deadline, kVisibilityWaitSeconds)}};
  load.wait_note = fmt::format("{:.0f} s of polling per visibility probe",
                               kVisibilityWaitSeconds);
  return load;
}

}  // namespace

const ScenarioType& EventVisibilityType() {
  static const ScenarioType kType{
      "event_visibility",
      "one tagged event ingested per arrival, then GET /v1/events/ polled "
      "until it is listed",
      {
          {"probe_customer_id", "string", "\"polar-loadd-probe\""},
          {"event_name", "string", "\"polar_loadd.probe\""},
          {"poll_interval", "duration", "\"1s\""},
          {"deadline", "duration", "\"60s\""},
          {"timestamp_backdate", "duration", ""},
          {"search_margin", "duration", "\"5m\""},
      },
      {"ingest", "probe"},
      "",
      &ParseEventVisibility,
      &MakeEventVisibility,
      &EventVisibilityLoad,
      &SameOptions<EventVisibilityOptions>,
  };
  return kType;
}

}  // namespace polar
