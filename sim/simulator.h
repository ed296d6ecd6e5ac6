// Simulator: polar-sim's composition root and router. It owns the seeded
// organization, tokens, products and customers, the stores and services
// (checkouts, events, webhooks, worker, faults, rate limits) and turns each
// HTTP request into a response the way Polar's middleware stack does:
// Polar-Version -> body length -> legacy path rewrite -> (faults) -> rate limit
// -> authentication -> route -> scopes -> handler -> response headers.
// Admin routes under /_sim/ and the simulator's own /metrics bypass all of it.
//
// Thread-safe: Handle() and HandleAdmin() are called concurrently from the
// HTTP threads and never block. The worker's and the timer's threads call back
// into the services. ~Simulator stops the timer and the worker first, so no
// callback outlives the objects it uses. AttachServer() must be called before
// an outage is requested (main does it right after the server starts).
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/auth.h"
#include "sim/checkouts.h"
#include "sim/customers.h"
#include "sim/events.h"
#include "sim/faults.h"
#include "sim/http.h"
#include "sim/model.h"
#include "sim/options.h"
#include "sim/rate_limit.h"
#include "sim/timer.h"
#include "sim/webhooks.h"
#include "sim/worker.h"

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

class Simulator {
 public:
  explicit Simulator(const SimOptions& options);
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
  std::string Metrics() const;
  // Stops the timer and the worker (joining their threads), so no callback
  // touches the HTTP server after this returns. Call before destroying it.
  void Shutdown();

  EventsApi& events() { return *events_; }
  Faults& faults() { return faults_; }
  Worker& worker() { return *worker_; }

  struct Route;  // the route table's entry (simulator.cc)

 private:
  SimResponse Dispatch(const SimRequest& request, const Route& route,
                       const std::vector<std::string>& params,
                       const AccessToken* token);
  SimResponse Admin(const SimRequest& request, bool on_admin_listener);
  void StartOutage(SimServer::Outage mode, Duration length, Duration delay);
  void ApplyWorkerFaults();
  void Count(int route, int status);

  SimOptions options_;
  Organization org_;
  std::vector<std::unique_ptr<Product>> products_;
  Seeded seeded_;
  Auth auth_;
  Faults faults_;
  RateLimiter rate_limiter_;
  TimerThread timer_;
  CustomerStore customers_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<WebhookService> webhooks_;
  std::unique_ptr<EventsApi> events_;
  std::unique_ptr<CheckoutsApi> checkouts_;

  std::atomic<SimServer*> server_{nullptr};
  std::atomic<uint64_t> outage_generation_{0};
  std::atomic<int> outage_mode_{0};
  std::atomic<int64_t> outage_until_ns_{0};

  // Token -> last successful authentication, for the rate limiter's identity
  // cache (Polar keeps it 300 s in Redis).
  std::mutex identity_mutex_;
  std::unordered_map<std::string, SteadyClock::time_point> identity_;

  std::unique_ptr<std::atomic<uint64_t>[]> requests_;
  std::atomic<uint64_t> rate_limited_{0};
};

}  // namespace polar::sim
