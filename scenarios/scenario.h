// Scenario: what to send on each arrival and how to judge the answers (the
// "probe" of cloudprober).
//
// The scheduler (daemon) owns *when*: it calls Start() once per arrival with
// the intended time. The scenario owns *what*: it sends one or more requests
// through the Transport, judges each response, and records every step in the
// metrics. Everything runs on the event-loop thread; Start() must not block. A
// scenario is built once from the frozen config by its type's factory
// (ScenarioType::make, scenarios/registry.h).
#pragma once

#include <cstdint>
#include <string>

#include "exporters/clock.h"
#include "exporters/metrics.h"
#include "scenarios/shard.h"
#include "scenarios/timers.h"
#include "scenarios/transport.h"
#include "scenarios/webhook_expectations.h"

namespace polar {

struct Arrival {
  MonoTime intended{};  // when the schedule wanted this flow to start
  uint64_t sequence = 0;
};

// What a scenario may use. All references outlive the scenario.
struct ScenarioContext {
  std::string name;  // the `scenario` label, from the config table name
  Transport& transport;
  const Clock& clock;
  Metrics& metrics;
  uint64_t seed = 1;  // data generation is reproducible from this
  // The webhook receiver's correlator; null when no receiver is configured.
  WebhookExpectations* webhooks = nullptr;
  // Think time, poll intervals and deadlines (the daemon's event loop, or
  // FakeTimers in tests). Required by the scenarios that wait (checkout,
  // event_visibility); a pointer only so the fields above keep their order.
  Timers* timers = nullptr;
  // This instance's share of a cluster (scenarios/shard.h). The scheduler
  // already numbers arrivals globally and `seed` is already the shard's;
  // scenarios use it only to split pools of names.
  Shard shard{};
};

class Scenario {
 public:
  virtual ~Scenario() = default;
  virtual const std::string& name() const = 0;
  // Begins one flow for this arrival. The scheduler has already checked the
  // in-flight caps.
  virtual void Start(const Arrival& arrival) = 0;
  // Flows started and not yet finished; the scheduler compares it with
  // max_in_flight. A scenario whose in_flight() is 0 has nothing pending (no
  // request, no timer): a config reload destroys retired scenarios then.
  virtual std::size_t in_flight() const = 0;
};

// A 422 to an event ingest that asks for organization_id is Polar's answer to
// a token that is not an organization access token (a personal access token
// or an OAuth token must name the organization in every event;
// server/polar/event/service.py): said once per process, as an error that
// names the fix. Any thread of the loop; cheap when the answer is anything
// else.
void ExplainIngestRefusal(const std::string& scenario,
                          const Response& response);

// Records one finished request of one step: the outcome counter, both latency
// histograms (ok answers and timeouts only: see Record) and the schedule lag.
// Holds cached label children, so Record() is a few atomic adds. A request that
// did not end ok is also logged, with its status, transport error and the start
// of the body, rate-limited per (scenario, step, outcome) by the process-wide
// error limiter (exporters/log.h) and with secrets redacted by the log sinks,
// and kept in Metrics::recent_errors() for the status page.
class StepRecorder {
 public:
  StepRecorder(Metrics& metrics, const std::string& scenario,
               const std::string& step);
  // Latency and service time are observed for ok answers and timeouts (at
  // their elapsed time, at least target.timeout) only: a request that failed
  // fast (a 500 in 3 ms, a refused connection) is no fast answer, and observed
  // it would make an outage of fast errors look like Polar got faster (p99 and
  // SLO compliance both improved). Every outcome counts in
  // polar_loadd_requests_total; the latency SLO counts the failures as misses
  // from there (docs/alerting.md).
  void Record(Outcome outcome, const Response& response);

 private:
  void LogFailure(Outcome outcome, const Response& response);

  std::string scenario_name_;
  std::string step_name_;
  StepSeries& step_;
  ScenarioSeries& scenario_;
  RecentErrors& recent_errors_;  // also fed every failure (the status page)
};

}  // namespace polar
