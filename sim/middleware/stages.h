// The stages of polar-sim's middleware chain (sim/middleware/chain.h), one
// class per Polar middleware it stands for, outermost first. Each says what it
// answers itself and what it adds to the answers of the stages inside it.
//
// Built once by the Simulator; Handle() runs concurrently on the HTTP threads.
// Metric children are created at construction or cached (RequestCounter).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/base/clock.h"
#include "sim/http/router.h"
#include "sim/middleware/auth.h"
#include "sim/middleware/chain.h"
#include "sim/middleware/faults.h"
#include "sim/middleware/rate_limit.h"

namespace polar::sim {

// polar_sim_http_requests_total{route,status}: a child per (route, status)
// pair, created on first use and cached in a fixed table.
class RequestCounter {
 public:
  // `route_names[i]` names route id i; the last one is "unknown".
  RequestCounter(prometheus::Registry& registry,
                 std::vector<std::string> route_names);
  void Count(int route_id, int status);
  int unknown_route() const {
    return static_cast<int>(route_names_.size()) - 1;
  }

 private:
  std::vector<std::string> route_names_;
  prometheus::Family<prometheus::Counter>* family_;
  std::unique_ptr<std::atomic<prometheus::Counter*>[]> children_;
  std::mutex mutex_;  // creating a child
};

// Counts every API request by route and final status (outermost).
class CountStage : public Middleware {
 public:
  explicit CountStage(RequestCounter* counter) : counter_(counter) {}
  SimResponse Handle(Exchange& x, const Next& next) override;

 private:
  RequestCounter* counter_;
};

// APIVersionMiddleware: an unknown Polar-Version is 404 before anything else.
class VersionStage : public Middleware {
 public:
  SimResponse Handle(Exchange& x, const Next& next) override;
};

// polar-sim's own routes on the API listener, outside Polar's stack: /_sim/*
// (admin) and GET /metrics. Not counted, no Polar headers.
class OwnRoutesStage : public Middleware {
 public:
  using Handler = std::function<SimResponse(const SimRequest&)>;
  OwnRoutesStage(Handler admin, Handler metrics)
      : admin_(std::move(admin)), metrics_(std::move(metrics)) {}
  SimResponse Handle(Exchange& x, const Next& next) override;

 private:
  Handler admin_, metrics_;
};

// Polar-Version echoed; CacheControlMiddleware and the sandbox header, which
// sit inside the rate limiter, so a 429 carries neither.
class ResponseHeadersStage : public Middleware {
 public:
  explicit ResponseHeadersStage(bool sandbox) : sandbox_(sandbox) {}
  SimResponse Handle(Exchange& x, const Next& next) override;

 private:
  bool sandbox_;
};

// MaxBodySizeMiddleware: 411 without Content-Length, 413 over 10 MiB.
class BodyLimitsStage : public Middleware {
 public:
  SimResponse Handle(Exchange& x, const Next& next) override;
};

// PathRewriteMiddleware (/api/v1 -> /v1, with a deprecation header) and the
// hidden /v1/checkouts/custom/ alias.
class PathRewriteStage : public Middleware {
 public:
  SimResponse Handle(Exchange& x, const Next& next) override;
};

// Finds the route (the answer for a path without one comes later, after the
// faults, as Starlette routes inside the middleware stack).
class RoutingStage : public Middleware {
 public:
  RoutingStage(const Router* router, const std::vector<Route>* routes,
               int unknown_route)
      : router_(router), routes_(routes), unknown_route_(unknown_route) {}
  SimResponse Handle(Exchange& x, const Next& next) override;

 private:
  const Router* router_;
  const std::vector<Route>* routes_;
  int unknown_route_;
};

// Injected faults: an error answered without running anything inside, a cut
// body, added latency, a stall.
class FaultsStage : public Middleware {
 public:
  FaultsStage(Faults* faults, const Clock& clock)
      : faults_(faults), clock_(clock) {}
  SimResponse Handle(Exchange& x, const Next& next) override;

 private:
  Faults* faults_;
  const Clock& clock_;
};

// The router's own answers: 405 with Allow, 307 redirect_slashes, 404.
class NotFoundStage : public Middleware {
 public:
  explicit NotFoundStage(const Router* router) : router_(router) {}
  SimResponse Handle(Exchange& x, const Next& next) override;

 private:
  const Router* router_;
};

// RateLimitMiddleware: runs before authentication and reads the identity
// that AuthStage caches (IdentityCache), as Polar's _authenticate does: a
// bearer token's cached organization, else "token:<hash>" in pending_auth;
// no token, the client IP. Counts 429s in total (polar_sim_rate_limited_total)
// and by zone and cause, and the identity blocks it starts.
class RateLimitStage : public Middleware {
 public:
  RateLimitStage(RateLimiter* limiter, IdentityCache* identities,
                 prometheus::Registry& registry, const Clock& clock);
  SimResponse Handle(Exchange& x, const Next& next) override;

 private:
  struct ZoneCounters {
    prometheus::Counter* window;   // a spent window
    prometheus::Counter* blocked;  // the identity's block
    prometheus::Counter* blocks;   // blocks started
  };
  RateLimiter* limiter_;
  IdentityCache* identities_;
  prometheus::Counter* limited_;
  std::unordered_map<std::string, ZoneCounters> zones_;
  const Clock& clock_;
};

// AuthSubjectMiddleware and the route's auth dependency: 401 for an unknown
// token (even on anonymous routes), 401 when a token is required and missing,
// 403 for a missing scope. A good token refreshes its rate-limit identity
// (`identities` is null when rate limiting is off: nothing reads it then).
class AuthStage : public Middleware {
 public:
  AuthStage(const Auth* auth, IdentityCache* identities)
      : auth_(auth), identities_(identities) {}
  SimResponse Handle(Exchange& x, const Next& next) override;

 private:
  const Auth* auth_;
  IdentityCache* identities_;
};

}  // namespace polar::sim
