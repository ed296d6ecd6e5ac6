// Config: the daemon's configuration, parsed from TOML, validated as a whole,
// and frozen.
//
// LoadConfig() runs at start and on SIGHUP (on the loop thread; it reads one
// small file and never blocks on the network). It reports every problem at
// once, each with file:line:col and the key path, and returns a Config only
// when there are none. Unknown keys and out-of-range values are errors, not
// clamps. The result is immutable and shared as std::shared_ptr<const Config>.
// Secrets (the API token, the webhook secret) are read here and kept only in
// Config::target.token and Config::webhooks; nothing in this module prints
// them.
#pragma once

#include <any>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config/secret_files.h"
#include "daemon/net/listen_address.h"
#include "daemon/schedule/arrivals.h"
#include "daemon/schedule/schedule.h"
#include "daemon/schedule/units.h"
#include "daemon/webhooks/webhooks_config.h"
#include "exporters/clock.h"
#include "exporters/summary.h"
#include "scenarios/scenario_type.h"
#include "scenarios/shard.h"

namespace polar {

struct TargetConfig {
  std::string base_url = "http://127.0.0.1:8000";  // without the /v1 prefix
  std::string token;                               // secret; never logged
  std::string token_source;  // where the token came from ("token_file /path",
                             // "LOAD_TEST_API_TOKEN")
  // POLAR_LOADD_TOKEN_FILE (a path, not a secret) replaces token_file: the
  // instance units (polar-loadd@.service) set it to their own credentials
  // directory, which differs per instance.
  Duration timeout = std::chrono::seconds(10);
  Duration connect_timeout = std::chrono::seconds(3);
  bool allow_production = false;
  // Against Polar's sandbox or production, a config whose rates would trip a
  // rate limit (daemon/config/polar_limits.h) is refused unless this is set.
  bool allow_over_limit = false;
  std::string ca_file;
  int connections =
      256;  // transfers on the wire at once (HTTP/1.1 connections, h2 streams)
  int max_in_flight =
      10'000;  // daemon-wide cap on admitted requests (queued + on the wire)
  // "auto": plain requests to an http:// target with a literal address go
  // through the built-in HTTP/1.1 client (daemon/net/http1_client.h),
  // everything else through libcurl; "curl": always libcurl.
  std::string http_client = "auto";
};

struct MetricsConfig {
  ListenAddress listen{"127.0.0.1", 9477, false};
  // Host names the metrics listener answers besides IP literals and
  // localhost (daemon/net/http_request.h, HostAllowed): lower-case, without
  // a trailing dot or port.
  std::vector<std::string> allowed_hosts;
};

// The control API (daemon/status/control_api.h) on the metrics listener.
// Without a token every mutating /api/ route is refused (403); the status page
// and GET /api/status stay open (read-only, like /metrics).
struct ControlConfig {
  std::string token;         // secret; never logged
  std::string token_source;  // "control.token" or "control.token_file PATH"
};

// How the process behaves as a service (daemon/service/lifecycle.h).
struct DaemonConfig {
  // SIGTERM waits this long for requests already on the wire. 10 s: short of
  // the unit's TimeoutStopSec=30s, long enough for Polar's slowest SLO
  // (confirm, 5.5 s p99).
  Duration shutdown_grace = std::chrono::seconds(10);
  // RunnerLimits::timer_slack for every scenario: arrivals due within one
  // window are sent in one wake-up (docs/performance.md).
  Duration timer_slack = std::chrono::milliseconds(1);
  // Where the HTML report of the run goes when it ends (exporters/report.h):
  // a one-shot run at its end, the service when it stops. "{start}" becomes
  // the start time (UTC), so runs keep one report each. Empty: none.
  std::string report;
};

// [cluster]: this instance's share when N copies run one load plan
// (scenarios/shard.h; docs/operations.md "Scaling out").
//   [cluster] shard = "1/3"   index/count, or
//   [cluster] shards = 3      the count; the index comes from the environment.
// POLAR_LOADD_SHARD overrides the file: "1/3", a bare ordinal "1" (the count
// from POLAR_LOADD_SHARDS or the file), or a StatefulSet pod name
// "polar-loadd-1" (its trailing ordinal). POLAR_LOADD_SHARDS overrides the
// count.
struct ClusterConfig {
  Shard shard{};
};

struct ScenarioConfig {
  std::string name;  // the table name; becomes the `scenario` label
  // The `type`, from scenarios/registry.h: its steps, factory and load. Never
  // null in a loaded Config.
  const ScenarioType* type = nullptr;
  ScheduleSpec schedule;  // `rate = "5/s"` is a constant schedule
  ArrivalKind arrivals = ArrivalKind::kUniform;
  int max_in_flight = 1'000;
  bool honour_retry_after = true;
  Duration max_retry_after = std::chrono::minutes(30);
  // Evaluated by one-shot runs (--once): from [scenarios.NAME.thresholds.STEP]
  // and the LOAD_TEST_*_THRESHOLD variables.
  std::vector<Threshold> thresholds;
  uint64_t seed = 1;
  // The type's own keys, as its ScenarioType::parse read them (e.g.
  // CheckoutOptions for type = "checkout").
  std::any options;
  template <typename Options>
  const Options& OptionsAs() const {
    return std::any_cast<const Options&>(options);
  }
};

struct Config {
  std::string path;
  // The file as read, for the run report (it may hold secrets: pass it
  // through RedactConfigText), and the notes of the load (which environment
  // variables overrode what).
  std::string text;
  std::vector<std::string> notes;
  TargetConfig target;
  MetricsConfig metrics;
  ControlConfig control;
  DaemonConfig daemon;
  ClusterConfig cluster;
  WebhooksConfig webhooks;
  std::vector<ScenarioConfig> scenarios;
};

struct ConfigError {
  std::string file;
  int line = 0;  // 0 when the problem has no place in the file (e.g. an
                 // environment variable)
  int column = 0;
  std::string key;  // dotted key path, e.g. "scenarios.ingest.rate"
  std::string message;
  std::string ToString() const;  // "file:line:col: key: message"
};

struct ConfigResult {
  std::shared_ptr<const Config> config;  // null when errors is not empty
  std::vector<ConfigError> errors;
  std::vector<std::string>
      notes;  // e.g. which LOAD_TEST_* variables overrode the file
  // Valid but probably not meant: rates above sandbox's limits against
  // sandbox. Logged at warning priority at start and on reload.
  std::vector<std::string> warnings;
  // Every secret read while parsing (the API token, the control token, the
  // webhook secret), even when the config is invalid: the caller registers
  // them with the log redactor (exporters/log.h) before it prints a single
  // error.
  std::vector<std::string> secrets;
};

// Looks up an environment variable; injectable so tests control the
// environment.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
EnvLookup ProcessEnvironment();

// Token and secret files are read with `read_secret`; empty, the daemon's
// (DaemonSecretReader with $CREDENTIALS_DIRECTORY from `env`). --check-config
// passes CredentialStoreReader, which reads a systemd credential from the
// store the unit loads it from (daemon/config/secret_files.h).
ConfigResult LoadConfig(const std::string& path, const EnvLookup& env,
                        SecretReader read_secret = {});

// `text` (a config file) with the value of every key named `token` or
// `secret`, in any table, replaced by "[redacted]" wherever it appears (a
// comment too). Secrets read from files are not in the text; the log
// redactor (exporters/log.h) knows them.
std::string RedactConfigText(std::string_view text);
// The same, from text in memory; `path` is only used in messages and to resolve
// nothing else.
ConfigResult ParseConfig(std::string_view text, const std::string& path,
                         const EnvLookup& env, SecretReader read_secret = {});

// Every key the file accepts, one fully qualified key per line, in the
// file's order (polar-loadd --print-config-keys; the format is in
// docs/architecture.md, "The config's keys"): `<name>` and `<step>` stand for
// a name the file chooses, `<name:TYPE>` / `schedule:TYPE` for a table whose
// `type` is TYPE, `[]` for the tables of an array.
std::vector<std::string> ConfigKeySchema();

}  // namespace polar
