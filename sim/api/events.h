// Usage events: POST /v1/events/ingest and GET /v1/events/
// (docs/polar-api.md §3).
//
// Ingested events are stored (sim/api/event_store.h) and become listable only
// after the worker chain that makes them queryable has run: event.ingested
// (low_priority) -> tinybird.ingest (tinybird) -> Tinybird's own lag
// (EventOptions::visibility_lag). Slow or stalled worker queues therefore
// delay visibility, as in Polar.
//
// Thread-safe: EventsApi handlers run concurrently on HTTP threads; the stores
// guard themselves. Times come from the Clock given at construction.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "sim/api/customers.h"
#include "sim/api/event_store.h"
#include "sim/base/clock.h"
#include "sim/base/distribution.h"
#include "sim/http/message.h"
#include "sim/worker/worker.h"

namespace polar::sim {

struct EventOptions {
  std::size_t max_remembered_ids = 1'000'000;
  // Events kept for GET /v1/events/ (~0.5 KiB each: 100k is ~50 MiB).
  std::size_t max_stored_events = 100'000;
  // Tinybird's own delay between tinybird.ingest and queryable data.
  Distribution visibility_lag = Distribution::Fixed(std::chrono::seconds(1));
};

class EventsApi {
 public:
  EventsApi(const EventOptions& options, const Organization& org,
            CustomerStore* customers, Worker* worker, const Clock& clock,
            prometheus::Registry& registry);

  SimResponse Ingest(const SimRequest& request);
  SimResponse List(const SimRequest& request);

  const EventStore& store() const { return store_; }
  DedupIndex& dedup() { return dedup_; }
  // Events answered as inserted and as duplicates since start
  // (polar_sim_events_ingested_total{result}): how several load generators
  // sharing one target show an external_id collision.
  uint64_t inserted_total() const {
    return static_cast<uint64_t>(inserted_total_->Value());
  }
  uint64_t duplicates_total() const {
    return static_cast<uint64_t>(duplicates_total_->Value());
  }
  // polar_sim_events_stored and polar_sim_event_ids_forgotten_total: call
  // before a scrape.
  void UpdateGauges();

 private:
  SimResponse Store(std::vector<StoredEvent>& parsed,
                    const std::vector<std::string>& external_ids);
  void EnqueueIngested(uint64_t first, uint64_t count);
  void RunIngested();

  EventOptions options_;
  const Organization& org_;
  CustomerStore* customers_;
  Worker* worker_;
  const Clock& clock_;
  DedupIndex dedup_;
  EventStore store_;
  prometheus::Counter* inserted_total_;
  prometheus::Counter* duplicates_total_;
  prometheus::Gauge* stored_;
  prometheus::Counter* forgotten_;
  std::atomic<uint64_t> forgotten_reported_{0};
  std::atomic<bool> said_forgetting_{false};

  // Ids waiting for an event.ingested job. Polar enqueues one job per request
  // with at most 5000 ids; polar-sim coalesces the requests of a 10 ms window
  // into one job of up to 5000 ids, so 20,000 requests/s do not mean 20,000
  // job hand-offs/s.
  std::mutex pending_mutex_;
  std::vector<std::pair<uint64_t, uint64_t>> pending_;
  bool job_queued_ = false;
  std::mt19937_64 lag_rng_{42};
  std::mutex lag_mutex_;
};

}  // namespace polar::sim
