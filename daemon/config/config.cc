#include "daemon/config/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace polar {
namespace {

// Collects errors with their place in the file while the validator walks the
// tree.
class Checker {
 public:
  Checker(std::string file, std::vector<ConfigError>* errors,
          SecretReader read_secret, std::vector<std::string>* notes)
      : file_(std::move(file)),
        errors_(errors),
        read_secret_(std::move(read_secret)),
        notes_(notes) {}

  // Reads a token or secret file through the reader LoadConfig was given (the
  // daemon's, or --check-config's that knows the credential store); a note
  // says where it came from when that is not the path itself.
  std::optional<std::string> Secret(const std::string& path, std::string* why) {
    std::string note;
    auto secret = read_secret_(path, why, &note);
    if (secret && !note.empty()) notes_->push_back(std::move(note));
    return secret;
  }

  void Error(const toml::node* node, std::string key, std::string message) {
    ConfigError e;
    e.file = file_;
    if (node) {
      e.line = static_cast<int>(node->source().begin.line);
      e.column = static_cast<int>(node->source().begin.column);
    }
    e.key = std::move(key);
    e.message = std::move(message);
    errors_->push_back(std::move(e));
  }

  // Every key of `table` must be in `allowed`.
  void OnlyKeys(const toml::table& table, const std::string& prefix,
                std::initializer_list<std::string_view> allowed) {
    OnlyKeys(table, prefix, std::vector<std::string_view>(allowed));
  }
  void OnlyKeys(const toml::table& table, const std::string& prefix,
                const std::vector<std::string_view>& allowed) {
    for (const auto& [k, v] : table) {
      bool ok = false;
      for (auto a : allowed) ok = ok || a == k.str();
      if (!ok) {
        std::string hint;
        for (auto a : allowed)
          hint += fmt::format("{}{}", hint.empty() ? "" : ", ", a);
        Error(&v, Join(prefix, k.str()),
              fmt::format("unknown key; allowed here: {}", hint));
      }
    }
  }

  static std::string Join(const std::string& prefix, std::string_view key) {
    return prefix.empty() ? std::string(key)
                          : fmt::format("{}.{}", prefix, key);
  }

  template <typename T>
  std::optional<T> Get(const toml::table& table, const std::string& prefix,
                       std::string_view key, const char* type_name) {
    const toml::node* node = table.get(key);
    if (!node) return std::nullopt;
    if (auto v = node->value_exact<T>()) return *v;
    Error(node, Join(prefix, key), fmt::format("must be {}", type_name));
    return std::nullopt;
  }

  std::optional<std::string> String(const toml::table& t, const std::string& p,
                                    std::string_view k) {
    return Get<std::string>(t, p, k, "a string");
  }
  std::optional<bool> Bool(const toml::table& t, const std::string& p,
                           std::string_view k) {
    return Get<bool>(t, p, k, "true or false");
  }
  std::optional<int64_t> Int(const toml::table& t, const std::string& p,
                             std::string_view k, int64_t min, int64_t max) {
    auto v = Get<int64_t>(t, p, k, "an integer");
    if (v && (*v < min || *v > max)) {
      Error(t.get(k), Join(p, k),
            fmt::format("{} is out of range [{}, {}]", *v, min, max));
      return std::nullopt;
    }
    return v;
  }
  std::optional<Duration> DurationValue(const toml::table& t,
                                        const std::string& p,
                                        std::string_view k, Duration min,
                                        Duration max) {
    auto s = String(t, p, k);
    if (!s) return std::nullopt;
    std::string why;
    auto d = ParseDuration(*s, &why);
    if (!d) {
      Error(t.get(k), Join(p, k), why);
      return std::nullopt;
    }
    if (*d < min || *d > max) {
      Error(t.get(k), Join(p, k),
            fmt::format("{} is out of range [{}, {}]", *s, FormatDuration(min),
                        FormatDuration(max)));
      return std::nullopt;
    }
    return d;
  }
  std::optional<double> RateValue(const toml::table& t, const std::string& p,
                                  std::string_view k) {
    auto s = String(t, p, k);
    if (!s) return std::nullopt;
    std::string why;
    auto r = ParseRate(*s, &why);
    if (!r) {
      Error(t.get(k), Join(p, k), why);
      return std::nullopt;
    }
    // 100,000/s is 5x the engine's benchmarked ceiling on two cores; more is a
    // typo, not a plan.
    if (*r > 100'000) {
      Error(t.get(k), Join(p, k),
            fmt::format("{} is above the maximum of 100000/s", *s));
      return std::nullopt;
    }
    return r;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<ConfigError>* errors_;
  SecretReader read_secret_;
  std::vector<std::string>* notes_;
};

const toml::table* SubTable(Checker& c, const toml::table& root,
                            std::string_view key) {
  const toml::node* node = root.get(key);
  if (!node) return nullptr;
  if (auto* t = node->as_table()) return t;
  c.Error(node, std::string(key), "must be a table");
  return nullptr;
}

// The shipped config is ~5 KiB.
constexpr std::size_t kMaxConfigFileBytes = 1024 * 1024;

// Polar's production API takes real money; sandbox has tight rate limits
// (docs/polar-api.md §5, §9).
bool IsProductionHost(std::string_view url) {
  return url.find("://api.polar.sh") != std::string_view::npos;
}

void ParseTarget(Checker& c, const toml::table& root, const EnvLookup& env,
                 TargetConfig& target, std::vector<std::string>& notes) {
  const toml::table* t = SubTable(c, root, "target");
  const std::string p = "target";
  if (t) {
    c.OnlyKeys(*t, p,
               {"base_url", "token", "token_file", "timeout", "connect_timeout",
                "allow_production", "ca_file", "connections", "max_in_flight",
                "http_client"});
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
  c.OnlyKeys(*t, "daemon", {"shutdown_grace", "timer_slack"});
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
}

void ParseMetrics(Checker& c, const toml::table& root, const EnvLookup& env,
                  MetricsConfig& metrics, std::vector<std::string>& notes) {
  const toml::table* t = SubTable(c, root, "metrics");
  if (t) {
    c.OnlyKeys(*t, "metrics", {"listen"});
    if (auto v = c.String(*t, "metrics", "listen")) {
      std::string why;
      if (auto addr = ParseListenAddress(*v, &why)) {
        metrics.listen = *addr;
      } else {
        c.Error(t->get("listen"), "metrics.listen", why);
      }
    }
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
  c.OnlyKeys(*t, p, {"token", "token_file"});
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

// The largest cluster: 1,000 instances at the 100,000/s cap each is far past
// any Polar stack; more is a typo.
constexpr int64_t kMaxShards = 1000;

// "7" -> 7; nullopt unless the whole text is decimal digits (at most 9).
std::optional<int64_t> Digits(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  int64_t v = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return std::nullopt;
    v = v * 10 + (ch - '0');
  }
  return v;
}

// "i/N" -> {i, N} without range checks; nullopt when not of that form.
std::optional<std::pair<int64_t, int64_t>> ParseShardText(
    std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto i = Digits(text.substr(0, slash));
  auto n = Digits(text.substr(slash + 1));
  if (!i || !n) return std::nullopt;
  return std::pair{*i, *n};
}

void ParseCluster(Checker& c, const toml::table& root, const EnvLookup& env,
                  ClusterConfig& cluster, std::vector<std::string>& notes) {
  const toml::table* t = SubTable(c, root, "cluster");
  const std::string p = "cluster";
  // Where each part came from, for the messages.
  std::optional<int64_t> index;
  std::optional<int64_t> count;
  const toml::node* index_node = nullptr;
  const toml::node* count_node = nullptr;
  std::string index_key, count_key;
  if (t) {
    c.OnlyKeys(*t, p, {"shard", "shards"});
    if (t->get("shard") && t->get("shards")) {
      c.Error(t->get("shards"), "cluster.shards",
              "set shard = \"i/N\" or shards = N (the index then comes from "
              "POLAR_LOADD_SHARD), not both");
    }
    if (auto v = c.String(*t, p, "shard")) {
      if (auto parsed = ParseShardText(*v)) {
        index = parsed->first;
        count = parsed->second;
        index_node = count_node = t->get("shard");
        index_key = count_key = "cluster.shard";
      } else {
        c.Error(t->get("shard"), "cluster.shard",
                fmt::format("\"{}\" is not index/count like \"0/3\" (the "
                            "first of three instances)",
                            *v));
      }
    }
    if (auto v = c.Int(*t, p, "shards", 1, kMaxShards)) {
      count = *v;
      count_node = t->get("shards");
      count_key = "cluster.shards";
    }
  }
  bool env_error = false;
  if (auto v = env("POLAR_LOADD_SHARDS")) {
    auto n = Digits(*v);
    if (!n || *n < 1 || *n > kMaxShards) {
      c.Error(nullptr, "env POLAR_LOADD_SHARDS",
              fmt::format("\"{}\" is not a shard count in [1, {}]", *v,
                          kMaxShards));
      env_error = true;
    } else {
      count = *n;
      count_node = nullptr;
      count_key = "env POLAR_LOADD_SHARDS";
      notes.push_back(
          fmt::format("POLAR_LOADD_SHARDS overrides the shard count: {}", *n));
    }
  }
  if (auto v = env("POLAR_LOADD_SHARD")) {
    const std::string key = "env POLAR_LOADD_SHARD";
    std::optional<int64_t> i;
    if (auto parsed = ParseShardText(*v)) {
      if (count_key == "env POLAR_LOADD_SHARDS" && *count != parsed->second) {
        c.Error(nullptr, key,
                fmt::format("\"{}\" says {} shards but POLAR_LOADD_SHARDS "
                            "says {}",
                            *v, parsed->second, *count));
        env_error = true;
      }
      i = parsed->first;
      count = parsed->second;
      count_node = nullptr;
      count_key = key;
    } else {
      // A bare ordinal ("2"), or a StatefulSet pod name whose ordinal is
      // after the last '-' ("polar-loadd-2", the pod's hostname).
      const auto dash = v->rfind('-');
      i = Digits(dash == std::string::npos
                     ? std::string_view(*v)
                     : std::string_view(*v).substr(dash + 1));
      if (!i) {
        c.Error(nullptr, key,
                fmt::format("\"{}\" is not a shard: use \"i/N\", an "
                            "ordinal \"i\" (with [cluster] shards or "
                            "POLAR_LOADD_SHARDS), or a StatefulSet pod name "
                            "ending in -i",
                            *v));
        env_error = true;
      } else if (!count) {
        c.Error(nullptr, key,
                fmt::format("\"{}\" gives the index only; set the count with "
                            "[cluster] shards = N or POLAR_LOADD_SHARDS",
                            *v));
        env_error = true;
        i.reset();
      }
    }
    if (i) {
      index = i;
      index_node = nullptr;
      index_key = key;
      notes.push_back(
          fmt::format("POLAR_LOADD_SHARD overrides the shard: {}", *v));
    }
  }
  if (env_error) return;
  if (count && !index) {
    // shards = N without an index: a mistake in a cluster, where every
    // instance would run shard 0.
    if (*count > 1) {
      c.Error(count_node, count_key,
              fmt::format("{} shards but no index: set POLAR_LOADD_SHARD "
                          "(the instance's ordinal) or [cluster] shard = "
                          "\"i/{}\"",
                          *count, *count));
    }
    return;
  }
  if (!index) return;
  if (*count < 1 || *count > kMaxShards) {
    c.Error(count_node, count_key,
            fmt::format("the shard count {} is out of range [1, {}]", *count,
                        kMaxShards));
    return;
  }
  if (*index >= *count) {
    c.Error(index_node, index_key,
            fmt::format("shard index {} is not below the count {} (indexes "
                        "run from 0 to {})",
                        *index, *count, *count - 1));
    return;
  }
  cluster.shard.index = static_cast<uint32_t>(*index);
  cluster.shard.count = static_cast<uint32_t>(*count);
}

// register_url's host: Polar refuses localhost and every non-global IP
// literal (docs/polar-api.md §4.1); polar-sim accepts loopback hosts with
// --allow-loopback-webhooks.
enum class HostKind { kPublic, kLoopback, kPrivate };
HostKind ClassifyHost(std::string host) {
  for (char& ch : host)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (host == "localhost" || host.ends_with(".localhost"))
    return HostKind::kLoopback;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    const uint32_t a = ntohl(v4.s_addr);
    if ((a >> 24) == 127) return HostKind::kLoopback;
    if ((a >> 24) == 10 || (a >> 24) == 0 || (a >> 20) == 0xac1 ||
        (a >> 16) == 0xc0a8 || (a >> 16) == 0xa9fe || (a >> 22) == 0x191)
      return HostKind::kPrivate;  // 10/8, 0/8, 172.16/12, 192.168/16,
                                  // 169.254/16, 100.64/10
    return HostKind::kPublic;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return HostKind::kLoopback;
    if (IN6_IS_ADDR_UNSPECIFIED(&v6) || IN6_IS_ADDR_LINKLOCAL(&v6) ||
        (v6.s6_addr[0] & 0xfe) == 0xfc || IN6_IS_ADDR_V4MAPPED(&v6))
      return HostKind::kPrivate;
  }
  return HostKind::kPublic;
}

// "https://host[:port]/path" -> scheme and host (brackets stripped), or false.
bool SplitUrl(std::string_view url, std::string* scheme, std::string* host) {
  auto sep = url.find("://");
  if (sep == std::string_view::npos) return false;
  *scheme = std::string(url.substr(0, sep));
  std::string_view rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string_view::npos)
    rest.remove_prefix(at + 1);
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return false;
    *host = std::string(rest.substr(1, close - 1));
  } else {
    *host = std::string(rest.substr(0, rest.find(':')));
  }
  return !host->empty();
}

// register_url's checks, for the file's key (`node` set) or the environment
// variable that overrides it (`key` "env POLAR_LOADD_WEBHOOKS_REGISTER_URL").
void CheckRegisterUrl(Checker& c, const toml::node* node,
                      const std::string& key, const std::string& url,
                      bool allow_loopback) {
  std::string scheme, host;
  if (!SplitUrl(url, &scheme, &host) ||
      (scheme != "https" && scheme != "http")) {
    c.Error(node, key, fmt::format("\"{}\" is not an https:// URL", url));
    return;
  }
  HostKind kind = ClassifyHost(host);
  bool loopback_ok = kind == HostKind::kLoopback && allow_loopback;
  if (scheme == "http" && !loopback_ok) {
    c.Error(node, key,
            "Polar delivers only to https:// URLs; put TLS termination "
            "(nginx, caddy) in front of webhooks.listen and register its "
            "public https URL (http:// is allowed only for a loopback "
            "polar-sim, with register_allow_loopback = true)");
  } else if (kind == HostKind::kPrivate ||
             (kind == HostKind::kLoopback && !loopback_ok)) {
    c.Error(node, key,
            fmt::format("Polar refuses endpoints on {} hosts; register "
                        "the public URL it can reach{}",
                        kind == HostKind::kLoopback ? "loopback" : "non-global",
                        kind == HostKind::kLoopback
                            ? " (for polar-sim started with "
                              "--allow-loopback-webhooks, set "
                              "register_allow_loopback = true)"
                            : ""));
  }
}

void ParseWebhooks(Checker& c, const toml::table& root, const EnvLookup& env,
                   WebhooksConfig& w, std::vector<std::string>& secrets,
                   std::vector<std::string>& notes) {
  const toml::table* t = SubTable(c, root, "webhooks");
  if (!t) return;
  const std::string p = "webhooks";
  w.enabled = true;
  c.OnlyKeys(*t, p,
             {"listen", "secret", "secret_file", "secret_format", "tolerance",
              "max_body_bytes", "max_header_bytes", "remember_ids", "deadline",
              "max_expectations", "unmatched_after", "register_url",
              "register_allow_loopback"});
  if (auto v = c.String(*t, p, "listen")) {
    std::string why;
    if (auto addr = ParseListenAddress(*v, &why)) {
      w.listen = *addr;
    } else {
      c.Error(t->get("listen"), "webhooks.listen", why);
    }
  }
  if (auto v = c.String(*t, p, "secret_format")) {
    if (*v == "polar") {
      w.secret_format = WebhookSecretFormat::kPolar;
    } else if (*v == "standard") {
      w.secret_format = WebhookSecretFormat::kStandard;
    } else {
      c.Error(t->get("secret_format"), "webhooks.secret_format",
              fmt::format("\"{}\" is not \"polar\" (the whsec_... string as "
                          "Polar shows it) or \"standard\" (a Standard "
                          "Webhooks base64 key)",
                          *v));
    }
  }
  // Standard Webhooks' default is 5 min; more than an hour would let a
  // captured message be replayed long after the replay memory forgot it.
  if (auto v = c.DurationValue(*t, p, "tolerance", std::chrono::seconds(1),
                               std::chrono::hours(1)))
    w.tolerance = *v;
  if (auto v = c.Int(*t, p, "max_body_bytes", 1024, 64 << 20))
    w.max_body_bytes = static_cast<std::size_t>(*v);
  // The HTTP layer's per-connection memory is sized for 64 KiB of headers
  // (daemon/webhooks/webhook_service.cc), so every value here is checked by the
  // receiver.
  if (auto v = c.Int(*t, p, "max_header_bytes", 1024, 64 * 1024))
    w.max_header_bytes = static_cast<std::size_t>(*v);
  if (auto v = c.Int(*t, p, "remember_ids", 1'000, 10'000'000))
    w.remember_ids = static_cast<std::size_t>(*v);
  // Polar gives up retrying after ~34 min; a deadline past a day only delays
  // the loss signal.
  if (auto v = c.DurationValue(*t, p, "deadline", std::chrono::seconds(1),
                               std::chrono::hours(24)))
    w.deadline = *v;
  if (auto v = c.Int(*t, p, "max_expectations", 1, 10'000'000))
    w.max_expectations = static_cast<std::size_t>(*v);
  if (auto v = c.DurationValue(*t, p, "unmatched_after", Duration::zero(),
                               std::chrono::minutes(10)))
    w.unmatched_after = *v;
  if (auto v = c.Bool(*t, p, "register_allow_loopback"))
    w.register_allow_loopback = *v;

  const toml::node* secret_node = t->get("secret");
  const toml::node* file_node = t->get("secret_file");
  if (secret_node && file_node) {
    c.Error(secret_node, "webhooks.secret",
            "set secret or secret_file, not both");
  } else if (auto v = c.String(*t, p, "secret")) {
    w.secret = *v;
  } else if (auto file = c.String(*t, p, "secret_file")) {
    std::string why;
    if (auto secret = c.Secret(*file, &why)) {
      w.secret = *secret;
    } else {
      c.Error(file_node, "webhooks.secret_file", why);
    }
  }
  if (!w.secret.empty()) {
    secrets.push_back(w.secret);
    // A log line could carry the base64 part alone.
    if (w.secret.starts_with("whsec_")) secrets.push_back(w.secret.substr(6));
    std::string why;
    if (auto key = WebhookKeyFromSecret(w.secret, w.secret_format, &why)) {
      w.key = std::move(*key);
    } else {
      c.Error(secret_node ? secret_node : file_node,
              secret_node ? "webhooks.secret" : "webhooks.secret_file",
              "the secret " + why);
    }
  }

  const toml::node* url_node = t->get("register_url");
  if (auto v = c.String(*t, p, "register_url")) {
    w.register_url = *v;
    CheckRegisterUrl(c, url_node, "webhooks.register_url", *v,
                     w.register_allow_loopback);
    if (!w.secret.empty()) {
      c.Error(url_node, "webhooks.register_url",
              "with register_url the endpoint's secret comes from Polar's "
              "answer; remove webhooks.secret / secret_file");
    }
  } else if (w.secret.empty() && !secret_node && !file_node) {
    c.Error(t, "webhooks",
            "no secret: set secret_file (or secret) to the endpoint's "
            "whsec_... secret, or register_url to have polar-loadd create the "
            "endpoint");
  }
  if (w.register_allow_loopback && w.register_url.empty()) {
    c.Error(t->get("register_allow_loopback"),
            "webhooks.register_allow_loopback", "needs register_url");
  }
  // Several instances on one box share the file but each needs its own
  // receiver port and the public URL in front of it (polar-loadd@.service).
  // They override what the file says; without a [webhooks] table they do
  // nothing (the table is what turns the receiver on).
  if (auto v = env("POLAR_LOADD_WEBHOOKS_LISTEN")) {
    std::string why;
    if (auto addr = ParseListenAddress(*v, &why)) {
      w.listen = *addr;
      notes.push_back(fmt::format(
          "POLAR_LOADD_WEBHOOKS_LISTEN overrides webhooks.listen: {}", *v));
    } else {
      c.Error(nullptr, "env POLAR_LOADD_WEBHOOKS_LISTEN", why);
    }
  }
  if (auto v = env("POLAR_LOADD_WEBHOOKS_REGISTER_URL")) {
    if (w.register_url.empty()) {
      c.Error(nullptr, "env POLAR_LOADD_WEBHOOKS_REGISTER_URL",
              "the file's [webhooks] table has no register_url to override "
              "(its endpoint was created by hand, with secret_file)");
    } else {
      w.register_url = *v;
      CheckRegisterUrl(c, nullptr, "env POLAR_LOADD_WEBHOOKS_REGISTER_URL", *v,
                       w.register_allow_loopback);
      notes.push_back(fmt::format(
          "POLAR_LOADD_WEBHOOKS_REGISTER_URL overrides webhooks.register_url: "
          "{}",
          *v));
    }
  }
}

std::optional<int> EnvInt(Checker& c, const EnvLookup& env, const char* name,
                          int min, int max) {
  auto text = env(name);
  if (!text) return std::nullopt;
  int value = 0;
  auto [ptr, ec] =
      std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || ptr != text->data() + text->size() || value < min ||
      value > max) {
    c.Error(
        nullptr, fmt::format("env {}", name),
        fmt::format("\"{}\" is not an integer in [{}, {}]", *text, min, max));
    return std::nullopt;
  }
  return value;
}

std::vector<std::string> SplitCommaList(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ',')) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

void ParseEventIngestion(Checker& c, const toml::table& t, const std::string& p,
                         const EnvLookup& env, EventIngestionOptions& o,
                         std::vector<std::string>& notes) {
  if (auto v = c.Int(t, p, "batch_size", 1, 10'000))
    o.batch_size = static_cast<int>(*v);
  if (const toml::node* node = t.get("external_customer_ids")) {
    const toml::array* arr = node->as_array();
    if (!arr) {
      c.Error(node, p + ".external_customer_ids",
              "must be an array of strings");
    } else {
      for (const auto& item : *arr) {
        if (auto s = item.value_exact<std::string>(); s && !s->empty()) {
          o.external_customer_ids.push_back(*s);
        } else {
          c.Error(&item, p + ".external_customer_ids",
                  "every item must be a non-empty string");
        }
      }
    }
  }
  if (auto v = c.DurationValue(t, p, "timestamp_backdate", Duration::zero(),
                               std::chrono::hours(1))) {
    o.timestamp_backdate = *v;
  }
  if (auto v = EnvInt(c, env, "LOAD_TEST_EVENT_BATCH_SIZE", 1, 10'000)) {
    o.batch_size = *v;
    notes.push_back(
        fmt::format("LOAD_TEST_EVENT_BATCH_SIZE overrides {}.batch_size", p));
  }
  if (auto ids = env("LOAD_TEST_EVENT_EXTERNAL_CUSTOMER_IDS")) {
    o.external_customer_ids = SplitCommaList(*ids);
    notes.push_back(
        fmt::format("LOAD_TEST_EVENT_EXTERNAL_CUSTOMER_IDS overrides "
                    "{}.external_customer_ids",
                    p));
  }
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (ch != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(ch))) {
      return false;
    }
  }
  return true;
}

std::optional<double> Share(Checker& c, const toml::table& t,
                            const std::string& p, std::string_view key) {
  const toml::node* node = t.get(key);
  if (!node) return std::nullopt;
  std::optional<double> v;
  if (auto f = node->value_exact<double>()) v = *f;
  if (auto n = node->value_exact<int64_t>()) v = static_cast<double>(*n);
  if (!v || !(*v >= 0) || *v > 1) {
    c.Error(node, Checker::Join(p, key), "must be a share in [0, 1], e.g. 0.5");
    return std::nullopt;
  }
  return v;
}

void ParseCheckout(Checker& c, const toml::table& t, const std::string& p,
                   const EnvLookup& env, CheckoutOptions& o,
                   std::vector<std::string>& notes) {
  const toml::node* product_node = t.get("product_id");
  if (auto v = c.String(t, p, "product_id")) o.product_id = *v;
  if (auto id = env("LOAD_TEST_PRODUCT_ID"); id && !id->empty()) {
    o.product_id = *id;
    product_node = nullptr;
    notes.push_back(
        fmt::format("LOAD_TEST_PRODUCT_ID overrides {}.product_id", p));
  }
  if (o.product_id.empty()) {
    if (!t.get("product_id"))
      c.Error(&t, p + ".product_id",
              "missing; the id of the product to check out (a free one "
              "completes without payment), or LOAD_TEST_PRODUCT_ID");
  } else if (!IsUuid(o.product_id)) {
    c.Error(product_node,
            product_node ? p + ".product_id" : "env LOAD_TEST_PRODUCT_ID",
            fmt::format("\"{}\" is not a product id (a UUID)", o.product_id));
  }
  if (auto v = c.String(t, p, "create_form")) {
    if (*v == "products") {
      o.create_form = CreateForm::kProducts;
    } else if (*v == "product_id") {
      o.create_form = CreateForm::kProductId;
    } else {
      c.Error(t.get("create_form"), p + ".create_form",
              fmt::format("\"{}\" is not products or product_id", *v));
    }
  }
  const toml::node* email_node = t.get("customer_email");
  if (auto v = c.String(t, p, "customer_email")) o.customer_email = *v;
  if (auto e = env("LOAD_TEST_CUSTOMER_EMAIL"); e && !e->empty()) {
    o.customer_email = *e;
    email_node = nullptr;
    notes.push_back(
        fmt::format("LOAD_TEST_CUSTOMER_EMAIL overrides {}.customer_email", p));
  }
  if (std::string why; !CheckCustomerEmail(o.customer_email, &why)) {
    c.Error(email_node,
            email_node ? p + ".customer_email" : "env LOAD_TEST_CUSTOMER_EMAIL",
            fmt::format("\"{}\" {}", o.customer_email, why));
  }
  if (auto v = c.Int(t, p, "customer_pool", 1, 1'000'000))
    o.customer_pool = static_cast<int>(*v);
  if (const toml::node* node = t.get("billing_address")) {
    const std::string ap = p + ".billing_address";
    if (auto off = node->value_exact<bool>(); off && !*off) {
      o.billing_address.reset();
    } else if (const toml::table* a = node->as_table()) {
      c.OnlyKeys(*a, ap,
                 {"country", "line1", "line2", "postal_code", "city", "state"});
      BillingAddress address;
      auto country = c.String(*a, ap, "country");
      if (!country) {
        if (!a->get("country"))
          c.Error(node, ap + ".country", "missing; e.g. \"SE\"");
      } else if (country->size() != 2 ||
                 !std::isupper(static_cast<unsigned char>((*country)[0])) ||
                 !std::isupper(static_cast<unsigned char>((*country)[1]))) {
        c.Error(a->get("country"), ap + ".country",
                fmt::format("\"{}\" is not an ISO 3166-1 alpha-2 code such as "
                            "\"SE\"",
                            *country));
      } else {
        address.country = *country;
      }
      if (auto v = c.String(*a, ap, "line1")) address.line1 = *v;
      if (auto v = c.String(*a, ap, "line2")) address.line2 = *v;
      if (auto v = c.String(*a, ap, "postal_code")) address.postal_code = *v;
      if (auto v = c.String(*a, ap, "city")) address.city = *v;
      if (auto v = c.String(*a, ap, "state")) address.state = *v;
      if (address.country == "US" &&
          (address.line1.empty() || address.postal_code.empty() ||
           address.city.empty() || address.state.empty())) {
        c.Error(node, ap,
                "a US address needs line1, postal_code, city and state: Polar "
                "requires a full address in the US");
      }
      o.billing_address = address;
    } else {
      c.Error(node, ap,
              "must be a table like { country = \"SE\", city = \"Stockholm\" "
              "}, or false to send none");
    }
  }
  if (const toml::node* node = t.get("funnel")) {
    const std::string fp = p + ".funnel";
    if (const toml::table* f = node->as_table()) {
      c.OnlyKeys(*f, fp, {"update", "status", "confirm"});
      if (auto v = Share(c, *f, fp, "update")) o.update_ratio = *v;
      if (auto v = Share(c, *f, fp, "status")) o.status_ratio = *v;
      if (auto v = Share(c, *f, fp, "confirm")) o.confirm_ratio = *v;
      if (!(o.update_ratio >= o.status_ratio &&
            o.status_ratio >= o.confirm_ratio)) {
        c.Error(node, fp,
                fmt::format("shares of created checkouts reaching each step "
                            "must not grow along the flow (update {:g} >= "
                            "status {:g} >= confirm {:g})",
                            o.update_ratio, o.status_ratio, o.confirm_ratio));
      }
    } else {
      c.Error(node, fp,
              "must be a table like { update = 0.5, status = 0.3, confirm = "
              "0.1 }");
    }
  }
  if (auto v = c.DurationValue(t, p, "think_time", Duration::zero(),
                               std::chrono::minutes(10))) {
    o.think_time = *v;
  }
  if (auto v = c.String(t, p, "completion")) {
    if (*v == "stream") {
      o.completion = CompletionMode::kStream;
    } else if (*v == "poll") {
      o.completion = CompletionMode::kPoll;
    } else {
      c.Error(t.get("completion"), p + ".completion",
              fmt::format("\"{}\" is not stream or poll", *v));
    }
  }
  if (auto v =
          c.DurationValue(t, p, "poll_interval", std::chrono::milliseconds(50),
                          std::chrono::minutes(1))) {
    o.poll_interval = *v;
  }
  if (auto v =
          c.DurationValue(t, p, "completion_deadline", std::chrono::seconds(1),
                          std::chrono::hours(1))) {
    o.completion_deadline = *v;
  }
}

void ParseEventVisibility(Checker& c, const toml::table& t,
                          const std::string& p, EventVisibilityOptions& o) {
  if (auto v = c.String(t, p, "probe_customer_id")) {
    if (v->empty() || v->size() > 256) {
      c.Error(t.get("probe_customer_id"), p + ".probe_customer_id",
              "must be 1-256 characters");
    } else {
      o.probe_customer_id = *v;
    }
  }
  if (auto v = c.String(t, p, "event_name")) {
    // Polar's limit on event names (docs/polar-api.md §3.1).
    if (v->empty() || v->size() > 128) {
      c.Error(t.get("event_name"), p + ".event_name",
              "must be 1-128 characters");
    } else {
      o.event_name = *v;
    }
  }
  if (auto v =
          c.DurationValue(t, p, "poll_interval", std::chrono::milliseconds(50),
                          std::chrono::minutes(1))) {
    o.poll_interval = *v;
  }
  if (auto v = c.DurationValue(t, p, "deadline", std::chrono::seconds(1),
                               std::chrono::hours(1))) {
    o.deadline = *v;
  }
  if (auto v = c.DurationValue(t, p, "timestamp_backdate", Duration::zero(),
                               std::chrono::hours(1))) {
    o.timestamp_backdate = *v;
  }
  if (auto v = c.DurationValue(t, p, "search_margin", Duration::zero(),
                               std::chrono::hours(24))) {
    o.search_margin = *v;
  }
}

// Sandbox allows 100 requests/min per organization (and per client IP for
// the anonymous checkout routes) and 6 confirms/min before a 30-minute block
// (docs/polar-api.md §5). A config that asks for more is valid (a staging copy
// of sandbox may differ) but most likely a mistake: say so at start.
void WarnAboutSandbox(const Config& config,
                      std::vector<std::string>& warnings) {
  if (config.target.base_url.find("://sandbox-api.polar.sh") ==
      std::string::npos) {
    return;
  }
  double per_minute = 0;
  double confirms = 0;
  for (const ScenarioConfig& s : config.scenarios) {
    const double rate = s.schedule.PeakRate() * 60;
    switch (s.type) {
      case ScenarioType::kEventIngestion:
        per_minute += rate;
        break;
      case ScenarioType::kCheckout: {
        const CheckoutOptions& o = s.checkout;
        // At least: create, the funnel's steps, and for each confirm one
        // stream or one poll.
        per_minute +=
            rate * (1 + o.update_ratio + o.status_ratio + 2 * o.confirm_ratio);
        confirms += rate * o.confirm_ratio;
        break;
      }
      case ScenarioType::kEventVisibility:
        per_minute += rate * 2;  // the ingest and at least one poll
        break;
    }
  }
  if (per_minute > 100) {
    warnings.push_back(fmt::format(
        "target.base_url is Polar's sandbox, which allows 100 requests/min per "
        "organization; the scenarios ask for at least {:.0f}/min at their "
        "peak: expect 429s (outcome=\"rate_limited\") and Retry-After pauses",
        per_minute));
  }
  if (confirms > 6) {
    warnings.push_back(fmt::format(
        "target.base_url is Polar's sandbox, which allows 6 checkout confirms/"
        "min and then blocks for 30 minutes; the checkout scenarios confirm "
        "{:.1f}/min at their peak",
        confirms));
  }
}

// "Mon-Fri", "Sat,Sun", "Fri-Mon", "Mon": a bit per day, Monday = bit 0.
std::optional<uint8_t> ParseDays(std::string_view text) {
  static constexpr std::array<std::string_view, 7> kNames = {
      "mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  auto day = [](std::string_view name) -> int {
    if (name.size() != 3) return -1;
    std::string lower;
    for (char ch : name)
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (std::size_t i = 0; i < kNames.size(); ++i)
      if (kNames[i] == lower) return static_cast<int>(i);
    return -1;
  };
  uint8_t mask = 0;
  std::size_t i = 0;
  while (i <= text.size()) {
    std::size_t comma = text.find(',', i);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view part = text.substr(i, comma - i);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    std::size_t dash = part.find('-');
    int a = day(part.substr(0, dash));
    int b = dash == std::string_view::npos ? a : day(part.substr(dash + 1));
    if (a < 0 || b < 0) return std::nullopt;
    for (int d = a;; d = (d + 1) % 7) {  // "Fri-Mon" wraps over the weekend
      mask = static_cast<uint8_t>(mask | (1u << d));
      if (d == b) break;
    }
    i = comma + 1;
  }
  return mask;
}

// "HH:MM" in 00:00..24:00 -> minutes after midnight.
std::optional<int> ParseClock(std::string_view text) {
  if (text.size() != 5 || text[2] != ':') return std::nullopt;
  for (std::size_t i : {0u, 1u, 3u, 4u})
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  int h = (text[0] - '0') * 10 + (text[1] - '0');
  int m = (text[3] - '0') * 10 + (text[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0)) return std::nullopt;
  return h * 60 + m;
}

std::optional<ArrivalKind> ParseArrivalKind(std::string_view text) {
  if (text == "uniform") return ArrivalKind::kUniform;
  if (text == "poisson") return ArrivalKind::kPoisson;
  return std::nullopt;
}

void ParseSchedule(Checker& c, const toml::table& t, const std::string& p,
                   ScheduleSpec& spec) {
  auto kind = c.String(t, p, "type");
  if (!kind) {
    if (!t.get("type"))
      c.Error(&t, p + ".type",
              "missing; use constant, ramp, steps, weekly or daily");
    return;
  }
  auto zone = [&] {
    if (auto name = c.String(t, p, "time_zone")) {
      std::string why;
      if (auto z = TimeZone::Load(*name, &why)) {
        spec.zone = z;
      } else {
        c.Error(t.get("time_zone"), p + ".time_zone", why);
      }
    }
  };
  auto required_rate = [&](std::string_view key, double* out) {
    if (auto r = c.RateValue(t, p, key)) {
      *out = *r;
    } else if (!t.get(key)) {
      c.Error(&t, Checker::Join(p, key), "missing; e.g. \"5/s\"");
    }
  };
  if (*kind == "constant") {
    spec.kind = ScheduleKind::kConstant;
    c.OnlyKeys(t, p, {"type", "rate"});
    required_rate("rate", &spec.rate);
  } else if (*kind == "ramp") {
    spec.kind = ScheduleKind::kRamp;
    c.OnlyKeys(t, p, {"type", "from", "to", "over"});
    required_rate("from", &spec.from);
    required_rate("to", &spec.to);
    if (auto d = c.DurationValue(t, p, "over", std::chrono::seconds(1),
                                 std::chrono::hours(24 * 365))) {
      spec.over = *d;
    } else if (!t.get("over")) {
      c.Error(&t, p + ".over", "missing; e.g. over = \"10m\"");
    }
  } else if (*kind == "steps") {
    spec.kind = ScheduleKind::kSteps;
    c.OnlyKeys(t, p, {"type", "steps", "repeat"});
    if (auto v = c.Bool(t, p, "repeat")) spec.repeat = *v;
    const toml::node* node = t.get("steps");
    const toml::array* arr = node ? node->as_array() : nullptr;
    if (!arr || arr->empty() || arr->size() > 1000) {
      c.Error(node ? node : &t, p + ".steps",
              "must be a list of 1-1000 tables like { rate = \"5/s\", for = "
              "\"1m\" }");
      return;
    }
    for (std::size_t i = 0; i < arr->size(); ++i) {
      std::string ip = fmt::format("{}.steps[{}]", p, i);
      const toml::table* st = (*arr)[i].as_table();
      if (!st) {
        c.Error(&(*arr)[i], ip,
                "must be a table like { rate = \"5/s\", for = \"1m\" }");
        continue;
      }
      c.OnlyKeys(*st, ip, {"rate", "for"});
      auto r = c.RateValue(*st, ip, "rate");
      if (!r && !st->get("rate")) c.Error(st, ip + ".rate", "missing");
      auto d = c.DurationValue(*st, ip, "for", std::chrono::seconds(1),
                               std::chrono::hours(24 * 365));
      if (!d && !st->get("for"))
        c.Error(st, ip + ".for", "missing; e.g. for = \"1m\"");
      if (r && d) spec.steps.push_back(RateStep{*r, *d});
    }
  } else if (*kind == "weekly") {
    spec.kind = ScheduleKind::kWeekly;
    c.OnlyKeys(t, p, {"type", "time_zone", "windows", "otherwise"});
    zone();
    required_rate("otherwise", &spec.rate);
    const toml::node* node = t.get("windows");
    const toml::array* arr = node ? node->as_array() : nullptr;
    if (!arr || arr->empty() || arr->size() > 100) {
      c.Error(node ? node : &t, p + ".windows",
              "must be a list of 1-100 tables like { days = \"Mon-Fri\", hours "
              "= \"09:00-18:00\", rate = \"5/s\" }");
      return;
    }
    for (std::size_t i = 0; i < arr->size(); ++i) {
      std::string ip = fmt::format("{}.windows[{}]", p, i);
      const toml::table* wt = (*arr)[i].as_table();
      if (!wt) {
        c.Error(&(*arr)[i], ip, "must be a table");
        continue;
      }
      c.OnlyKeys(*wt, ip, {"days", "hours", "rate"});
      WeeklyWindow w;
      w.days = 0x7f;
      bool ok = true;
      if (auto days = c.String(*wt, ip, "days")) {
        if (auto mask = ParseDays(*days)) {
          w.days = *mask;
        } else {
          c.Error(wt->get("days"), ip + ".days",
                  fmt::format("\"{}\" is not a day list like \"Mon-Fri\" or "
                              "\"Sat,Sun\"",
                              *days));
          ok = false;
        }
      }
      if (auto hours = c.String(*wt, ip, "hours")) {
        auto dash = hours->find('-');
        auto a = dash == std::string::npos
                     ? std::nullopt
                     : ParseClock(std::string_view(*hours).substr(0, dash));
        auto b = dash == std::string::npos
                     ? std::nullopt
                     : ParseClock(std::string_view(*hours).substr(dash + 1));
        if (!a || !b || *a == 24 * 60 || *a == *b) {
          c.Error(wt->get("hours"), ip + ".hours",
                  fmt::format("\"{}\" is not a local time range like "
                              "\"09:00-18:00\" (\"22:00-06:00\" runs past "
                              "midnight; \"00:00-24:00\" is the whole day)",
                              *hours));
          ok = false;
        } else {
          w.start_minute = *a;
          w.end_minute = *b == 0 ? 24 * 60 : *b;
        }
      } else {
        if (!wt->get("hours"))
          c.Error(wt, ip + ".hours", "missing; e.g. \"09:00-18:00\"");
        ok = false;
      }
      if (auto r = c.RateValue(*wt, ip, "rate")) {
        w.rate = *r;
      } else {
        if (!wt->get("rate"))
          c.Error(wt, ip + ".rate", "missing; e.g. \"5/s\"");
        ok = false;
      }
      if (ok) spec.windows.push_back(w);
    }
  } else if (*kind == "daily") {
    spec.kind = ScheduleKind::kDaily;
    c.OnlyKeys(t, p, {"type", "time_zone", "rate", "hourly"});
    zone();
    required_rate("rate", &spec.rate);
    const toml::node* node = t.get("hourly");
    const toml::array* arr = node ? node->as_array() : nullptr;
    if (!arr || arr->size() != 24) {
      c.Error(node ? node : &t, p + ".hourly",
              "must be a list of 24 multipliers (local hours 00-23), e.g. "
              "[0.2, 0.2, ..., 1.0, ...]");
      return;
    }
    for (std::size_t i = 0; i < 24; ++i) {
      const toml::node& item = (*arr)[i];
      std::optional<double> v;
      if (auto f = item.value_exact<double>()) v = *f;
      if (auto n = item.value_exact<int64_t>()) v = static_cast<double>(*n);
      if (!v || !(*v >= 0) || *v > 1000) {
        c.Error(&item, fmt::format("{}.hourly[{}]", p, i),
                "must be a number in [0, 1000]");
        continue;
      }
      spec.hourly[i] = *v;
    }
  } else {
    c.Error(t.get("type"), p + ".type",
            fmt::format("unknown schedule type \"{}\"; use constant, ramp, "
                        "steps, weekly or daily",
                        *kind));
    return;
  }
  if (spec.PeakRate() > 100'000) {
    c.Error(&t, p,
            fmt::format("asks for up to {:g}/s, above the maximum of 100000/s",
                        spec.PeakRate()));
  }
}

// [scenarios.NAME.thresholds.STEP] tables: p50/p90/p99/max latency limits and
// error_ratio.
void ParseThresholds(Checker& c, const toml::table& t, const std::string& p,
                     ScenarioConfig& s) {
  const toml::node* node = t.get("thresholds");
  if (!node) return;
  const toml::table* all = node->as_table();
  if (!all) {
    c.Error(node, p + ".thresholds", "must be a table of steps");
    return;
  }
  const auto& steps = StepsOf(s.type);
  for (const auto& [key, step_node] : *all) {
    std::string step(key.str());
    std::string sp = fmt::format("{}.thresholds.{}", p, step);
    if (std::find(steps.begin(), steps.end(), step) == steps.end()) {
      std::string known;
      for (const auto& k : steps) known += (known.empty() ? "" : ", ") + k;
      c.Error(&step_node, sp,
              fmt::format("this scenario has no step \"{}\"; its steps: {}",
                          step, known));
      continue;
    }
    const toml::table* st = step_node.as_table();
    if (!st) {
      c.Error(&step_node, sp, "must be a table, e.g. { p99 = \"1s\" }");
      continue;
    }
    c.OnlyKeys(*st, sp, {"p50", "p90", "p99", "max", "error_ratio"});
    const std::pair<std::string_view, ThresholdMetric> latency[] = {
        {"p50", ThresholdMetric::kLatencyP50},
        {"p90", ThresholdMetric::kLatencyP90},
        {"p99", ThresholdMetric::kLatencyP99},
        {"max", ThresholdMetric::kLatencyMax}};
    for (const auto& [k, metric] : latency) {
      if (auto d = c.DurationValue(*st, sp, k, std::chrono::milliseconds(1),
                                   std::chrono::hours(1))) {
        s.thresholds.push_back(Threshold{s.name, step, metric, ToSeconds(*d),
                                         Checker::Join(sp, k)});
      }
    }
    if (const toml::node* er = st->get("error_ratio")) {
      std::optional<double> v;
      if (auto f = er->value_exact<double>()) v = *f;
      if (auto n = er->value_exact<int64_t>()) v = static_cast<double>(*n);
      if (!v || !(*v >= 0) || *v > 1) {
        c.Error(er, sp + ".error_ratio",
                "must be a share in [0, 1], e.g. 0.01 for 1%");
      } else {
        s.thresholds.push_back(Threshold{s.name, step,
                                         ThresholdMetric::kErrorRatio, *v,
                                         sp + ".error_ratio"});
      }
    }
  }
}

// The Locust suite's threshold variables (ms) become p99 latency limits on
// the matching steps of every scenario, replacing a p99 from the file.
void ApplyEnvThresholds(Checker& c, const EnvLookup& env, ScenarioConfig& s,
                        std::vector<std::string>& notes) {
  static const std::pair<const char*, std::vector<std::string>> kVars[] = {
      {"LOAD_TEST_CHECKOUT_CREATE_THRESHOLD", {"create"}},
      {"LOAD_TEST_CHECKOUT_CONFIRM_THRESHOLD", {"confirm"}},
      {"LOAD_TEST_LIST_THRESHOLD", {"list", "status"}},
      {"LOAD_TEST_EVENT_INGEST_THRESHOLD", {"ingest"}},
  };
  const auto& steps = StepsOf(s.type);
  for (const auto& [var, targets] : kVars) {
    auto ms = EnvInt(c, env, var, 1, 3'600'000);
    if (!ms) continue;
    for (const std::string& step : targets) {
      if (std::find(steps.begin(), steps.end(), step) == steps.end()) continue;
      std::erase_if(s.thresholds, [&](const Threshold& t) {
        return t.step == step && t.metric == ThresholdMetric::kLatencyP99;
      });
      s.thresholds.push_back(Threshold{
          s.name, step, ThresholdMetric::kLatencyP99, *ms / 1000.0, var});
      notes.push_back(
          fmt::format("{} sets the p99 limit of {}/{}", var, s.name, step));
    }
  }
}

void ParseScenarios(Checker& c, const toml::table& root, const EnvLookup& env,
                    std::vector<ScenarioConfig>& scenarios,
                    std::vector<std::string>& notes) {
  const toml::table* all = SubTable(c, root, "scenarios");
  if (!all || all->empty()) {
    c.Error(nullptr, "scenarios",
            "no scenarios configured; add a [scenarios.NAME] table");
    return;
  }
  for (const auto& [key, node] : *all) {
    std::string name(key.str());
    std::string p = "scenarios." + name;
    const toml::table* t = node.as_table();
    if (!t) {
      c.Error(&node, p, "must be a table");
      continue;
    }
    // The name is a label value: keep it to a safe, short alphabet.
    bool safe = !name.empty() && name.size() <= 64;
    for (char ch : name) {
      safe = safe && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                      ch == '_' || ch == '-');
    }
    if (!safe) {
      c.Error(&node, p, "scenario names use 1-64 of a-z, 0-9, _ and -");
    }
    ScenarioConfig s;
    s.name = name;
    auto type = c.String(*t, p, "type");
    if (!type) {
      if (!t->get("type"))
        c.Error(&node, p + ".type",
                "missing; use \"event_ingestion\", \"checkout\" or "
                "\"event_visibility\"");
      continue;
    }
    // Keys every scenario type takes.
    auto keys = [&](std::initializer_list<std::string_view> own) {
      std::vector<std::string_view> all = {
          "type",          "rate", "schedule",           "arrivals",
          "max_in_flight", "seed", "honour_retry_after", "max_retry_after",
          "thresholds"};
      all.insert(all.end(), own.begin(), own.end());
      return all;
    };
    if (*type == "event_ingestion") {
      s.type = ScenarioType::kEventIngestion;
      c.OnlyKeys(
          *t, p,
          keys({"batch_size", "external_customer_ids", "timestamp_backdate"}));
      ParseEventIngestion(c, *t, p, env, s.event_ingestion, notes);
    } else if (*type == "checkout") {
      s.type = ScenarioType::kCheckout;
      c.OnlyKeys(
          *t, p,
          keys({"product_id", "create_form", "customer_email", "customer_pool",
                "billing_address", "funnel", "think_time", "completion",
                "poll_interval", "completion_deadline"}));
      ParseCheckout(c, *t, p, env, s.checkout, notes);
    } else if (*type == "event_visibility") {
      s.type = ScenarioType::kEventVisibility;
      c.OnlyKeys(*t, p,
                 keys({"probe_customer_id", "event_name", "poll_interval",
                       "deadline", "timestamp_backdate", "search_margin"}));
      ParseEventVisibility(c, *t, p, s.event_visibility);
    } else {
      c.Error(t->get("type"), p + ".type",
              fmt::format("unknown scenario type \"{}\"; use "
                          "\"event_ingestion\", \"checkout\" or "
                          "\"event_visibility\"",
                          *type));
      continue;
    }
    const toml::node* schedule = t->get("schedule");
    if (schedule && t->get("rate")) {
      c.Error(t->get("rate"), p + ".rate",
              "set rate (a constant rate) or a schedule table, not both");
    }
    if (schedule) {
      if (const toml::table* st = schedule->as_table()) {
        ParseSchedule(c, *st, p + ".schedule", s.schedule);
      } else {
        c.Error(schedule, p + ".schedule",
                "must be a table, e.g. [scenarios.NAME.schedule]");
      }
    } else if (auto r = c.RateValue(*t, p, "rate")) {
      s.schedule.kind = ScheduleKind::kConstant;
      s.schedule.rate = *r;
    } else if (!t->get("rate")) {
      c.Error(&node, p + ".rate",
              "missing; e.g. rate = \"1/s\", or a [" + p + ".schedule] table");
    }
    if (auto a = c.String(*t, p, "arrivals")) {
      if (auto kind = ParseArrivalKind(*a)) {
        s.arrivals = *kind;
      } else {
        c.Error(t->get("arrivals"), p + ".arrivals",
                fmt::format("\"{}\" is not uniform or poisson", *a));
      }
    }
    if (auto v = c.Int(*t, p, "max_in_flight", 1, 1'000'000))
      s.max_in_flight = static_cast<int>(*v);
    if (auto v = c.Int(*t, p, "seed", 0, INT64_MAX))
      s.seed = static_cast<uint64_t>(*v);
    if (auto v = c.Bool(*t, p, "honour_retry_after")) s.honour_retry_after = *v;
    if (auto v = c.DurationValue(*t, p, "max_retry_after", Duration::zero(),
                                 std::chrono::hours(24))) {
      s.max_retry_after = *v;
    }
    ParseThresholds(c, *t, p, s);
    ApplyEnvThresholds(c, env, s, notes);
    scenarios.push_back(std::move(s));
  }
}

// Each shard draws checkout customers from its own slice of customer_pool
// (index % N == i), so the pool must give every shard at least one.
void CheckPoolsCoverShards(Checker& c, const toml::table& root,
                           const Config& config) {
  const Shard shard = config.cluster.shard;
  if (!shard.sharded()) return;
  for (const ScenarioConfig& s : config.scenarios) {
    if (s.type != ScenarioType::kCheckout ||
        s.checkout.customer_pool >= static_cast<int>(shard.count)) {
      continue;
    }
    const toml::node* node =
        root.at_path("scenarios")[s.name]["customer_pool"].node();
    if (!node) node = root.at_path("scenarios")[s.name].node();
    c.Error(node, fmt::format("scenarios.{}.customer_pool", s.name),
            fmt::format("{} customers cannot be split over {} shards (each "
                        "takes the addresses whose index % {} is its own); "
                        "use at least {}",
                        s.checkout.customer_pool, shard.count, shard.count,
                        shard.count));
  }
}

}  // namespace

const std::vector<std::string>& StepsOf(ScenarioType type) {
  static const std::vector<std::string> kIngestion = {"ingest"};
  static const std::vector<std::string> kCheckout = {
      "create", "update", "status", "confirm", "stream", "get"};
  static const std::vector<std::string> kVisibility = {"ingest", "probe"};
  switch (type) {
    case ScenarioType::kEventIngestion:
      return kIngestion;
    case ScenarioType::kCheckout:
      return kCheckout;
    case ScenarioType::kEventVisibility:
      return kVisibility;
  }
  return kIngestion;
}

const char* ScenarioTypeName(ScenarioType type) {
  switch (type) {
    case ScenarioType::kEventIngestion:
      return "event_ingestion";
    case ScenarioType::kCheckout:
      return "checkout";
    case ScenarioType::kEventVisibility:
      return "event_visibility";
  }
  return "event_ingestion";
}

std::string ConfigError::ToString() const {
  if (line > 0)
    return fmt::format("{}:{}:{}: {}: {}", file, line, column, key, message);
  return fmt::format("{}: {}: {}", file, key, message);
}

EnvLookup ProcessEnvironment() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

ConfigResult ParseConfig(std::string_view text, const std::string& path,
                         const EnvLookup& env, SecretReader read_secret) {
  ConfigResult result;
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    ConfigError error;
    error.file = path;
    error.line = static_cast<int>(e.source().begin.line);
    error.column = static_cast<int>(e.source().begin.column);
    error.key = "(syntax)";
    error.message = std::string(e.description());
    result.errors.push_back(std::move(error));
    return result;
  }
  if (!read_secret)
    read_secret = DaemonSecretReader(env("CREDENTIALS_DIRECTORY"));
  Checker c(path, &result.errors, std::move(read_secret), &result.notes);
  c.OnlyKeys(root, "",
             {"target", "metrics", "control", "daemon", "cluster", "webhooks",
              "scenarios"});
  auto config = std::make_shared<Config>();
  config->path = path;
  ParseTarget(c, root, env, config->target, result.notes);
  ParseMetrics(c, root, env, config->metrics, result.notes);
  ParseControl(c, root, config->control);
  if (!config->control.token.empty())
    result.secrets.push_back(config->control.token);
  ParseDaemon(c, root, config->daemon);
  ParseCluster(c, root, env, config->cluster, result.notes);
  ParseWebhooks(c, root, env, config->webhooks, result.secrets, result.notes);
  if (config->webhooks.enabled && config->webhooks.listen.port != 0 &&
      config->webhooks.listen.port == config->metrics.listen.port &&
      config->webhooks.listen.host == config->metrics.listen.host) {
    const toml::table* w = root.get_as<toml::table>("webhooks");
    c.Error(w ? w->get("listen") : nullptr, "webhooks.listen",
            fmt::format("{} is metrics.listen too; the receiver needs its own "
                        "address",
                        config->webhooks.listen.ToString()));
  }
  ParseScenarios(c, root, env, config->scenarios, result.notes);
  CheckPoolsCoverShards(c, root, *config);
  if (!config->target.token.empty())
    result.secrets.push_back(config->target.token);
  if (config->target.token.empty()) {
    c.Error(nullptr, "target.token",
            "no API token: set target.token_file, target.token or "
            "LOAD_TEST_API_TOKEN");
  }
  if (result.errors.empty()) {
    WarnAboutSandbox(*config, result.warnings);
    result.config = std::move(config);
  }
  return result;
}

ConfigResult LoadConfig(const std::string& path, const EnvLookup& env,
                        SecretReader read_secret) {
  std::string text;
  bool too_large = false;
  if (!ReadBounded(path, kMaxConfigFileBytes, &text, &too_large)) {
    ConfigResult result;
    result.errors.push_back(ConfigError{
        path, 0, 0, "(file)",
        too_large ? fmt::format("the config file is larger than {} MiB",
                                kMaxConfigFileBytes / (1024 * 1024))
                  : "cannot open the config file"});
    return result;
  }
  return ParseConfig(text, path, env, std::move(read_secret));
}

}  // namespace polar
