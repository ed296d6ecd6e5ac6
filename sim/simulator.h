// Simulator: polar-sim's composition root. It seeds the organization, tokens,
// products and customers, builds the stores and services (checkouts, events,
// webhooks, worker, faults, rate limits), the route table (sim/routes.cc) and
// the middleware chain (sim/middleware/chain.h) that every API request
// travels, and owns the metrics registry behind /metrics.
//
// Thread-safe: Handle() and HandleAdmin() are called concurrently from the
// HTTP threads and never block. The worker's and the timer's threads call back
// into the services. ~Simulator stops the timer and the worker first, so no
// callback outlives the objects it uses. Start() attaches the HTTP server
// (main does it right after the server starts), which outages need.
//
// Every reading of the time goes through the Clock given at construction;
// tests pass a FakeClock, advance it and Settle().
#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

#include "sim/admin.h"
#include "sim/api/checkouts.h"
#include "sim/api/customers.h"
#include "sim/api/events.h"
#include "sim/api/model.h"
#include "sim/api/webhooks.h"
#include "sim/base/clock.h"
#include "sim/base/timer.h"
#include "sim/http/router.h"
#include "sim/http/server.h"
#include "sim/middleware/auth.h"
#include "sim/middleware/chain.h"
#include "sim/middleware/faults.h"
#include "sim/middleware/rate_limit.h"
#include "sim/middleware/stages.h"
#include "sim/options.h"
#include "sim/worker/worker.h"

namespace polar::sim {

struct Seeded {
  std::string organization_id;
  std::string token;       // organization access token with every scope used
  std::string read_token;  // same organization, read scopes only
  std::vector<std::string> customer_external_ids;
  std::vector<std::string> customer_ids;
  std::string free_product_id, free_price_id;
  std::string paid_product_id, paid_price_id;
};

// Polar's API routes (operation ids, methods, patterns, scopes) bound to the
// services' handlers; the index in the vector is the route's id.
std::vector<Route> PolarRoutes(CheckoutsApi* checkouts, EventsApi* events,
                               WebhookService* webhooks);

class Simulator {
 public:
  explicit Simulator(const SimOptions& options,
                     const Clock& clock = RealClock());
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // The API listener.
  SimResponse Handle(const SimRequest& request);
  // The --admin-listen listener: /_sim/*, /metrics and /healthz only.
  SimResponse HandleAdmin(const SimRequest& request);

  const Seeded& seeded() const { return seeded_; }
  const SimOptions& options() const { return options_; }
  // Starts the background schedules (expiry sweep) and the start-up stall
  // and outage.
  void Start(SimServer* server);
  // Prometheus text of every polar-sim metric.
  std::string Metrics();
  // Stops the timer and the worker (joining their threads), so no callback
  // touches the HTTP server after this returns. Call before destroying it.
  void Shutdown();
  // For tests on a FakeClock: returns once no timer callback and no job is
  // due or running.
  void Settle();

  EventsApi& events() { return *events_; }
  Faults& faults() { return faults_; }
  Worker& worker() { return *worker_; }
  TimerThread& timer() { return timer_; }
  const Clock& clock() const { return clock_; }

 private:
  void Seed();
  void BuildChain();
  json State() const;

  SimOptions options_;
  const Clock& clock_;
  prometheus::Registry registry_;
  Organization org_;
  std::vector<std::unique_ptr<Product>> products_;
  Seeded seeded_;
  Auth auth_;
  Faults faults_;
  RateLimiter rate_limiter_;
  IdentityCache identities_;
  TimerThread timer_;
  CustomerStore customers_;
  prometheus::Gauge* customers_gauge_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<WebhookService> webhooks_;
  std::unique_ptr<EventsApi> events_;
  std::unique_ptr<CheckoutsApi> checkouts_;
  std::vector<Route> routes_;
  Router router_;
  std::unique_ptr<RequestCounter> request_counter_;
  std::unique_ptr<AdminApi> admin_;
  std::unique_ptr<Chain> chain_;
};

}  // namespace polar::sim
