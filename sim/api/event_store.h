// The stores behind the events API: DedupIndex, the external_ids already
// ingested (Polar's unique index on (organization_id, external_id)), and
// EventStore, the events kept for GET /v1/events/, each invisible until the
// worker chain that makes it queryable has run.
//
// Thread-safe: each guards itself (DedupIndex with sharded mutexes,
// EventStore with a shared_mutex so listings run in parallel). Bounded: the
// oldest ids and events are forgotten first.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "sim/api/model.h"
#include "sim/base/time.h"

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
  // Ids forgotten to make room since start. Polar's unique index never
  // forgets: one of these sent again is inserted here where Polar would count
  // a duplicate.
  uint64_t forgotten() const { return forgotten_.load(); }

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
  std::atomic<uint64_t> forgotten_{0};
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
  SteadyTime visible_at = SteadyTime::max();
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
  void MarkVisible(uint64_t first, uint64_t count, SteadyTime at);
  // Matching visible events, sorted, and the total count.
  std::pair<std::vector<StoredEvent>, int64_t> List(const EventQuery& q,
                                                    SteadyTime now) const;
  std::size_t size() const;

 private:
  mutable std::shared_mutex mutex_;
  std::size_t capacity_;
  std::deque<StoredEvent> ring_;
  uint64_t first_seq_ = 0;  // sequence number of ring_.front()
};

}  // namespace polar::sim
