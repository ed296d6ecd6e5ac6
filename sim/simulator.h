// Simulator: polar-sim's model of Polar's API: the seeded organization, its
// token and customers, and the routes. Thread-safe: Handle() is called
// concurrently from the HTTP threads, and all state is guarded by one mutex per
// store.
#pragma once

#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "sim/http.h"
#include "sim/options.h"

namespace polar::sim {

struct Seeded {
  std::string organization_id;
  std::string token;  // an organization access token (polar_oat_...)
  std::vector<std::string> customer_external_ids;
  std::vector<std::string> customer_ids;
};

// Remembers ingested external_ids for dedup with a FIFO bound, so memory stays
// flat.
class EventStore {
 public:
  explicit EventStore(std::size_t capacity) : capacity_(capacity) {}
  // Inserts the batch's external ids; returns how many were new. Empty ids
  // never collide.
  int64_t InsertBatch(const std::vector<std::string>& external_ids);

 private:
  std::mutex mutex_;
  std::size_t capacity_;
  std::unordered_set<std::string> seen_;
  std::deque<std::string> order_;
};

class Simulator {
 public:
  explicit Simulator(const SimOptions& options);
  SimResponse Handle(const SimRequest& request);
  const Seeded& seeded() const { return seeded_; }

 private:
  SimResponse IngestEvents(const SimRequest& request);

  SimOptions options_;
  Seeded seeded_;
  EventStore events_;
};

}  // namespace polar::sim
