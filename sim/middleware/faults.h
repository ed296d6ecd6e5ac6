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
// Stalls are timed on the Clock given at construction.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>

#include "sim/base/clock.h"
#include "sim/base/distribution.h"

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
    SteadyTime stall_until{};
    bool error = false;
    int error_status = 500;
    bool malformed = false;
  };

  // Registers polar_sim_faults_injected_total{kind} in `registry`.
  Faults(const Clock& clock, prometheus::Registry& registry);

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

  // A 2xx body was cut (the faults stage does the cutting).
  void CountMalformed() { malformed_->Increment(); }

 private:
  void Publish(std::shared_ptr<FaultSet> next);

  const Clock& clock_;
  mutable std::mutex mutex_;
  std::shared_ptr<const FaultSet> set_ = std::make_shared<FaultSet>();
  std::atomic<bool> any_routes_{false};
  std::atomic<int64_t> stall_until_ns_{0};  // the clock's time, 0 = none
  prometheus::Counter *latency_, *errors_, *malformed_, *stalled_;
};

}  // namespace polar::sim
