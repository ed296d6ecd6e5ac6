#include "daemon/status/control_api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "daemon/schedule/units.h"
#include "exporters/log.h"

namespace polar {
namespace {

using nlohmann::json;

constexpr std::string_view kPrefix = "/api/scenarios/";

// Label values of polar_loadd_control_actions_total: each must be in the
// catalogue's fixed sets (exporters/metrics.h), which exports every pair at 0
// from the start.
namespace result {
constexpr std::string_view kOk = "ok";
constexpr std::string_view kNoToken = "no_token_configured";
constexpr std::string_view kUnauthorized = "unauthorized";
constexpr std::string_view kInvalid = "invalid";
constexpr std::string_view kUnknownScenario = "unknown_scenario";
constexpr std::string_view kConflict = "conflict";
static_assert(IsControlResult(kOk) && IsControlResult(kNoToken) &&
              IsControlResult(kUnauthorized) && IsControlResult(kInvalid) &&
              IsControlResult(kUnknownScenario) && IsControlResult(kConflict));
}  // namespace result
namespace action {
constexpr std::string_view kPause = "pause";
constexpr std::string_view kResume = "resume";
constexpr std::string_view kRate = "rate";
constexpr std::string_view kClearRate = "clear_rate";
constexpr std::string_view kBurst = "burst";
static_assert(IsControlAction(kPause) && IsControlAction(kResume) &&
              IsControlAction(kRate) && IsControlAction(kClearRate) &&
              IsControlAction(kBurst));
}  // namespace action

// What may appear in a log line from the URL: a scenario name is [a-z0-9_-];
// anything else is shown cut and blanked, never as raw client bytes.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f || c == '"') ? '?' : c;
  }
  if (s.size() > 64) out += "...";
  return out;
}

HttpServerResponse Json(int status, const json& body) {
  HttpServerResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpServerResponse Error(int status, std::string message) {
  return Json(status, json{{"error", std::move(message)}});
}

std::optional<std::string> BearerToken(const HttpServerRequest& request) {
  const std::string& h = request.Header("authorization");
  constexpr std::string_view kScheme = "bearer ";
  if (h.size() < kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(h[i])) != kScheme[i])
      return std::nullopt;
  }
  std::string token = h.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.erase(0, 1);
  while (!token.empty() && token.back() == ' ') token.pop_back();
  return token;
}

struct Route {
  std::string scenario;
  std::string verb;  // pause, resume, rate, burst
};

std::optional<Route> ParseRoute(std::string_view path) {
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  path.remove_prefix(kPrefix.size());
  const auto slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  Route r{std::string(path.substr(0, slash)),
          std::string(path.substr(slash + 1))};
  if (r.verb != "pause" && r.verb != "resume" && r.verb != "rate" &&
      r.verb != "burst")
    return std::nullopt;
  return r;
}

// The method each verb takes, and the action label it counts as.
std::optional<std::string_view> ActionFor(const Route& route,
                                          const std::string& method,
                                          std::string* allowed) {
  if (route.verb == "rate") {
    *allowed = "PUT, DELETE";
    if (method == "PUT") return action::kRate;
    if (method == "DELETE") return action::kClearRate;
    return std::nullopt;
  }
  *allowed = "POST";
  if (method != "POST") return std::nullopt;
  if (route.verb == "pause") return action::kPause;
  if (route.verb == "resume") return action::kResume;
  return action::kBurst;
}

std::optional<json> ParseBody(const HttpServerRequest& request,
                              std::string* why) {
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    *why = "the body must be a JSON object";
    return std::nullopt;
  }
  return body;
}

}  // namespace

bool TokenMatches(std::string_view presented, std::string_view expected) {
  // Every byte of `expected` is visited whatever `presented` holds; the
  // length difference joins the same accumulator instead of returning early.
  unsigned diff = presented.size() == expected.size() ? 0u : 1u;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const unsigned char p =
        i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    diff |= p ^ static_cast<unsigned char>(expected[i]);
  }
  // An empty expected token never matches: "no token" means "disabled".
  return diff == 0 && !expected.empty();
}

json RunnerControlState(const ScenarioRunner& runner, MonoTime now) {
  json state;
  state["paused"] = runner.paused();
  if (const auto& o = runner.rate_override()) {
    json ov{{"rate", o->rate}};
    if (o->until == MonoTime::max()) {
      ov["remaining_seconds"] = nullptr;  // until the next reload
    } else {
      ov["remaining_seconds"] = std::max(0.0, ToSeconds(o->until - now));
    }
    state["override"] = std::move(ov);
  } else {
    state["override"] = nullptr;
  }
  state["scheduled_rate"] = runner.ScheduledRate(now);
  state["burst_pending"] = runner.burst_pending();
  const MonoTime gate = runner.paused_until();
  state["retry_after_remaining_seconds"] =
      gate > now ? ToSeconds(gate - now) : 0.0;
  return state;
}

ControlApi::ControlApi(const Clock& clock, Metrics& metrics, FindRunner find)
    : clock_(clock), metrics_(metrics), find_(std::move(find)) {}

bool ControlApi::Handles(std::string_view path) {
  return path.substr(0, kPrefix.size()) == kPrefix;
}

HttpServerResponse ControlApi::Finish(std::string_view action,
                                      std::string_view res,
                                      HttpServerResponse response,
                                      const HttpServerRequest& request,
                                      std::string_view scenario,
                                      const std::string& detail) {
  const std::string who =
      request.remote.empty() ? std::string("?") : request.remote;
  const std::string name = Printable(scenario);
  metrics_.ControlAction(action, res).Increment();
  if (res == result::kOk) {
    SPDLOG_INFO("control: {} {} from {}: {}", action, name, who, detail);
  } else if (res == result::kUnauthorized || res == result::kNoToken) {
    // A client hammering without the token must not flood the journal.
    uint64_t suppressed = 0;
    if (AllowErrorLog(fmt::format("control/{}", res), clock_.Now(),
                      &suppressed)) {
      SPDLOG_WARN("control: {} {} from {} refused: {}{}", action, name, who,
                  detail, SuppressedSuffix(suppressed));
    }
  } else {
    SPDLOG_WARN("control: {} {} from {} refused: {}", action, name, who,
                detail);
  }
  return response;
}

std::optional<HttpServerResponse> ControlApi::Admit(
    const HttpServerRequest& request, std::string* scenario,
    std::string_view* action_out) {
  std::optional<Route> route = ParseRoute(request.path);
  if (!route) {
    return Error(
        404,
        "no such route; see POST /api/scenarios/{name}/pause, "
        "/resume, /burst and PUT or DELETE /api/scenarios/{name}/rate");
  }
  std::string allowed;
  std::optional<std::string_view> action =
      ActionFor(*route, request.method, &allowed);
  if (!action) {
    HttpServerResponse r =
        Error(405, fmt::format("{} takes {}", request.path, allowed));
    r.headers.emplace_back("Allow", allowed);
    return r;
  }
  if (token_.empty()) {
    return Finish(*action, result::kNoToken,
                  Error(403,
                        "the control API is disabled: no control token is "
                        "configured ([control] token_file or token)"),
                  request, route->scenario, "no control token configured");
  }
  std::optional<std::string> presented = BearerToken(request);
  if (!presented || !TokenMatches(*presented, token_)) {
    HttpServerResponse r =
        Error(401, presented ? "wrong control token"
                             : "missing Authorization: Bearer <control token>");
    r.headers.emplace_back("WWW-Authenticate",
                           "Bearer realm=\"polar-loadd control\"");
    return Finish(*action, result::kUnauthorized, std::move(r), request,
                  route->scenario,
                  presented ? "wrong token" : "no bearer token");
  }
  *scenario = route->scenario;
  *action_out = *action;
  return std::nullopt;
}

std::optional<HttpServerResponse> ControlApi::Preflight(
    const HttpServerRequest& request) {
  std::string scenario;
  std::string_view action;
  return Admit(request, &scenario, &action);
}

HttpServerResponse ControlApi::Handle(const HttpServerRequest& request) {
  std::string scenario;
  std::string_view action;
  if (std::optional<HttpServerResponse> refused =
          Admit(request, &scenario, &action))
    return *refused;
  const std::string name = Printable(scenario);
  auto finish = [&](std::string_view res, HttpServerResponse response,
                    const std::string& detail) {
    return Finish(action, res, std::move(response), request, scenario, detail);
  };
  ScenarioRunner* runner = find_(scenario);
  if (!runner) {
    return finish(result::kUnknownScenario,
                  Error(404, fmt::format("no scenario named \"{}\"", name)),
                  "no such scenario");
  }

  const MonoTime now = clock_.Now();
  auto answer = [&](bool changed, std::string detail) {
    json body{{"scenario", runner->name()},
              {"action", action},
              {"changed", changed},
              {"state", RunnerControlState(*runner, now)}};
    return finish(result::kOk, Json(200, body), detail);
  };
  auto invalid = [&](const std::string& why) {
    return finish(result::kInvalid, Error(400, why), why);
  };

  if (action == action::kPause) {
    bool changed = runner->Pause();
    return answer(changed, changed ? "paused" : "was already paused");
  }
  if (action == action::kResume) {
    bool changed = runner->Resume();
    return answer(changed, changed ? "resumed" : "was not paused");
  }
  if (action == action::kClearRate) {
    bool changed = runner->ClearOverride();
    return answer(changed, changed ? "rate override cleared; the schedule runs"
                                   : "had no rate override");
  }
  std::string why;
  std::optional<json> body = ParseBody(request, &why);
  if (!body) return invalid(why);

  if (action == action::kRate) {
    for (const auto& [key, value] : body->items()) {
      if (key != "rate" && key != "for")
        return invalid(fmt::format("unknown key \"{}\"; use rate and for",
                                   Printable(key)));
    }
    auto it = body->find("rate");
    if (it == body->end())
      return invalid("\"rate\" is required, e.g. {\"rate\": \"5/s\"}");
    std::optional<double> rate;
    if (it->is_string()) {
      rate = ParseRate(it->get<std::string>(), &why);
      if (!rate) return invalid("rate: " + why);
    } else if (it->is_number()) {
      double r = it->get<double>();
      if (!std::isfinite(r) || r < 0)
        return invalid("rate: must be a number of arrivals per second >= 0");
      rate = r;
    } else {
      return invalid("rate: must be a string such as \"5/s\" or a number");
    }
    // The config's own ceiling (daemon/config/config.cc): 5x the engine's
    // benchmarked maximum.
    if (*rate > 100'000) return invalid("rate: above the maximum of 100000/s");
    MonoTime until = MonoTime::max();
    std::string lasting = "until the next reload";
    if (auto f = body->find("for"); f != body->end() && !f->is_null()) {
      if (!f->is_string())
        return invalid("for: must be a duration such as \"10m\"");
      std::optional<Duration> d = ParseDuration(f->get<std::string>(), &why);
      if (!d) return invalid("for: " + why);
      if (*d < std::chrono::seconds(1) || *d > kMaxOverride)
        return invalid("for: must be between 1s and 7d");
      until = now + *d;
      lasting = "for " + FormatDuration(*d);
    }
    runner->OverrideRate(*rate, until);
    return answer(true,
                  fmt::format("rate overridden to {:g}/s {}", *rate, lasting));
  }

  // burst
  for (const auto& [key, value] : body->items()) {
    if (key != "count")
      return invalid(
          fmt::format("unknown key \"{}\"; use count", Printable(key)));
  }
  auto c = body->find("count");
  if (c == body->end() || !c->is_number_integer())
    return invalid("count: required, an integer, e.g. {\"count\": 100}");
  const int64_t count = c->get<int64_t>();
  if (count < 1 || count > static_cast<int64_t>(ScenarioRunner::kMaxBurst))
    return invalid(fmt::format("count: must be between 1 and {}",
                               ScenarioRunner::kMaxBurst));
  if (!runner->Burst(static_cast<uint64_t>(count))) {
    return finish(
        result::kConflict,
        Error(409,
              fmt::format("{} burst arrivals are still starting; at most "
                          "{} may wait",
                          runner->burst_pending(), ScenarioRunner::kMaxBurst)),
        "a burst is still starting");
  }
  return answer(true, fmt::format("burst of {} arrivals", count));
}

}  // namespace polar
