// [target], [metrics], [control] and [daemon]: where the load goes, where the
// metrics and control API listen, how the process stops and batches its
// wake-ups, where the run's report goes (daemon/config/sections.h).
#include <fmt/format.h>

#include "daemon/config/sections.h"
#include "daemon/net/http_request.h"

namespace polar {
namespace {

// Polar's production API takes real money; sandbox has tight rate limits
// (docs/polar-api.md §5, §9).
bool IsProductionHost(std::string_view url) {
  return url.find("://api.polar.sh") != std::string_view::npos;
}

// metrics.allowed_hosts: the names (besides IP literals and localhost) the
// metrics listener answers as Host, so a DNS-rebinding page cannot read it.
void ParseAllowedHosts(Checker& c, const toml::table& t,
                       std::vector<std::string>& out) {
  const toml::node* node = t.get("allowed_hosts");
  if (!node) return;
  const toml::array* arr = node->as_array();
  constexpr std::size_t kMaxNames = 64;
  if (!arr || arr->size() > kMaxNames) {
    c.Error(node, "metrics.allowed_hosts",
            "must be a list of at most 64 host names, e.g. "
            "[\"loadbox-1.internal\"]");
    return;
  }
  for (const auto& item : *arr) {
    auto name = item.value_exact<std::string>();
    std::optional<std::string> host =
        name ? HostName(*name) : std::optional<std::string>();
    if (!host || name->find(':') != std::string::npos || host->size() > 253) {
      c.Error(&item, "metrics.allowed_hosts",
              "every item must be a host name without a port, e.g. "
              "\"loadbox-1.internal\" (letters, digits, '-', '.', '_')");
      continue;
    }
    out.push_back(*host);
  }
}

}  // namespace

void ParseTarget(Checker& c, const toml::table& root, const EnvLookup& env,
                 TargetConfig& target, std::vector<std::string>& notes) {
  const toml::table* t = SubTable(c, root, "target");
  const std::string p = "target";
  if (t) {
    c.OnlyKeys(*t, p, kTargetKeys);
    if (auto v = c.String(*t, p, "base_url")) target.base_url = *v;
    if (auto v =
            c.DurationValue(*t, p, "timeout", std::chrono::milliseconds(10),
                            std::chrono::minutes(10))) {
      target.timeout = *v;
    }
    if (auto v = c.DurationValue(*t, p, "connect_timeout",
                                 std::chrono::milliseconds(10),
                                 std::chrono::minutes(1))) {
      target.connect_timeout = *v;
    }
    if (auto v = c.Bool(*t, p, "allow_production"))
      target.allow_production = *v;
    if (auto v = c.Bool(*t, p, "allow_over_limit"))
      target.allow_over_limit = *v;
    if (auto v = c.String(*t, p, "ca_file")) target.ca_file = *v;
    if (auto v = c.Int(*t, p, "connections", 1, 65'536))
      target.connections = static_cast<int>(*v);
    if (auto v = c.Int(*t, p, "max_in_flight", 1, 1'000'000)) {
      target.max_in_flight = static_cast<int>(*v);
    }
    if (auto v = c.String(*t, p, "http_client")) {
      if (*v == "auto" || *v == "curl")
        target.http_client = *v;
      else
        c.Error(t->get("http_client"), "target.http_client",
                fmt::format("\"{}\" is not one of \"auto\", \"curl\"", *v));
    }
  }
  if (auto host = env("LOAD_TEST_HOST")) {
    target.base_url = *host;
    notes.push_back("LOAD_TEST_HOST overrides target.base_url");
  }
  const toml::node* url_node = t ? t->get("base_url") : nullptr;
  if (target.base_url.rfind("http://", 0) != 0 &&
      target.base_url.rfind("https://", 0) != 0) {
    c.Error(url_node, "target.base_url",
            fmt::format("\"{}\" must start with http:// or https://",
                        target.base_url));
  }
  while (!target.base_url.empty() && target.base_url.back() == '/')
    target.base_url.pop_back();
  // Polar's docs write the base URL with /v1 ("https://api.polar.sh/v1");
  // polar-loadd's paths carry it already, so it would ask for /v1/v1/... and
  // get 404s.
  if (target.base_url.size() > 3 &&
      target.base_url.compare(target.base_url.size() - 3, 3, "/v1") == 0) {
    target.base_url.resize(target.base_url.size() - 3);
    notes.push_back(fmt::format(
        "target.base_url ends in /v1, as Polar's docs write it; polar-loadd "
        "adds /v1/... to every path itself, so it uses {}",
        target.base_url));
  }
  if (IsProductionHost(target.base_url) && !target.allow_production) {
    c.Error(url_node, "target.base_url",
            "this is Polar's production API; set target.allow_production = "
            "true if you mean it");
  }

  // Token precedence: LOAD_TEST_API_TOKEN, then token, then token_file (the
  // systemd credential).
  if (auto token = env("LOAD_TEST_API_TOKEN"); token && !token->empty()) {
    target.token = *token;
    target.token_source = "LOAD_TEST_API_TOKEN";
    notes.push_back("LOAD_TEST_API_TOKEN overrides target.token");
  } else if (auto file = env("POLAR_LOADD_TOKEN_FILE");
             file && !file->empty()) {
    std::string why;
    if (auto secret = c.Secret(*file, &why)) {
      target.token = *secret;
      target.token_source = fmt::format("POLAR_LOADD_TOKEN_FILE {}", *file);
      notes.push_back(fmt::format(
          "POLAR_LOADD_TOKEN_FILE overrides target.token_file: {}", *file));
    } else {
      c.Error(nullptr, "env POLAR_LOADD_TOKEN_FILE", why);
    }
  } else if (auto v = t ? c.String(*t, p, "token") : std::nullopt) {
    target.token = *v;
    target.token_source = "target.token";
  } else if (auto file = t ? c.String(*t, p, "token_file") : std::nullopt) {
    std::string why;
    if (auto secret = c.Secret(*file, &why)) {
      target.token = *secret;
      target.token_source = fmt::format("token_file {}", *file);
    } else {
      c.Error(t->get("token_file"), "target.token_file", why);
    }
  }
  if (t && t->get("token") && t->get("token_file")) {
    c.Error(t->get("token"), "target.token",
            "set token or token_file, not both");
  }
}

void ParseDaemon(Checker& c, const toml::table& root, DaemonConfig& daemon) {
  const toml::table* t = SubTable(c, root, "daemon");
  if (!t) return;
  c.OnlyKeys(*t, "daemon", kDaemonKeys);
  // Up to 10 min: beyond that an operator wants a restart, not a stop.
  if (auto v = c.DurationValue(*t, "daemon", "shutdown_grace", Duration::zero(),
                               std::chrono::minutes(10))) {
    daemon.shutdown_grace = *v;
  }
  // Up to 10 ms: the schedule lag it adds must stay small against any
  // target's latency (Polar's tightest SLO, GET /v1/checkouts/{id}, is
  // 300 ms at p99).
  if (auto v = c.DurationValue(*t, "daemon", "timer_slack", Duration::zero(),
                               std::chrono::milliseconds(10))) {
    daemon.timer_slack = *v;
  }
  if (auto v = c.String(*t, "daemon", "report")) {
    if (v->empty() || v->size() > 4096) {
      c.Error(t->get("report"), "daemon.report",
              "must be a file path of 1 to 4096 characters");
    } else if (v->back() == '/') {
      c.Error(t->get("report"), "daemon.report",
              fmt::format("\"{}\" is a directory; name the report file, "
                          "e.g. \"{}run-{{start}}.html\"",
                          *v, *v));
    } else {
      daemon.report = *v;
    }
  }
}

void ParseMetrics(Checker& c, const toml::table& root, const EnvLookup& env,
                  MetricsConfig& metrics, std::vector<std::string>& notes) {
  const toml::table* t = SubTable(c, root, "metrics");
  if (t) {
    c.OnlyKeys(*t, "metrics", kMetricsKeys);
    if (auto v = c.String(*t, "metrics", "listen")) {
      std::string why;
      if (auto addr = ParseListenAddress(*v, &why)) {
        metrics.listen = *addr;
      } else {
        c.Error(t->get("listen"), "metrics.listen", why);
      }
    }
    ParseAllowedHosts(c, *t, metrics.allowed_hosts);
  }
  // Several instances on one box share a config file but not a port
  // (polar-loadd@.service); a pod binds its own address.
  if (auto v = env("POLAR_LOADD_METRICS_LISTEN")) {
    std::string why;
    if (auto addr = ParseListenAddress(*v, &why)) {
      metrics.listen = *addr;
      notes.push_back(fmt::format(
          "POLAR_LOADD_METRICS_LISTEN overrides metrics.listen: {}", *v));
    } else {
      c.Error(nullptr, "env POLAR_LOADD_METRICS_LISTEN", why);
    }
  }
}

// A control token shorter than this is refused: the API can change the load
// on a production target, and 16 random characters are out of reach of any
// guessing over HTTP.
constexpr std::size_t kMinControlTokenBytes = 16;

void ParseControl(Checker& c, const toml::table& root, ControlConfig& control) {
  const toml::table* t = SubTable(c, root, "control");
  if (!t) return;
  const std::string p = "control";
  c.OnlyKeys(*t, p, kControlKeys);
  const toml::node* where = nullptr;
  if (auto v = c.String(*t, p, "token")) {
    control.token = *v;
    control.token_source = "control.token";
    where = t->get("token");
  } else if (auto file = c.String(*t, p, "token_file")) {
    std::string why;
    if (auto secret = c.Secret(*file, &why)) {
      control.token = *secret;
      control.token_source = fmt::format("control.token_file {}", *file);
      where = t->get("token_file");
    } else {
      c.Error(t->get("token_file"), "control.token_file", why);
    }
  }
  if (t->get("token") && t->get("token_file")) {
    c.Error(t->get("token"), "control.token",
            "set token or token_file, not both");
  }
  if (where && control.token.size() < kMinControlTokenBytes) {
    c.Error(where,
            control.token_source.substr(0, control.token_source.find(' ')),
            fmt::format("the control token must be at least {} characters "
                        "(e.g. openssl rand -hex 32)",
                        kMinControlTokenBytes));
  }
}

}  // namespace polar
