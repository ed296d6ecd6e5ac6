#include "sim/admin.h"

#include <algorithm>
#include <cstdio>

#include "sim/http/response.h"

namespace polar::sim {
namespace {

SimResponse AdminError(const std::string& message) {
  return Json(422, {{"error", "InvalidFault"}, {"detail", message}});
}

// "for" in a stall or outage body: a duration. Returns an error message.
std::string ParseFor(const json& body, Duration* out, bool required) {
  auto it = body.find("for");
  if (it == body.end()) {
    if (required)
      return "\"for\" is required here: give a duration, or use "
             "--admin-listen to end it yourself";
    *out = Duration::zero();
    return "";
  }
  if (!it->is_string() || !ParseDuration(it->get<std::string>(), out))
    return "\"for\" must be a duration such as \"5s\"";
  return "";
}

}  // namespace

AdminApi::AdminApi(Faults* faults, Worker* worker, TimerThread* timer,
                   std::vector<std::string> routes,
                   std::vector<std::string> queues, std::function<json()> state,
                   std::function<std::string()> confirmation_token)
    : faults_(faults),
      worker_(worker),
      timer_(timer),
      routes_(std::move(routes)),
      queues_(std::move(queues)),
      state_(std::move(state)),
      confirmation_token_(std::move(confirmation_token)) {
  for (const char* method : {"GET", "PUT", "DELETE"})
    router_.Add(kFaults, method, "/_sim/faults");
  for (const char* method : {"PUT", "DELETE"}) {
    router_.Add(kRouteFault, method, "/_sim/faults/routes/{}");
    router_.Add(kWorkerFault, method, "/_sim/faults/worker/{}");
  }
  for (const char* method : {"POST", "DELETE"}) {
    router_.Add(kStall, method, "/_sim/faults/stall");
    router_.Add(kOutage, method, "/_sim/faults/outage");
  }
  router_.Add(kState, "GET", "/_sim/state");
  router_.Add(kConfirmationToken, "POST", "/_sim/stripe/confirmation_tokens");
}

SimResponse AdminApi::Handle(const SimRequest& request,
                             bool on_admin_listener) {
  json body = json::object();
  if (!request.body.empty()) {
    body = json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
      return AdminError("the body must be a JSON object");
  }
  Router::Match m = router_.Find(request.method, request.path);
  if (m.id < 0) return m.path_known ? MethodNotAllowed() : NotFound();
  const Call call{request, m.params, body, on_admin_listener};
  switch (m.id) {
    case kFaults:
      return AllFaults(call);
    case kRouteFault:
      return RouteFault(call);
    case kWorkerFault:
      return WorkerFaultRoute(call);
    case kStall:
      return StallRoute(call);
    case kOutage:
      return OutageRoute(call);
    case kState:
      return Json(200, state_());
    case kConfirmationToken:
      return Json(201, {{"id", confirmation_token_()},
                        {"object", "confirmation_token"}});
  }
  return NotFound();
}

bool AdminApi::KnownRoute(const std::string& name) const {
  return name == "*" ||
         std::find(routes_.begin(), routes_.end(), name) != routes_.end();
}

json AdminApi::Snapshot() const {
  auto set = faults_->snapshot();
  json routes = json::object(), worker = json::object();
  for (const auto& [r, f] : set->routes) routes[r] = ToJson(f);
  for (const auto& [q, f] : set->worker) worker[q] = ToJson(f);
  json out = {{"routes", routes},
              {"worker", worker},
              {"stall_remaining", FormatDuration(faults_->stall_remaining())}};
  json outage = {
      {"mode", ToString(static_cast<SimServer::Outage>(outage_mode_.load()))}};
  if (int64_t until = outage_until_ns_.load()) {
    auto left = SteadyTime(Duration(until)) - timer_->clock().Now();
    outage["remaining"] = FormatDuration(std::max(left, Duration::zero()));
  }
  out["outage"] = outage;
  return out;
}

SimResponse AdminApi::Current() const { return Json(200, Snapshot()); }

void AdminApi::ApplyWorkerFaults() {
  auto set = faults_->snapshot();
  for (const std::string& queue : queues_)
    worker_->SetSlowdown(queue, 1.0, Duration::zero());
  worker_->SetSlowdown("*", 1.0, Duration::zero());
  for (const auto& [queue, f] : set->worker)
    worker_->SetSlowdown(queue, f.factor, f.add);
}

SimResponse AdminApi::AllFaults(const Call& call) {
  const std::string& method = call.request.method;
  if (method == "GET") return Current();
  if (method == "DELETE") {
    faults_->Clear();
    ApplyWorkerFaults();
    if (outage_mode_.load() != 0)
      StartOutage(SimServer::Outage::kNone, Duration::zero(), Duration::zero());
    return Current();
  }
  // PUT: validate everything first, then replace the whole set.
  const json& body = call.body;
  std::string errors;
  FaultSet next;
  for (const std::string key : {"routes", "worker"}) {
    auto it = body.find(key);
    if (it == body.end()) continue;
    if (!it->is_object()) {
      errors += key + ": must be an object; ";
      continue;
    }
    for (const auto& [name, value] : it->items()) {
      std::string err;
      if (key == "routes") {
        if (!KnownRoute(name)) {
          errors += "routes." + name + ": unknown route; ";
          continue;
        }
        RouteFaults f;
        if (ParseRouteFaults(value, &f, &err)) next.routes[name] = f;
      } else {
        WorkerFault f;
        if (ParseWorkerFault(value, &f, &err)) next.worker[name] = f;
      }
      if (!err.empty()) errors += key + "." + name + ": " + err + "; ";
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
  if (!errors.empty()) return AdminError(errors.substr(0, errors.size() - 2));
  faults_->Clear();
  for (const auto& [r, f] : next.routes) faults_->SetRoute(r, f);
  for (const auto& [q, f] : next.worker) faults_->SetWorker(q, f);
  ApplyWorkerFaults();
  if (stall > Duration::zero()) faults_->Stall(stall);
  if (auto it = body.find("outage"); it != body.end()) {
    if (!it->is_object()) return AdminError("outage: must be an object");
    if (auto err = OutageFromBody(*it, call.on_admin_listener)) return *err;
  }
  return Current();
}

SimResponse AdminApi::RouteFault(const Call& call) {
  const std::string& name = call.params[0];
  if (!KnownRoute(name)) {
    std::string names;
    for (const std::string& n : routes_) names += n + ", ";
    return AdminError("unknown route \"" + name + "\"; known: " + names + "*");
  }
  if (call.request.method == "DELETE") {
    faults_->ClearRoute(name);
    return Current();
  }
  RouteFaults f;
  std::string err;
  if (!ParseRouteFaults(call.body, &f, &err)) return AdminError(err);
  faults_->SetRoute(name, f);
  return Current();
}

SimResponse AdminApi::WorkerFaultRoute(const Call& call) {
  const std::string& queue = call.params[0];
  if (queue != "*" &&
      std::find(queues_.begin(), queues_.end(), queue) == queues_.end())
    return AdminError("unknown queue \"" + queue + "\"");
  if (call.request.method == "DELETE") {
    faults_->ClearWorker(queue);
  } else {
    WorkerFault f;
    std::string err;
    if (!ParseWorkerFault(call.body, &f, &err)) return AdminError(err);
    faults_->SetWorker(queue, f);
  }
  ApplyWorkerFaults();
  return Current();
}

SimResponse AdminApi::StallRoute(const Call& call) {
  if (call.request.method == "DELETE") {
    faults_->EndStall();
    return Current();
  }
  Duration d;
  std::string err = ParseFor(call.body, &d, true);
  if (!err.empty()) return AdminError(err);
  faults_->Stall(d);
  return Current();
}

SimResponse AdminApi::OutageRoute(const Call& call) {
  if (call.request.method == "DELETE") {
    StartOutage(SimServer::Outage::kNone, Duration::zero(), Duration::zero());
    return Current();
  }
  if (auto err = OutageFromBody(call.body, call.on_admin_listener)) return *err;
  return Current();
}

std::optional<SimResponse> AdminApi::OutageFromBody(const json& body,
                                                    bool on_admin_listener) {
  std::string mode_text = body.value("mode", "");
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
  std::string err = ParseFor(
      body, &length, !on_admin_listener && mode != SimServer::Outage::kNone);
  if (!err.empty()) return AdminError(err);
  if (!server_.load()) return AdminError("no HTTP server attached");
  // On the API listener, let this response leave before the port closes.
  Duration delay =
      on_admin_listener ? Duration::zero() : std::chrono::milliseconds(100);
  StartOutage(mode, length, delay);
  return std::nullopt;
}

void AdminApi::StartOutage(SimServer::Outage mode, Duration length,
                           Duration delay) {
  uint64_t generation = ++outage_generation_;
  outage_mode_ = static_cast<int>(mode);
  auto until = timer_->clock().Now() + delay + length;
  outage_until_ns_ =
      length > Duration::zero()
          ? std::chrono::duration_cast<Duration>(until.time_since_epoch())
                .count()
          : 0;
  timer_->After(delay, [this, mode, generation] {
    if (outage_generation_ != generation) return;
    if (SimServer* s = server_.load()) {
      std::string error;
      if (!s->SetOutage(mode, &error))
        std::fprintf(stderr, "polar-sim: outage: %s\n", error.c_str());
    }
  });
  if (mode == SimServer::Outage::kNone || length <= Duration::zero()) return;
  timer_->After(delay + length, [this, generation] {
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

}  // namespace polar::sim
