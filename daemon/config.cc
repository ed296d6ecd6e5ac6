#include "daemon/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

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
  Checker(std::string file, std::vector<ConfigError>* errors)
      : file_(std::move(file)), errors_(errors) {}

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
};

const toml::table* SubTable(Checker& c, const toml::table& root,
                            std::string_view key) {
  const toml::node* node = root.get(key);
  if (!node) return nullptr;
  if (auto* t = node->as_table()) return t;
  c.Error(node, std::string(key), "must be a table");
  return nullptr;
}

std::optional<std::string> ReadSecretFile(const std::string& path,
                                          std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = fmt::format("cannot read {}", path);
    return std::nullopt;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string secret = buffer.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' ||
                             secret.back() == ' ' || secret.back() == '\t')) {
    secret.pop_back();
  }
  if (secret.empty()) {
    *why = fmt::format("{} is empty", path);
    return std::nullopt;
  }
  return secret;
}

// Polar's production API takes real money; sandbox has tight rate limits
// (polar-api.md §5, §9).
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
                "allow_production", "ca_file", "connections", "max_in_flight"});
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
  } else if (auto v = t ? c.String(*t, p, "token") : std::nullopt) {
    target.token = *v;
    target.token_source = "target.token";
  } else if (auto file = t ? c.String(*t, p, "token_file") : std::nullopt) {
    std::string why;
    if (auto secret = ReadSecretFile(*file, &why)) {
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
  c.OnlyKeys(*t, "daemon", {"shutdown_grace"});
  // Up to 10 min: beyond that an operator wants a restart, not a stop.
  if (auto v = c.DurationValue(*t, "daemon", "shutdown_grace", Duration::zero(),
                               std::chrono::minutes(10))) {
    daemon.shutdown_grace = *v;
  }
}

void ParseMetrics(Checker& c, const toml::table& root, MetricsConfig& metrics) {
  const toml::table* t = SubTable(c, root, "metrics");
  if (!t) return;
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
        c.Error(&node, p + ".type", "missing; use \"event_ingestion\"");
      continue;
    }
    if (*type == "event_ingestion") {
      s.type = ScenarioType::kEventIngestion;
      c.OnlyKeys(*t, p,
                 {"type", "rate", "max_in_flight", "seed", "batch_size",
                  "external_customer_ids"});
      ParseEventIngestion(c, *t, p, env, s.event_ingestion, notes);
    } else {
      c.Error(
          t->get("type"), p + ".type",
          fmt::format("unknown scenario type \"{}\"; use \"event_ingestion\"",
                      *type));
      continue;
    }
    if (auto r = c.RateValue(*t, p, "rate")) {
      s.rate = *r;
    } else if (!t->get("rate")) {
      c.Error(&node, p + ".rate", "missing; e.g. rate = \"1/s\"");
    }
    if (auto v = c.Int(*t, p, "max_in_flight", 1, 1'000'000))
      s.max_in_flight = static_cast<int>(*v);
    if (auto v = c.Int(*t, p, "seed", 0, INT64_MAX))
      s.seed = static_cast<uint64_t>(*v);
    scenarios.push_back(std::move(s));
  }
}

}  // namespace

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
                         const EnvLookup& env) {
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
  Checker c(path, &result.errors);
  c.OnlyKeys(root, "", {"target", "metrics", "daemon", "scenarios"});
  auto config = std::make_shared<Config>();
  config->path = path;
  ParseTarget(c, root, env, config->target, result.notes);
  ParseMetrics(c, root, config->metrics);
  ParseDaemon(c, root, config->daemon);
  ParseScenarios(c, root, env, config->scenarios, result.notes);
  if (!config->target.token.empty())
    result.secrets.push_back(config->target.token);
  if (config->target.token.empty()) {
    c.Error(nullptr, "target.token",
            "no API token: set target.token_file, target.token or "
            "LOAD_TEST_API_TOKEN");
  }
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

ConfigResult LoadConfig(const std::string& path, const EnvLookup& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ConfigResult result;
    result.errors.push_back(
        ConfigError{path, 0, 0, "(file)", "cannot open the config file"});
    return result;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return ParseConfig(buffer.str(), path, env);
}

}  // namespace polar
