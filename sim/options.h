// SimOptions: polar-sim's start-up settings, from flags and an optional TOML
// file (--config; flags given after it override it), fixed for the process
// lifetime. Faults set here are only the initial ones: /_sim/faults changes
// them at run time.
//
// ParseOptions is a pure function of argv and the file; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/api/checkouts.h"
#include "sim/api/events.h"
#include "sim/api/webhooks.h"
#include "sim/http/server.h"
#include "sim/middleware/faults.h"
#include "sim/middleware/rate_limit.h"
#include "sim/worker/worker.h"

namespace polar::sim {

struct SimOptions {
  std::string listen = "127.0.0.1:8000";  // Polar's local dev port
  std::string admin_listen;  // a second listener for /_sim and /metrics only
  uint64_t seed = 1;         // fixes the token, ids, products and customers
  int customers = 20;        // seeded customers loadtest-customer-0..N-1
  int threads = 2;           // HTTP worker threads
  // Multiplies Polar's built-in schedules: webhook retry backoff and FIFO
  // guard, the 15-minute expiry sweep.
  double time_scale = 1.0;
  RateLimitMode rate_limit = RateLimitMode::kOff;
  std::size_t max_customers = 100'000;  // confirm-created customers kept
  EventOptions events;
  CheckoutOptions checkouts;
  WorkerOptions worker;
  WebhookOptions webhooks;
  // Initial faults.
  FaultSet faults;
  std::optional<Duration> stall;
  std::optional<std::pair<SimServer::Outage, Duration>> outage;
};

// Parses argv (without argv[0]). Returns false with every problem in *errors
// ("--flag: message" or "file:line:col: key: message"). *help is set for
// --help.
bool ParseOptions(const std::vector<std::string>& args, SimOptions* options,
                  std::vector<std::string>* errors, bool* help);
extern const char* const kUsage;

}  // namespace polar::sim
