// AdminApi: polar-sim's own routes under /_sim/ (not Polar's): faults set and
// cleared at run time, the stall, the outage, and a look at the stores.
//
//   GET|PUT|DELETE /_sim/faults          every fault at once
//   PUT|DELETE /_sim/faults/routes/{id}  one route's faults ({id}: an
//                                        operation id or *)
//   PUT|DELETE /_sim/faults/worker/{q}   slow worker for a queue or *
//   POST|DELETE /_sim/faults/stall       {"for":"2s"}
//   POST|DELETE /_sim/faults/outage      {"mode":"refuse|reset|none","for":..}
//   GET /_sim/state                      stored checkouts, events, customers
//   POST /_sim/stripe/confirmation_tokens a Stripe ConfirmationToken a paid
//                                        confirm accepts (once), as Stripe's
//                                        test helpers make one
//
// Served on the API listener (a request there asking for an outage must say
// when it ends) and on --admin-listen. Every problem in a body is reported in
// one 422 and nothing changes.
//
// Thread-safe: Handle() runs on HTTP threads; outages are carried out on the
// timer thread (SimServer::SetOutage joins HTTP threads). Attach() must come
// before an outage is asked for.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sim/base/timer.h"
#include "sim/http/router.h"
#include "sim/http/server.h"
#include "sim/middleware/faults.h"
#include "sim/worker/worker.h"

namespace polar::sim {

class AdminApi {
 public:
  // `routes`: the operation ids faults may name; `queues`: the worker's;
  // `state`: the body of GET /_sim/state.
  AdminApi(Faults* faults, Worker* worker, TimerThread* timer,
           std::vector<std::string> routes, std::vector<std::string> queues,
           std::function<json()> state,
           std::function<std::string()> confirmation_token);

  SimResponse Handle(const SimRequest& request, bool on_admin_listener);
  void Attach(SimServer* server) { server_ = server; }
  void Detach() { server_ = nullptr; }
  // After `delay`, the server refuses or resets connections for `length`
  // (zero: until changed).
  void StartOutage(SimServer::Outage mode, Duration length, Duration delay);
  // Applies the worker faults of the current fault set to the worker.
  void ApplyWorkerFaults();

 private:
  enum RouteId {
    kFaults,
    kRouteFault,
    kWorkerFault,
    kStall,
    kOutage,
    kState,
    kConfirmationToken,
  };
  struct Call {
    const SimRequest& request;
    const std::vector<std::string>& params;
    const json& body;
    bool on_admin_listener;
  };
  SimResponse AllFaults(const Call& call);
  SimResponse RouteFault(const Call& call);
  SimResponse WorkerFaultRoute(const Call& call);
  SimResponse StallRoute(const Call& call);
  SimResponse OutageRoute(const Call& call);
  // Starts the outage a body asks for; an error response when it is wrong.
  std::optional<SimResponse> OutageFromBody(const json& body,
                                            bool on_admin_listener);
  bool KnownRoute(const std::string& name) const;
  json Snapshot() const;  // what GET /_sim/faults shows
  SimResponse Current() const;

  Faults* faults_;
  Worker* worker_;
  TimerThread* timer_;
  std::vector<std::string> routes_;
  std::vector<std::string> queues_;
  std::function<json()> state_;
  std::function<std::string()> confirmation_token_;
  Router router_;

  std::atomic<SimServer*> server_{nullptr};
  std::atomic<uint64_t> outage_generation_{0};
  std::atomic<int> outage_mode_{0};
  std::atomic<int64_t> outage_until_ns_{0};
};

}  // namespace polar::sim
