// Usage events: POST /v1/events/ingest and GET /v1/events/ (docs/polar-api.md
// §3).
//
// DedupIndex remembers ingested external_ids (Polar's unique index on
// (organization_id, external_id)); EventStore keeps the events for listing,
// each invisible until the worker chain that makes it queryable has run:
// event.ingested (low_priority) -> tinybird.ingest (tinybird) -> Tinybird's own
// lag (EventOptions::visibility_lag). Slow or stalled worker queues therefore
// delay visibility, as in Polar.
//
// Thread-safe: EventsApi handlers run concurrently on HTTP threads; the stores
// guard themselves (EventStore with a shared_mutex so listings run in
// parallel). Bounded: the oldest ids and events are forgotten first.
#pragma once

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

#include "sim/customers.h"
#include "sim/distribution.h"
#include "sim/http.h"
#include "sim/model.h"
#include "sim/worker.h"

namespace polar::sim {

// Remembers ingested external_ids for dedup with a FIFO bound, so memory stays
// flat. It keeps a 64-bit hash of each id, not the id: 1M ids take ~24 MiB
// (open-addressing tables at half load plus the eviction rings), and two
// distinct ids collide with probability ~n^2/2^65 (3e-8 at 1M). Sharded by
// hash so HTTP threads rarely wait on each other (each shard evicts its own
// oldest ids, so at real sizes the FIFO bound is per shard).
class DedupIndex {
 public:
  explicit DedupIndex(std::size_t capacity);
  // Marks which ids are new (and remembers them). Empty ids never collide.
  std::vector<bool> Insert(const std::vector<std::string>& external_ids);
  // How many of the batch's ids were new.
  int64_t InsertBatch(const std::vector<std::string>& external_ids);

 private:
  struct Shard {
    std::mutex mutex;
    std::vector<uint64_t> slots;  // 0 = empty; hashes are never 0
    std::vector<uint64_t> ring;   // insertion order, for eviction
    std::size_t ring_head = 0, ring_size = 0;
    bool Contains(uint64_t h) const;
    void Add(uint64_t h);
    void Remove(uint64_t h);
  };
  // 16 shards for real sizes; one for small ones, so the FIFO bound is exact.
  std::size_t shards_count_;
  std::size_t per_shard_;
  std::unique_ptr<Shard[]> shards_;
};

struct StoredEvent {
  std::string id;
  SysMicros timestamp{};
  std::string name;
  std::optional<std::string> external_customer_id;
  std::optional<std::string> customer_id;
  std::optional<std::string> external_member_id;
  std::optional<std::string> member_id;
  json metadata = json::object();
  // Listable from this time on; max() until tinybird.ingest has run.
  SteadyClock::time_point visible_at = SteadyClock::time_point::max();
};

struct EventQuery {
  std::vector<std::string> external_customer_ids;
  std::vector<std::string> customer_ids;
  std::vector<std::string> names;
  std::vector<std::pair<std::string, std::vector<std::string>>> metadata;
  std::optional<SysMicros> start;  // exclusive, as Tinybird's filter
  std::optional<SysMicros> end;    // exclusive
  bool ascending = false;          // sorting=timestamp; default -timestamp
  int64_t page = 1;
  int64_t limit = 10;
};

class EventStore {
 public:
  explicit EventStore(std::size_t capacity) : capacity_(capacity) {}
  // Moves the events in; returns the sequence range [first, first + n).
  std::pair<uint64_t, uint64_t> Append(std::vector<StoredEvent>& events);
  void MarkVisible(uint64_t first, uint64_t count, SteadyClock::time_point at);
  // Matching visible events, sorted, and the total count.
  std::pair<std::vector<StoredEvent>, int64_t> List(
      const EventQuery& q, SteadyClock::time_point now) const;
  std::size_t size() const;

 private:
  mutable std::shared_mutex mutex_;
  std::size_t capacity_;
  std::deque<StoredEvent> ring_;
  uint64_t first_seq_ = 0;  // sequence number of ring_.front()
};

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
            CustomerStore* customers, Worker* worker);

  SimResponse Ingest(const SimRequest& request);
  SimResponse List(const SimRequest& request);

  const EventStore& store() const { return store_; }
  DedupIndex& dedup() { return dedup_; }
  // Events answered as inserted and as duplicates since start
  // (polar_sim_events_ingested_total{result}): how several load generators
  // sharing one target show an external_id collision.
  uint64_t inserted_total() const { return inserted_total_.load(); }
  uint64_t duplicates_total() const { return duplicates_total_.load(); }

 private:
  SimResponse Store(std::vector<StoredEvent>& parsed,
                    const std::vector<std::string>& external_ids);
  void EnqueueIngested(uint64_t first, uint64_t count);
  void RunIngested();

  EventOptions options_;
  const Organization& org_;
  CustomerStore* customers_;
  Worker* worker_;
  DedupIndex dedup_;
  EventStore store_;
  std::atomic<uint64_t> inserted_total_{0};
  std::atomic<uint64_t> duplicates_total_{0};

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
