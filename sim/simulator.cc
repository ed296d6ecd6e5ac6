#include "sim/simulator.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "sim/token.h"
#include "sim/validation.h"

namespace polar::sim {
namespace {

enum RouteId {
  kHealth,
  kCheckoutsList,
  kCheckoutsCreate,
  kCheckoutsGet,
  kCheckoutsUpdate,
  kClientGet,
  kClientUpdate,
  kClientConfirm,
  kClientStream,
  kEventsIngest,
  kEventsList,
  kWebhooksList,
  kWebhooksCreate,
  kWebhooksGet,
  kWebhooksUpdate,
  kWebhooksDelete,
  kWebhooksResetSecret,
  kWebhooksDeliveries,
  kUnknown,
  kRouteCount
};

// Polar's OpenAPI operation ids: the names faults and metrics use.
constexpr const char* kRouteNames[kRouteCount] = {
    "health",
    "checkouts:list",
    "checkouts:create",
    "checkouts:get",
    "checkouts:update",
    "checkouts:client_get",
    "checkouts:client_update",
    "checkouts:client_confirm",
    "checkouts:client_stream",
    "events:ingest",
    "events:list",
    "webhooks:list_webhook_endpoints",
    "webhooks:create_webhook_endpoint",
    "webhooks:get_webhook_endpoint",
    "webhooks:update_webhook_endpoint",
    "webhooks:delete_webhook_endpoint",
    "webhooks:reset_webhook_endpoint_secret",
    "webhooks:list_webhook_deliveries",
    "unknown"};

// Statuses counted per route; anything else is "other".
constexpr int kStatuses[] = {200, 201, 204, 307, 400, 401, 403, 404, 405, 409,
                             410, 411, 413, 422, 429, 500, 502, 503, 504};
constexpr int kStatusCount = static_cast<int>(std::size(kStatuses)) + 1;

int StatusIndex(int status) {
  for (int i = 0; i < kStatusCount - 1; ++i)
    if (kStatuses[i] == status) return i;
  return kStatusCount - 1;
}

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 429:
      return "Too Many Requests";
    default:
      return "Error";
  }
}

SimResponse PlainError(int status) {
  SimResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = ReasonPhrase(status);
  return r;
}

SimResponse JsonResponse(int status, const json& body) {
  SimResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

SimResponse AdminError(const std::string& message) {
  return JsonResponse(422, {{"error", "InvalidFault"}, {"detail", message}});
}

}  // namespace

struct Simulator::Route {
  int id;
  const char* method;
  const char* pattern;
  bool needs_token;
  std::vector<std::string> scopes;  // any of these
};

namespace {

const std::vector<Simulator::Route>& Routes() {
  static const std::vector<Simulator::Route> routes = {
      {kHealth, "GET", "/healthz", false, {}},
      {kCheckoutsList,
       "GET",
       "/v1/checkouts/",
       true,
       {"checkouts:read", "checkouts:write"}},
      {kCheckoutsCreate, "POST", "/v1/checkouts/", true, {"checkouts:write"}},
      {kClientGet, "GET", "/v1/checkouts/client/{}", false, {}},
      {kClientUpdate, "PATCH", "/v1/checkouts/client/{}", false, {}},
      {kClientConfirm, "POST", "/v1/checkouts/client/{}/confirm", false, {}},
      {kClientStream, "GET", "/v1/checkouts/client/{}/stream", false, {}},
      {kCheckoutsGet,
       "GET",
       "/v1/checkouts/{}",
       true,
       {"checkouts:read", "checkouts:write"}},
      {kCheckoutsUpdate,
       "PATCH",
       "/v1/checkouts/{}",
       true,
       {"checkouts:write"}},
      {kEventsIngest, "POST", "/v1/events/ingest", true, {"events:write"}},
      {kEventsList,
       "GET",
       "/v1/events/",
       true,
       {"events:read", "events:write"}},
      {kWebhooksList,
       "GET",
       "/v1/webhooks/endpoints",
       true,
       {"webhooks:read", "webhooks:write"}},
      {kWebhooksCreate,
       "POST",
       "/v1/webhooks/endpoints",
       true,
       {"webhooks:write"}},
      {kWebhooksGet,
       "GET",
       "/v1/webhooks/endpoints/{}",
       true,
       {"webhooks:read", "webhooks:write"}},
      {kWebhooksUpdate,
       "PATCH",
       "/v1/webhooks/endpoints/{}",
       true,
       {"webhooks:write"}},
      {kWebhooksDelete,
       "DELETE",
       "/v1/webhooks/endpoints/{}",
       true,
       {"webhooks:write"}},
      {kWebhooksResetSecret,
       "PATCH",
       "/v1/webhooks/endpoints/{}/secret",
       true,
       {"webhooks:write"}},
      {kWebhooksDeliveries,
       "GET",
       "/v1/webhooks/deliveries",
       true,
       {"webhooks:read", "webhooks:write"}},
  };
  return routes;
}

// Route patterns split once: routing runs on every request.
const std::vector<std::string_view>& SplitPattern(const char* pattern) {
  static std::mutex mutex;
  static std::map<const char*, std::vector<std::string_view>> cache;
  thread_local std::map<const char*, const std::vector<std::string_view>*>
      local;
  if (auto it = local.find(pattern); it != local.end()) return *it->second;
  std::lock_guard lock(mutex);
  auto& parts = cache[pattern];
  if (parts.empty()) parts = Split(pattern);
  local[pattern] = &parts;
  return parts;
}

bool Match(const char* pattern, const std::vector<std::string_view>& parts,
           std::vector<std::string>* params) {
  const auto& want = SplitPattern(pattern);
  if (want.size() != parts.size()) return false;
  std::vector<std::string> found;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i] == "{}") {
      if (parts[i].empty()) return false;
      found.emplace_back(parts[i]);
    } else if (want[i] != parts[i]) {
      return false;
    }
  }
  *params = std::move(found);
  return true;
}

}  // namespace

Simulator::Simulator(const SimOptions& options)
    : options_(options),
      rate_limiter_(options.rate_limit),
      customers_(options.max_customers),
      requests_(new std::atomic<uint64_t>[kRouteCount * kStatusCount]) {
  for (int i = 0; i < kRouteCount * kStatusCount; ++i) requests_[i] = 0;
  const uint64_t seed = options.seed;
  const SysMicros start = NowMicros();
  org_.id = MakeUuid(Derive(seed, 1), Derive(seed, 2));
  org_.created_at = start;
  seeded_.organization_id = org_.id;
  seeded_.token = MakeToken("polar_oat_", Derive(seed, 3));
  seeded_.read_token = MakeToken("polar_oat_", Derive(seed, 4));
  auth_.Add({seeded_.token,
             {"checkouts:read", "checkouts:write", "events:read",
              "events:write", "webhooks:read", "webhooks:write",
              "customers:read", "customers:write", "products:read"},
             org_.id});
  auth_.Add({seeded_.read_token,
             {"checkouts:read", "events:read", "webhooks:read"},
             org_.id});

  auto product = [&](uint64_t salt, std::string name, int64_t amount) {
    auto p = std::make_unique<Product>();
    p->id = MakeUuid(Derive(seed, salt), Derive(seed, salt + 1));
    p->price_id = MakeUuid(Derive(seed, salt + 2), Derive(seed, salt + 3));
    p->name = std::move(name);
    p->price_amount = amount;
    p->organization_id = org_.id;
    p->created_at = start;
    products_.push_back(std::move(p));
    return products_.back().get();
  };
  const Product* free = product(10, "Load test (free)", 0);
  // $10.00: a paid product goes through the simulated Stripe path.
  const Product* paid = product(20, "Load test (paid)", 1000);
  seeded_.free_product_id = free->id;
  seeded_.free_price_id = free->price_id;
  seeded_.paid_product_id = paid->id;
  seeded_.paid_price_id = paid->price_id;

  for (int i = 0; i < options.customers; ++i) {
    Customer c;
    auto salt = static_cast<uint64_t>(100 + 2 * i);
    c.id = MakeUuid(Derive(seed, salt), Derive(seed, salt + 1));
    c.external_id = "loadtest-customer-" + std::to_string(i);
    // The Locust setup script uses @polar.sh: a domain that passes Polar's
    // deliverability check.
    c.email = "loadtest-customer-" + std::to_string(i) + "@polar.sh";
    c.organization_id = org_.id;
    c.created_at = start;
    seeded_.customer_external_ids.push_back(*c.external_id);
    seeded_.customer_ids.push_back(c.id);
    customers_.AddSeeded(std::move(c));
  }

  worker_ = std::make_unique<Worker>(options.worker);
  webhooks_ =
      std::make_unique<WebhookService>(options.webhooks, org_, worker_.get());
  events_ = std::make_unique<EventsApi>(options.events, org_, &customers_,
                                        worker_.get());
  std::vector<const Product*> offered;
  for (const auto& p : products_) offered.push_back(p.get());
  checkouts_ = std::make_unique<CheckoutsApi>(options.checkouts, org_, offered,
                                              &customers_, worker_.get(),
                                              webhooks_.get(), &timer_);
  for (const auto& [route, f] : options.faults.routes)
    faults_.SetRoute(route, f);
  for (const auto& [queue, f] : options.faults.worker)
    faults_.SetWorker(queue, f);
  ApplyWorkerFaults();
  Routes();
}

Simulator::~Simulator() { Shutdown(); }

void Simulator::Shutdown() {
  // Callbacks on these threads use everything below: stop them first.
  timer_.Stop();
  worker_->Stop();
  server_ = nullptr;
}

void Simulator::Start(SimServer* server) {
  server_ = server;
  checkouts_->StartSweeper();
  if (options_.stall) faults_.Stall(*options_.stall);
  if (options_.outage)
    StartOutage(options_.outage->first, options_.outage->second,
                Duration::zero());
}

void Simulator::ApplyWorkerFaults() {
  auto set = faults_.snapshot();
  for (const auto& [queue, _] : options_.worker.concurrency)
    worker_->SetSlowdown(queue, 1.0, Duration::zero());
  worker_->SetSlowdown("*", 1.0, Duration::zero());
  for (const auto& [queue, f] : set->worker)
    worker_->SetSlowdown(queue, f.factor, f.add);
}

void Simulator::StartOutage(SimServer::Outage mode, Duration length,
                            Duration delay) {
  uint64_t generation = ++outage_generation_;
  outage_mode_ = static_cast<int>(mode);
  auto until = SteadyClock::now() + delay + length;
  outage_until_ns_ =
      length > Duration::zero()
          ? std::chrono::duration_cast<Duration>(until.time_since_epoch())
                .count()
          : 0;
  timer_.After(delay, [this, mode, generation] {
    if (outage_generation_ != generation) return;
    if (SimServer* s = server_.load()) {
      std::string error;
      if (!s->SetOutage(mode, &error))
        std::fprintf(stderr, "polar-sim: outage: %s\n", error.c_str());
    }
  });
  if (mode == SimServer::Outage::kNone || length <= Duration::zero()) return;
  timer_.After(delay + length, [this, generation] {
    if (outage_generation_ != generation) return;
    outage_mode_ = 0;
    outage_until_ns_ = 0;
    if (SimServer* s = server_.load()) {
      std::string error;
      // Re-listening can fail if another process took the port meanwhile.
      if (!s->SetOutage(SimServer::Outage::kNone, &error))
        std::fprintf(stderr, "polar-sim: ending outage: %s\n", error.c_str());
    }
  });
}

void Simulator::Count(int route, int status) {
  ++requests_[route * kStatusCount + StatusIndex(status)];
}

SimResponse Simulator::Handle(const SimRequest& in) {
  // An unknown Polar-Version is refused before anything else.
  const std::string* version = in.Header("polar-version");
  if (version && *version != "2026-04" && *version != "2026-10") {
    Count(kUnknown, 404);
    return NotFound();
  }
  if (in.path.rfind("/_sim/", 0) == 0) return Admin(in, false);
  if (in.path == "/metrics" && in.method == "GET") {
    SimResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = Metrics();
    return r;
  }
  const bool has_body_method =
      in.method == "POST" || in.method == "PUT" || in.method == "PATCH";

  auto finish = [&](SimResponse r, int route, const Faults::Decision& d,
                    bool legacy) {
    if (d.malformed && r.status >= 200 && r.status < 300 &&
        r.content_type == "application/json" && r.body.size() > 1) {
      r.body.resize(r.body.size() / 2);
      ++faults_.counts().malformed;
    }
    r.headers.emplace_back("Polar-Version", version ? *version : "2026-04");
    if (r.status != 429) {
      bool has_cache =
          std::any_of(r.headers.begin(), r.headers.end(), [](auto& h) {
            return strcasecmp(h.first.c_str(), "cache-control") == 0;
          });
      if (!has_cache)
        r.headers.emplace_back("Cache-Control", "private, no-store");
      if (rate_limiter_.mode() == RateLimitMode::kSandbox)
        r.headers.emplace_back("X-Polar-Sandbox", "1");
    }
    if (legacy)
      r.headers.emplace_back("X-Polar-Deprecation-Notice",
                             "The /api/v1 prefix is deprecated; use /v1.");
    auto now = SteadyClock::now();
    if (d.latency > Duration::zero() || d.stall_until > now) {
      auto base = std::max(r.hold_until, now);
      r.hold_until = std::max(base + d.latency, d.stall_until);
    }
    if (r.finish) {
      // The status is known only once the deferred work ran.
      r.finish = [this, route, inner = std::move(r.finish),
                  headers = r.headers]() {
        SimResponse out = inner();
        out.headers.insert(out.headers.end(), headers.begin(), headers.end());
        Count(route, out.status);
        return out;
      };
    } else {
      Count(route, r.status);
    }
    return r;
  };

  // MaxBodySizeMiddleware runs before routing.
  if (has_body_method && !in.has_content_length) {
    return finish(JsonError(411, "LengthRequired",
                            "A Content-Length header is required."),
                  kUnknown, {}, false);
  }
  if (in.body_too_large) {
    return finish(
        JsonError(413, "RequestBodyTooLarge", "Request body is too large."),
        kUnknown, {}, false);
  }

  // PathRewriteMiddleware: /api/v1/... -> /v1/...
  SimRequest rewritten;
  const SimRequest* req = &in;
  bool legacy = false;
  if (in.path.rfind("/api/v1/", 0) == 0) {
    rewritten = in;
    rewritten.path = in.path.substr(4);
    req = &rewritten;
    legacy = true;
  }
  // The hidden alias /v1/checkouts/custom/... serves the same routes.
  if (req->path.rfind("/v1/checkouts/custom/", 0) == 0) {
    if (req != &rewritten) rewritten = in;
    rewritten.path = "/v1/checkouts/" + req->path.substr(21);
    req = &rewritten;
  }

  auto parts = Split(req->path);
  const Route* route = nullptr;
  std::vector<std::string> params;
  bool path_known = false;
  std::string allow;
  for (const Route& r : Routes()) {
    std::vector<std::string> p;
    if (!Match(r.pattern, parts, &p)) continue;
    path_known = true;
    if (r.method == req->method) {
      route = &r;
      params = std::move(p);
      break;
    }
  }
  const int route_id = route ? route->id : kUnknown;
  Faults::Decision decision = faults_.Decide(kRouteNames[route_id]);
  if (decision.error) {
    return finish(PlainError(decision.error_status), route_id, decision,
                  legacy);
  }
  if (!route) {
    if (path_known) {
      for (const Route& r : Routes()) {
        std::vector<std::string> p;
        if (Match(r.pattern, parts, &p))
          allow += (allow.empty() ? "" : ", ") + std::string(r.method);
      }
      SimResponse r = MethodNotAllowed();
      r.headers.emplace_back("Allow", allow);
      return finish(r, kUnknown, decision, legacy);
    }
    // Starlette's redirect_slashes: the same path with or without the
    // trailing slash.
    std::string other = req->path.size() > 1 && req->path.back() == '/'
                            ? req->path.substr(0, req->path.size() - 1)
                            : req->path + "/";
    auto other_parts = Split(other);
    for (const Route& r : Routes()) {
      std::vector<std::string> p;
      if (r.method == req->method && Match(r.pattern, other_parts, &p)) {
        SimResponse redirect;
        redirect.status = 307;
        redirect.body.clear();
        redirect.headers.emplace_back("Location", other);
        return finish(redirect, kUnknown, decision, legacy);
      }
    }
    return finish(NotFound(), kUnknown, decision, legacy);
  }

  // Rate limiting runs before authentication; its identity comes from a cache
  // that authentication fills.
  const AccessToken* token = nullptr;
  Auth::Result auth = auth_.Authenticate(*req, &token);
  if (rate_limiter_.mode() != RateLimitMode::kOff) {
    auto now = SteadyClock::now();
    std::string identity = "ip:" + req->client_ip;
    RateLimitGroup group = RateLimitGroup::kDefault;
    if (auto bearer = Auth::BearerToken(*req)) {
      std::lock_guard lock(identity_mutex_);
      auto it = identity_.find(std::string(*bearer));
      if (it != identity_.end() &&
          now - it->second < std::chrono::seconds(300) && token) {
        identity = "organization:" + token->organization_id;
      } else {
        identity =
            "token:" + std::to_string(std::hash<std::string_view>{}(*bearer));
        group = RateLimitGroup::kPendingAuth;
      }
    }
    if (auto retry = rate_limiter_.Check(req->path, identity, group, now)) {
      ++rate_limited_;
      SimResponse r;
      r.status = 429;
      r.body.clear();
      r.headers.emplace_back("Retry-After", std::to_string(*retry));
      return finish(r, route_id, decision, legacy);
    }
  }
  if (auth == Auth::Result::kInvalid)
    return finish(Auth::InvalidToken(), route_id, decision, legacy);
  if (auth == Auth::Result::kOk &&
      rate_limiter_.mode() != RateLimitMode::kOff) {
    std::lock_guard lock(identity_mutex_);
    if (identity_.size() > 10'000) identity_.clear();
    identity_[token->value] = SteadyClock::now();
  }
  if (route->needs_token) {
    if (auth != Auth::Result::kOk)
      return finish(Auth::Unauthorized(), route_id, decision, legacy);
    if (!Auth::HasAnyScope(*token, route->scopes)) {
      std::vector<std::string> needed = route->scopes;
      return finish(Auth::InsufficientScope(needed), route_id, decision,
                    legacy);
    }
  }
  return finish(Dispatch(*req, *route, params, token), route_id, decision,
                legacy);
}

SimResponse Simulator::Dispatch(const SimRequest& req, const Route& route,
                                const std::vector<std::string>& params,
                                const AccessToken*) {
  switch (route.id) {
    case kHealth:
      return JsonResponse(200, {{"status", "ok"}});
    case kCheckoutsList:
      return checkouts_->List(req);
    case kCheckoutsCreate:
      return checkouts_->Create(req);
    case kCheckoutsGet:
      return checkouts_->Get(params[0]);
    case kCheckoutsUpdate:
      return checkouts_->Update(req, params[0]);
    case kClientGet:
      return checkouts_->ClientGet(params[0]);
    case kClientUpdate:
      return checkouts_->ClientUpdate(req, params[0]);
    case kClientConfirm:
      return checkouts_->ClientConfirm(req, params[0]);
    case kClientStream:
      return checkouts_->ClientStream(params[0]);
    case kEventsIngest:
      return events_->Ingest(req);
    case kEventsList:
      return events_->List(req);
    case kWebhooksList:
      return webhooks_->ListEndpoints(req);
    case kWebhooksCreate:
      return webhooks_->CreateEndpoint(req);
    case kWebhooksGet:
      return webhooks_->GetEndpoint(params[0]);
    case kWebhooksUpdate:
      return webhooks_->UpdateEndpoint(req, params[0]);
    case kWebhooksDelete:
      return webhooks_->DeleteEndpoint(params[0]);
    case kWebhooksResetSecret:
      return webhooks_->ResetSecret(params[0]);
    case kWebhooksDeliveries:
      return webhooks_->ListDeliveries(req);
    default:
      return NotFound();
  }
}

SimResponse Simulator::HandleAdmin(const SimRequest& in) {
  if (in.path.rfind("/_sim/", 0) == 0) return Admin(in, true);
  if (in.path == "/metrics" && in.method == "GET") {
    SimResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = Metrics();
    return r;
  }
  if (in.path == "/healthz") return JsonResponse(200, {{"status", "ok"}});
  return NotFound();
}

SimResponse Simulator::Admin(const SimRequest& in, bool on_admin_listener) {
  const std::string& path = in.path;
  json body = json::object();
  if (!in.body.empty()) {
    body = json::parse(in.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
      return AdminError("the body must be a JSON object");
  }
  auto known_route = [](const std::string& r) {
    if (r == "*") return true;
    for (const char* n : kRouteNames)
      if (r == n) return true;
    return false;
  };
  auto faults_json = [&] {
    auto set = faults_.snapshot();
    json routes = json::object(), worker = json::object();
    for (const auto& [r, f] : set->routes) routes[r] = ToJson(f);
    for (const auto& [q, f] : set->worker) worker[q] = ToJson(f);
    json out = {{"routes", routes},
                {"worker", worker},
                {"stall_remaining", FormatDuration(faults_.stall_remaining())}};
    int mode = outage_mode_.load();
    json outage = {{"mode", ToString(static_cast<SimServer::Outage>(mode))}};
    if (int64_t until = outage_until_ns_.load()) {
      auto left = SteadyClock::time_point(Duration(until)) - SteadyClock::now();
      outage["remaining"] = FormatDuration(std::max(left, Duration::zero()));
    }
    out["outage"] = outage;
    return out;
  };
  auto parse_for = [&](const json& b, Duration* out,
                       bool required) -> std::string {
    auto it = b.find("for");
    if (it == b.end()) {
      if (required)
        return "\"for\" is required here: give a duration, or use "
               "--admin-listen to end it yourself";
      *out = Duration::zero();
      return "";
    }
    if (!it->is_string() || !ParseDuration(it->get<std::string>(), out))
      return "\"for\" must be a duration such as \"5s\"";
    return "";
  };
  auto start_outage = [&](const json& b) -> std::optional<SimResponse> {
    std::string mode_text = b.value("mode", "");
    std::pair<SimServer::Outage, Duration> parsed;
    SimServer::Outage mode;
    if (mode_text == "none") {
      mode = SimServer::Outage::kNone;
    } else if (ParseOutage(mode_text + ":0", &parsed)) {
      mode = parsed.first;
    } else {
      return AdminError("\"mode\" must be refuse, reset or none");
    }
    Duration length;
    std::string err = parse_for(
        b, &length, !on_admin_listener && mode != SimServer::Outage::kNone);
    if (!err.empty()) return AdminError(err);
    if (!server_.load()) return AdminError("no HTTP server attached");
    // On the API listener, let this response leave before the port closes.
    Duration delay =
        on_admin_listener ? Duration::zero() : std::chrono::milliseconds(100);
    StartOutage(mode, length, delay);
    return std::nullopt;
  };

  if (path == "/_sim/faults") {
    if (in.method == "GET") return JsonResponse(200, faults_json());
    if (in.method == "DELETE") {
      faults_.Clear();
      ApplyWorkerFaults();
      if (outage_mode_.load() != 0)
        StartOutage(SimServer::Outage::kNone, Duration::zero(),
                    Duration::zero());
      return JsonResponse(200, faults_json());
    }
    if (in.method == "PUT") {
      // Validate everything first, then replace the whole set.
      std::string errors;
      FaultSet next;
      for (const char* key : {"routes", "worker"}) {
        auto it = body.find(key);
        if (it == body.end()) continue;
        if (!it->is_object()) {
          errors += std::string(key) + ": must be an object; ";
          continue;
        }
        for (const auto& [name, value] : it->items()) {
          std::string err;
          if (std::string(key) == "routes") {
            if (!known_route(name)) {
              errors += "routes." + name + ": unknown route; ";
              continue;
            }
            RouteFaults f;
            if (ParseRouteFaults(value, &f, &err)) next.routes[name] = f;
          } else {
            WorkerFault f;
            if (ParseWorkerFault(value, &f, &err)) next.worker[name] = f;
          }
          if (!err.empty())
            errors += std::string(key) + "." + name + ": " + err + "; ";
        }
      }
      for (const auto& [k, v] : body.items()) {
        if (k != "routes" && k != "worker" && k != "stall" && k != "outage")
          errors += k + ": unknown key (routes, worker, stall, outage); ";
      }
      Duration stall{0};
      if (auto it = body.find("stall"); it != body.end()) {
        if (!it->is_string() || !ParseDuration(it->get<std::string>(), &stall))
          errors += "stall: must be a duration; ";
      }
      if (!errors.empty())
        return AdminError(errors.substr(0, errors.size() - 2));
      faults_.Clear();
      for (const auto& [r, f] : next.routes) faults_.SetRoute(r, f);
      for (const auto& [q, f] : next.worker) faults_.SetWorker(q, f);
      ApplyWorkerFaults();
      if (stall > Duration::zero()) faults_.Stall(stall);
      if (auto it = body.find("outage"); it != body.end()) {
        if (!it->is_object()) return AdminError("outage: must be an object");
        if (auto err = start_outage(*it)) return *err;
      }
      return JsonResponse(200, faults_json());
    }
    return MethodNotAllowed();
  }
  const std::string routes_prefix = "/_sim/faults/routes/";
  const std::string worker_prefix = "/_sim/faults/worker/";
  if (path.rfind(routes_prefix, 0) == 0) {
    std::string name = path.substr(routes_prefix.size());
    if (!known_route(name)) {
      std::string names;
      for (const char* n : kRouteNames) names += std::string(n) + ", ";
      return AdminError("unknown route \"" + name + "\"; known: " + names +
                        "*");
    }
    if (in.method == "DELETE") {
      faults_.ClearRoute(name);
      return JsonResponse(200, faults_json());
    }
    if (in.method != "PUT") return MethodNotAllowed();
    RouteFaults f;
    std::string err;
    if (!ParseRouteFaults(body, &f, &err)) return AdminError(err);
    faults_.SetRoute(name, f);
    return JsonResponse(200, faults_json());
  }
  if (path.rfind(worker_prefix, 0) == 0) {
    std::string queue = path.substr(worker_prefix.size());
    if (queue != "*" && !options_.worker.concurrency.count(queue))
      return AdminError("unknown queue \"" + queue + "\"");
    if (in.method == "DELETE") {
      faults_.ClearWorker(queue);
    } else if (in.method == "PUT") {
      WorkerFault f;
      std::string err;
      if (!ParseWorkerFault(body, &f, &err)) return AdminError(err);
      faults_.SetWorker(queue, f);
    } else {
      return MethodNotAllowed();
    }
    ApplyWorkerFaults();
    return JsonResponse(200, faults_json());
  }
  if (path == "/_sim/faults/stall") {
    if (in.method == "DELETE") {
      faults_.EndStall();
      return JsonResponse(200, faults_json());
    }
    if (in.method != "POST") return MethodNotAllowed();
    Duration d;
    std::string err = parse_for(body, &d, true);
    if (!err.empty()) return AdminError(err);
    faults_.Stall(d);
    return JsonResponse(200, faults_json());
  }
  if (path == "/_sim/faults/outage") {
    if (in.method == "DELETE") {
      StartOutage(SimServer::Outage::kNone, Duration::zero(), Duration::zero());
      return JsonResponse(200, faults_json());
    }
    if (in.method != "POST") return MethodNotAllowed();
    if (auto err = start_outage(body)) return *err;
    return JsonResponse(200, faults_json());
  }
  if (path == "/_sim/state" && in.method == "GET") {
    json queues = json::object();
    for (const auto& [name, _] : options_.worker.concurrency)
      queues[name] = worker_->ready(name);
    return JsonResponse(200, {{"checkouts", checkouts_->size()},
                              {"events_stored", events_->store().size()},
                              {"customers", customers_.size()},
                              {"queues_ready", queues},
                              {"timers_pending", timer_.pending()}});
  }
  return NotFound();
}

std::string Simulator::Metrics() const {
  std::string out;
  out +=
      "# HELP polar_sim_http_requests_total API requests answered, by Polar "
      "operation id and status.\n"
      "# TYPE polar_sim_http_requests_total counter\n";
  for (int r = 0; r < kRouteCount; ++r) {
    for (int s = 0; s < kStatusCount; ++s) {
      uint64_t n = requests_[r * kStatusCount + s].load();
      if (n == 0) continue;
      out += fmt::format(
          "polar_sim_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n",
          kRouteNames[r],
          s < kStatusCount - 1 ? std::to_string(kStatuses[s]) : "other", n);
    }
  }
  out +=
      "# HELP polar_sim_rate_limited_total Requests answered 429.\n"
      "# TYPE polar_sim_rate_limited_total counter\n";
  out += fmt::format("polar_sim_rate_limited_total {}\n", rate_limited_.load());
  const auto& c = faults_.counts();
  out +=
      "# HELP polar_sim_faults_injected_total Responses changed by an injected "
      "fault, by kind.\n"
      "# TYPE polar_sim_faults_injected_total counter\n";
  out += fmt::format("polar_sim_faults_injected_total{{kind=\"latency\"}} {}\n",
                     c.latency.load());
  out += fmt::format("polar_sim_faults_injected_total{{kind=\"error\"}} {}\n",
                     c.errors.load());
  out +=
      fmt::format("polar_sim_faults_injected_total{{kind=\"malformed\"}} {}\n",
                  c.malformed.load());
  out += fmt::format("polar_sim_faults_injected_total{{kind=\"stall\"}} {}\n",
                     c.stalled.load());
  out +=
      "# HELP polar_sim_events_stored Events held for GET /v1/events/.\n"
      "# TYPE polar_sim_events_stored gauge\n";
  out += fmt::format("polar_sim_events_stored {}\n", events_->store().size());
  out +=
      "# HELP polar_sim_events_ingested_total Events answered by POST "
      "/v1/events/ingest, by result: inserted, or duplicate (an external_id "
      "seen before).\n"
      "# TYPE polar_sim_events_ingested_total counter\n";
  out += fmt::format(
      "polar_sim_events_ingested_total{{result=\"inserted\"}} {}\n"
      "polar_sim_events_ingested_total{{result=\"duplicate\"}} {}\n",
      events_->inserted_total(), events_->duplicates_total());
  out +=
      "# HELP polar_sim_customers Customers held in memory.\n"
      "# TYPE polar_sim_customers gauge\n";
  out += fmt::format("polar_sim_customers {}\n", customers_.size());
  checkouts_->AppendMetrics(&out);
  webhooks_->AppendMetrics(&out);
  worker_->AppendMetrics(&out);
  return out;
}

}  // namespace polar::sim
