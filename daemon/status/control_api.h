// ControlApi: the operator's JSON API under /api/scenarios/ on the metrics
// listener: pause and resume a scenario, override its rate (for a while, or
// until the next reload), clear an override, fire a bounded burst.
//
//   POST   /api/scenarios/{name}/pause
//   POST   /api/scenarios/{name}/resume
//   PUT    /api/scenarios/{name}/rate    {"rate": "5/s", "for": "10m"}
//   DELETE /api/scenarios/{name}/rate
//   POST   /api/scenarios/{name}/burst   {"count": 100}
//
// Owned by App; loop thread only (its handler runs inside HttpServer, which
// runs inside the EventLoop), so it calls the ScenarioRunners directly.
// Every route needs "Authorization: Bearer <control token>": without a
// configured token every route answers 403, a missing or wrong one 401; the
// token is compared in constant time and never logged. Browsers cannot send
// that header cross-origin without a CORS preflight, which this server never
// grants, so a web page elsewhere cannot drive the API. Every request to a
// known route is logged (action, scenario, client address, result) and
// counted in polar_loadd_control_actions_total{action,result}.
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/net/http_server.h"
#include "daemon/schedule/scheduler.h"
#include "exporters/clock.h"
#include "exporters/metrics.h"

namespace polar {

// True if `presented` equals `expected`, in time that depends only on the
// length of `expected` (the secret's length is not a secret worth hiding; its
// bytes are).
bool TokenMatches(std::string_view presented, std::string_view expected);

// A runner's control state as JSON: paused, override (rate, seconds left or
// null for "until the next reload"), target and scheduled rate, burst still
// starting, Retry-After pause left. Shared by the API's answers and
// GET /api/status.
nlohmann::json RunnerControlState(const ScenarioRunner& runner, MonoTime now);

class ControlApi {
 public:
  // Finds the running scenario of that name, or null.
  using FindRunner = std::function<ScenarioRunner*(std::string_view name)>;

  ControlApi(const Clock& clock, Metrics& metrics, FindRunner find);

  // The bearer token ("" disables every route). Set at start and on reload.
  void SetToken(std::string token) { token_ = std::move(token); }
  bool enabled() const { return !token_.empty(); }

  // True for paths this API answers (everything under /api/scenarios/).
  static bool Handles(std::string_view path);
  // On the request's head, before its body is read (HttpHeadHandler): the
  // route, method and token checks of Handle(), answered and counted the
  // same way; nullopt when the body is worth reading. So a request without
  // the token is refused without reading the 2 MB it declares.
  std::optional<HttpServerResponse> Preflight(const HttpServerRequest& request);
  HttpServerResponse Handle(const HttpServerRequest& request);

  // Longest override ("for"): a week. Longer is a config change, not an
  // override.
  static constexpr Duration kMaxOverride = std::chrono::hours(24 * 7);

 private:
  // Route, method and token: a refusal (counted), or nullopt with the
  // scenario name and action label filled in.
  std::optional<HttpServerResponse> Admit(const HttpServerRequest& request,
                                          std::string* scenario,
                                          std::string_view* action);
  // Counts and logs a finished request (action label, result label).
  HttpServerResponse Finish(std::string_view action, std::string_view res,
                            HttpServerResponse response,
                            const HttpServerRequest& request,
                            std::string_view scenario,
                            const std::string& detail);

  const Clock& clock_;
  Metrics& metrics_;
  FindRunner find_;
  std::string token_;
};

}  // namespace polar
