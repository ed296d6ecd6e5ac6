#include "sim/middleware/stages.h"

#include <strings.h>

#include <algorithm>

#include "sim/http/response.h"

namespace polar::sim {
namespace {

// Statuses counted per route; anything else is "other".
constexpr int kStatuses[] = {200, 201, 204, 307, 400, 401, 403, 404, 405, 409,
                             410, 411, 413, 422, 429, 500, 502, 503, 504};
constexpr int kStatusCount = static_cast<int>(std::size(kStatuses)) + 1;

int StatusIndex(int status) {
  for (int i = 0; i < kStatusCount - 1; ++i)
    if (kStatuses[i] == status) return i;
  return kStatusCount - 1;
}

bool HasHeader(const SimResponse& r, const char* name) {
  return std::any_of(r.headers.begin(), r.headers.end(), [&](const auto& h) {
    return strcasecmp(h.first.c_str(), name) == 0;
  });
}

}  // namespace

RequestCounter::RequestCounter(prometheus::Registry& registry,
                               std::vector<std::string> route_names)
    : route_names_(std::move(route_names)),
      family_(&prometheus::BuildCounter()
                   .Name("polar_sim_http_requests_total")
                   .Help("API requests answered, by Polar operation id and "
                         "status.")
                   .Register(registry)),
      children_(new std::atomic<prometheus::Counter*>[route_names_.size() *
                                                      kStatusCount]) {
  for (std::size_t i = 0; i < route_names_.size() * kStatusCount; ++i)
    children_[i] = nullptr;
}

void RequestCounter::Count(int route_id, int status) {
  const int s = StatusIndex(status);
  std::atomic<prometheus::Counter*>& slot =
      children_[static_cast<std::size_t>(route_id) * kStatusCount +
                static_cast<std::size_t>(s)];
  prometheus::Counter* child = slot.load(std::memory_order_acquire);
  if (!child) {
    std::lock_guard lock(mutex_);
    child = slot.load(std::memory_order_relaxed);
    if (!child) {
      child = &family_->Add(
          {{"route", route_names_[static_cast<std::size_t>(route_id)]},
           {"status", s < kStatusCount - 1 ? std::to_string(kStatuses[s])
                                           : std::string("other")}});
      slot.store(child, std::memory_order_release);
    }
  }
  child->Increment();
}

SimResponse CountStage::Handle(Exchange& x, const Next& next) {
  x.route_id = counter_->unknown_route();
  SimResponse r = next(x);
  if (!x.counted) return r;
  OnFinal(r, [counter = counter_, route = x.route_id](SimResponse& out) {
    counter->Count(route, out.status);
  });
  return r;
}

SimResponse VersionStage::Handle(Exchange& x, const Next& next) {
  const std::string* version = x.original.Header("polar-version");
  if (version && *version != "2026-04" && *version != "2026-10")
    return NotFound();
  return next(x);
}

SimResponse OwnRoutesStage::Handle(Exchange& x, const Next& next) {
  const std::string& path = x.original.path;
  if (path.rfind("/_sim/", 0) == 0) {
    x.counted = false;
    return admin_(x.original);
  }
  if (path == "/metrics" && x.original.method == "GET") {
    x.counted = false;
    return metrics_(x.original);
  }
  return next(x);
}

SimResponse ResponseHeadersStage::Handle(Exchange& x, const Next& next) {
  const std::string* version = x.original.Header("polar-version");
  SimResponse r = next(x);
  OnFinal(r, [sandbox = sandbox_,
              version = version ? *version
                                : std::string("2026-04")](SimResponse& out) {
    out.headers.emplace_back("Polar-Version", version);
    if (out.status == 429) return;
    if (!HasHeader(out, "cache-control"))
      out.headers.emplace_back("Cache-Control", "private, no-store");
    if (sandbox) out.headers.emplace_back("X-Polar-Sandbox", "1");
  });
  return r;
}

SimResponse BodyLimitsStage::Handle(Exchange& x, const Next& next) {
  const std::string& method = x.original.method;
  const bool has_body_method =
      method == "POST" || method == "PUT" || method == "PATCH";
  if (has_body_method && !x.original.has_content_length)
    return JsonError(411, "LengthRequired",
                     "A Content-Length header is required.");
  if (x.original.body_too_large)
    return JsonError(413, "RequestBodyTooLarge", "Request body is too large.");
  return next(x);
}

SimResponse PathRewriteStage::Handle(Exchange& x, const Next& next) {
  const std::string& path = x.original.path;
  const bool legacy = path.rfind("/api/v1/", 0) == 0;
  if (legacy) {
    x.rewritten = x.original;
    x.rewritten.path = path.substr(4);
    x.request = &x.rewritten;
  }
  // The hidden alias /v1/checkouts/custom/... serves the same routes.
  if (x.request->path.rfind("/v1/checkouts/custom/", 0) == 0) {
    std::string rest = x.request->path.substr(21);
    if (!legacy) x.rewritten = x.original;
    x.rewritten.path = "/v1/checkouts/" + rest;
    x.request = &x.rewritten;
  }
  SimResponse r = next(x);
  if (legacy) {
    OnFinal(r, [](SimResponse& out) {
      out.headers.emplace_back("X-Polar-Deprecation-Notice",
                               "The /api/v1 prefix is deprecated; use /v1.");
    });
  }
  return r;
}

SimResponse RoutingStage::Handle(Exchange& x, const Next& next) {
  Router::Match m = router_->Find(x.request->method, x.request->path);
  if (m.id >= 0) {
    x.route = &(*routes_)[static_cast<std::size_t>(m.id)];
    x.route_id = m.id;
    x.params = std::move(m.params);
  } else {
    x.route_id = unknown_route_;
    x.path_known = m.path_known;
    x.allow = std::move(m.allow);
  }
  return next(x);
}

SimResponse FaultsStage::Handle(Exchange& x, const Next& next) {
  static const std::string kUnknown = "unknown";
  Faults::Decision d = faults_->Decide(x.route ? x.route->name : kUnknown);
  if (d.error) return PlainError(d.error_status);
  SimResponse r = next(x);
  // A cut body is the immediate one only: a deferred answer (confirm's) has
  // none yet.
  if (d.malformed && r.status >= 200 && r.status < 300 &&
      r.content_type == "application/json" && r.body.size() > 1) {
    r.body.resize(r.body.size() / 2);
    faults_->CountMalformed();
  }
  const SteadyTime now = clock_.Now();
  if (d.latency > Duration::zero() || d.stall_until > now) {
    const SteadyTime base = std::max(r.hold_until, now);
    r.hold_until = std::max(base + d.latency, d.stall_until);
  }
  return r;
}

SimResponse NotFoundStage::Handle(Exchange& x, const Next& next) {
  if (x.route) return next(x);
  if (x.path_known) {
    SimResponse r = MethodNotAllowed();
    r.headers.emplace_back("Allow", x.allow);
    return r;
  }
  // Starlette's redirect_slashes: the same path with or without the trailing
  // slash.
  if (auto other = router_->SlashRedirect(x.request->method, x.request->path)) {
    SimResponse r;
    r.status = 307;
    r.body.clear();
    r.headers.emplace_back("Location", *other);
    return r;
  }
  return NotFound();
}

RateLimitStage::RateLimitStage(RateLimiter* limiter, IdentityCache* identities,
                               prometheus::Registry& registry,
                               const Clock& clock)
    : limiter_(limiter),
      identities_(identities),
      limited_(&prometheus::BuildCounter()
                    .Name("polar_sim_rate_limited_total")
                    .Help("Requests answered 429.")
                    .Register(registry)
                    .Add({})),
      clock_(clock) {
  auto& by_zone = prometheus::BuildCounter()
                      .Name("polar_sim_rate_limited_by_zone_total")
                      .Help(
                          "Requests answered 429, by the zone that decided "
                          "and why: window (a spent window) or blocked (the "
                          "identity's block, which covers every zone).")
                      .Register(registry);
  auto& blocks = prometheus::BuildCounter()
                     .Name("polar_sim_rate_limit_blocks_total")
                     .Help(
                         "Identity blocks started (a refused request in a "
                         "zone with a block time, such as checkout-confirm).")
                     .Register(registry);
  for (const std::string& zone : limiter_->zone_names()) {
    zones_[zone] =
        ZoneCounters{&by_zone.Add({{"zone", zone}, {"reason", "window"}}),
                     &by_zone.Add({{"zone", zone}, {"reason", "blocked"}}),
                     &blocks.Add({{"zone", zone}})};
  }
}

SimResponse RateLimitStage::Handle(Exchange& x, const Next& next) {
  RateLimitIdentity who;
  if (auto bearer = Auth::BearerToken(*x.request)) {
    if (auto cached = identities_->Find(*bearer)) {
      who = std::move(*cached);
    } else {
      who.user =
          "token:" + std::to_string(std::hash<std::string_view>{}(*bearer));
      who.group = RateLimitGroup::kPendingAuth;
    }
  } else {
    who.user =
        x.request->client_ip.empty() ? "anonymous" : x.request->client_ip;
  }
  const RateLimiter::Decision d =
      limiter_->Decide(x.request->path, who, clock_.Now());
  if (!d.limited) return next(x);
  limited_->Increment();
  if (auto it = zones_.find(d.zone); it != zones_.end()) {
    (d.blocked ? it->second.blocked : it->second.window)->Increment();
    if (d.block_started) it->second.blocks->Increment();
  }
  // asgi-ratelimit's default on_blocked: 429, retry-after, an empty body.
  SimResponse r;
  r.status = 429;
  r.body.clear();
  r.headers.emplace_back("Retry-After", std::to_string(d.retry_after));
  return r;
}

SimResponse AuthStage::Handle(Exchange& x, const Next& next) {
  x.auth = auth_->Authenticate(*x.request, &x.token);
  if (x.auth == Auth::Result::kInvalid) {
    // AuthSubjectMiddleware clears a refused token's cached identity.
    if (identities_)
      if (auto bearer = Auth::BearerToken(*x.request))
        identities_->Forget(*bearer);
    return Auth::InvalidToken();
  }
  // An organization's tokens share its bucket, in the organization's group
  // (default).
  if (x.auth == Auth::Result::kOk && identities_)
    identities_->Remember(
        x.token->value,
        {"organization:" + x.token->organization_id, RateLimitGroup::kDefault});
  if (x.route->needs_token) {
    if (x.auth != Auth::Result::kOk) return Auth::Unauthorized();
    if (!Auth::HasAnyScope(*x.token, x.route->scopes))
      return Auth::InsufficientScope(x.route->scopes);
  }
  return next(x);
}

}  // namespace polar::sim
