// EventIngestionScenario: one POST /v1/events/ingest batch per arrival, judged
// by Polar's answer.
//
// Built by its type's factory (scenarios/event_ingestion_type.cc) on the loop
// thread and used only there. Each batch carries `batch_size` events for
// external customers picked from the configured list with the seed's
// power-law split (PowerLawPicker), each with a unique external_id (the dedup
// key, docs/polar-api.md §3.1), so a correct target reports inserted +
// duplicates == batch_size; duplicates are counted separately. Timestamps
// survive clock skew: by default events carry none and Polar stamps them on
// arrival; with `timestamp_backdate` they carry the load box's time minus
// that margin (Polar answers 422 to a timestamp in its future).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scenarios/generators.h"
#include "scenarios/random.h"
#include "scenarios/scenario.h"

namespace polar {

struct EventIngestionOptions {
  int batch_size = 7;  // the seed's default (LOAD_TEST_EVENT_BATCH_SIZE)
  std::vector<std::string> external_customer_ids;
  // Unset: no `timestamp` (Polar uses its own clock). Set: the load box's
  // wall time minus this margin.
  std::optional<Duration> timestamp_backdate;
  bool operator==(const EventIngestionOptions&) const = default;
};

// Judges Polar's answer to one ingest batch of `batch_size` events: the
// transport outcome, then the status (Polar answers 200), then the body
// {"inserted": N, "duplicates": M} with N + M == batch_size. Fills *inserted
// and *duplicates with what the body said when it said it in range (each
// count in [0, batch_size] and N + M <= batch_size), else 0. Pure, any
// thread; the body is untrusted and anything in it yields an outcome (a body
// that is not JSON: kInvalidResponse; JSON with wrong counts: kCheckFailed).
Outcome JudgeIngestResponse(const Response& response, int batch_size,
                            int64_t* inserted, int64_t* duplicates);

namespace ingest_detail {
// The counts of a body that is exactly Polar's usual answer,
// {"inserted":N,"duplicates":M} (blanks allowed, either order, duplicates
// optional, unsigned integers of at most 18 digits), read without building a
// JSON document. False for any other body, which JudgeIngestResponse then
// gives to the full JSON parser: the two agree wherever this one answers (the
// ingest_judge fuzz target checks it).
bool ReadCountsQuickly(std::string_view body, uint64_t* inserted,
                       std::optional<uint64_t>* duplicates);
}  // namespace ingest_detail

class EventIngestionScenario final : public Scenario {
 public:
  EventIngestionScenario(ScenarioContext context,
                         EventIngestionOptions options);

  const std::string& name() const override { return context_.name; }
  void Start(const Arrival& arrival) override;
  std::size_t in_flight() const override { return in_flight_; }

  // The request body for one batch; public so tests can check what goes on the
  // wire.
  std::string BuildBatch(uint64_t sequence);

 private:
  void OnResponse(Response&& response);

  ScenarioContext context_;
  EventIngestionOptions options_;
  Rng rng_;
  PowerLawPicker customers_;
  std::string
      run_id_;  // makes external_ids unique across restarts of the daemon
  std::vector<std::string> escaped_ids_;  // customer ids as JSON strings
  StepRecorder ingest_;
  ScenarioSeries& series_;
  prometheus::Counter& inserted_;
  prometheus::Counter& duplicates_;
  std::size_t in_flight_ = 0;
};

}  // namespace polar
