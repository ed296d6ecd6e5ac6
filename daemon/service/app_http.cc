// App's HTTP side: the routes of the metrics listener. /metrics for
// Prometheus; the status page (/, /status.css, /status.js, /chart.js,
// /charts.js) and its JSON (GET /api/status, GET /api/history for the
// charts), read-only and open like /metrics; the control API under
// /api/scenarios/ (daemon/status/control_api.h), token-protected. Same class
// and thread rules as app.h: handlers run on the loop and return at once.
#include <fmt/chrono.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "daemon/service/app.h"
#include "daemon/status/status_html.h"
#include "daemon/status/status_page.h"
#include "exporters/web_assets.h"

namespace polar {
namespace {

// The page loads only its own script and style, talks only to this origin,
// and may not be framed: the status JSON carries response snippets from the
// target, and nothing in them may ever run.
constexpr const char* kPageSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

HttpServerResponse Asset(std::string_view body, const char* type) {
  HttpServerResponse r;
  r.content_type = type;
  r.body = std::string(body);
  r.headers.emplace_back("Content-Security-Policy", kPageSecurityPolicy);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

HttpServerResponse JsonError(int status, const std::string& message) {
  HttpServerResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = nlohmann::json{{"error", message}}.dump() + "\n";
  return r;
}

}  // namespace

ScenarioRunner* App::FindRunner(std::string_view name) {
  if (stopping_) return nullptr;
  for (auto& runner : runners_) {
    if (runner->name() == name) return runner.get();
  }
  return nullptr;
}

void App::LogControlSurface() {
  const ListenAddress& at = metrics_server_->address();
  SPDLOG_INFO("status page on http://{}/; control API {}", at.ToString(),
              control_->enabled()
                  ? "enabled (" + config_->control.token_source + ")"
                  : "disabled (no [control] token)");
  if (control_->enabled() && !at.IsLoopback()) {
    SPDLOG_WARN(
        "the control token travels in clear text to {}, which is not a "
        "loopback address; put a TLS proxy in front of it",
        at.ToString());
  }
}

std::string App::RenderStatus() {
  StatusDaemonInfo info;
  info.config_path = config_->path;
  info.started = started_;
  info.started_wall = started_wall_;
  info.last_reload = last_reload_result_;
  info.last_reload_at = last_reload_at_;
  info.problems = last_reload_problems_;
  info.in_flight = InFlight();
  info.control_enabled = control_->enabled();
  info.stopping = stopping_;
  std::vector<StatusScenario> scenarios;
  for (std::size_t i = 0; i < runners_.size(); ++i) {
    StatusScenario s;
    s.runner = runners_[i].get();
    s.max_in_flight =
        i < config_->scenarios.size()
            ? static_cast<std::size_t>(config_->scenarios[i].max_in_flight)
            : 0;
    scenarios.push_back(s);
  }
  return status_board_->RenderJson(info, scenarios);
}

std::optional<HttpServerResponse> App::HandleHttpHead(
    const HttpServerRequest& request) {
  if (ControlApi::Handles(request.path)) return control_->Preflight(request);
  return std::nullopt;
}

HttpServerResponse App::HandleHttp(const HttpServerRequest& request) {
  const bool read = request.method == "GET" || request.method == "HEAD";
  const std::string& path = request.path;
  if (ControlApi::Handles(path)) return control_->Handle(request);
  if (path == "/api/status") {
    if (!read) return JsonError(405, "GET /api/status");
    HttpServerResponse r;
    r.content_type = "application/json";
    r.body = RenderStatus();
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  }
  if (path == "/api/history") {
    if (!read) return JsonError(405, "GET /api/history");
    std::vector<std::string> names;
    for (const auto& runner : runners_) names.push_back(runner->name());
    HttpServerResponse r;
    r.content_type = "application/json";
    r.body = status_board_->charts().LiveJson(names) + "\n";
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  }
  if (path.rfind("/api/", 0) == 0) {
    return JsonError(404,
                     "no such route; GET /api/status, GET /api/history, or "
                     "the control API under /api/scenarios/{name}/");
  }
  if (read) {
    if (path == "/metrics") {
      HttpServerResponse r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = SerializeMetrics(*registry_);
      return r;
    }
    if (path == "/" || path == "/index.html") {
      // The numbers are in the page itself, for browsers without
      // JavaScript (daemon/status/status_html.h).
      return Asset(
          RenderStatusPage(
              StatusPageHtml(), RenderStatus(),
              fmt::format("{:%H:%M:%S} UTC",
                          std::chrono::time_point_cast<std::chrono::seconds>(
                              clock_.WallNow()))),
          "text/html; charset=utf-8");
    }
    if (path == "/status.css")
      return Asset(StatusPageCss(), "text/css; charset=utf-8");
    if (path == "/status.js")
      return Asset(StatusPageJs(), "text/javascript; charset=utf-8");
    if (path == "/chart.js")
      return Asset(ChartJsLibrary(), "text/javascript; charset=utf-8");
    if (path == "/charts.js")
      return Asset(ChartsScript(), "text/javascript; charset=utf-8");
  }
  HttpServerResponse r;
  r.status = 404;
  r.body =
      "not found; metrics are at /metrics, the status page at /, its data at "
      "/api/status\n";
  return r;
}

}  // namespace polar
