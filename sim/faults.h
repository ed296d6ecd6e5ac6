// Faults: what polar-sim does wrong on purpose, per route (Polar's operation
// ids such as "events:ingest", or "*" for every API route):
//   latency          added before the response goes out (a Distribution); the
//                    connection is held, no thread sleeps
//   error_ratio      share of requests answered error_status (default 500,
//                    Starlette's plain "Internal Server Error") without running
//                    the handler, as a failed request rolls back in Polar
//   malformed_ratio  share of 2xx JSON bodies cut in half (invalid JSON)
// plus process-wide faults:
//   stall            every API response is held until the stall ends
//   outage           refuse (port closed) or reset (TCP RST) for a while;
//                    carried out by the Simulator on the SimServer
//   worker           slow worker: job times × factor + add, per queue or "*"
// A route's own entry replaces the "*" entry.
//
// The same JSON shape is used by --faults FILE (TOML), the /_sim/faults admin
// routes and GET /_sim/faults.
//
// Thread-safe: Decide() runs on HTTP threads (an atomic flag makes it free
// when no fault is set); changes swap an immutable snapshot under a mutex.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>

#include "sim/clock.h"
#include "sim/distribution.h"

namespace polar::sim {

using nlohmann::json;

struct RouteFaults {
  std::optional<Distribution> latency;
  double error_ratio = 0;
  int error_status = 500;
  double malformed_ratio = 0;
  bool empty() const {
    return !latency && error_ratio == 0 && malformed_ratio == 0;
  }
};

struct WorkerFault {
  double factor = 1;
  Duration add{0};
};

struct FaultSet {
  std::map<std::string, RouteFaults> routes;
  std::map<std::string, WorkerFault> worker;
};

// Parsing from JSON (admin routes; TOML is converted to JSON first). Errors
// name the key path; every problem is reported, not just the first.
bool ParseRouteFaults(const json& j, RouteFaults* out, std::string* error);
bool ParseWorkerFault(const json& j, WorkerFault* out, std::string* error);
json ToJson(const RouteFaults& f);
json ToJson(const WorkerFault& f);

class Faults {
 public:
  struct Decision {
    Duration latency{0};
    SteadyClock::time_point stall_until{};
    bool error = false;
    int error_status = 500;
    bool malformed = false;
  };

  Decision Decide(const std::string& route);

  void SetRoute(const std::string& route, const RouteFaults& f);
  void ClearRoute(const std::string& route);
  void SetWorker(const std::string& queue, const WorkerFault& f);
  void ClearWorker(const std::string& queue);
  void Clear();
  void Stall(Duration d);  // from now
  void EndStall();
  std::shared_ptr<const FaultSet> snapshot() const;
  Duration stall_remaining() const;

  // Counters for /metrics.
  struct Counts {
    std::atomic<uint64_t> latency{0}, errors{0}, malformed{0}, stalled{0};
  };
  const Counts& counts() const { return counts_; }
  Counts& counts() { return counts_; }

 private:
  void Publish(std::shared_ptr<FaultSet> next);

  mutable std::mutex mutex_;
  std::shared_ptr<const FaultSet> set_ = std::make_shared<FaultSet>();
  std::atomic<bool> any_routes_{false};
  std::atomic<int64_t> stall_until_ns_{0};  // steady clock, 0 = none
  Counts counts_;
};

}  // namespace polar::sim
