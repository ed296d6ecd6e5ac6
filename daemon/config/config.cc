// The driver: TOML text to a validated, frozen Config. Each section has its
// own file (daemon/config/sections.h); this one runs them in order, adds the
// checks that span sections, and reads the file.
#include "daemon/config/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cstdlib>

#include "daemon/config/checker.h"
#include "daemon/config/sections.h"

namespace polar {
namespace {

// The shipped config is ~5 KiB.
constexpr std::size_t kMaxConfigFileBytes = 1024 * 1024;

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
  c.OnlyKeys(root, "", kTopLevelKeys);
  auto config = std::make_shared<Config>();
  config->path = path;
  config->text = std::string(text);
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
  ParseScenarios(c, root, env, config->cluster.shard, config->scenarios,
                 result.notes);
  if (!config->target.token.empty())
    result.secrets.push_back(config->target.token);
  if (config->target.token.empty()) {
    c.Error(nullptr, "target.token",
            "no API token: set target.token_file, target.token or "
            "LOAD_TEST_API_TOKEN");
  }
  if (result.errors.empty()) {
    CheckRateLimits(c, root, *config, result.warnings, result.notes);
    if (result.errors.empty()) {
      config->notes = result.notes;
      result.config = std::move(config);
    }
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
