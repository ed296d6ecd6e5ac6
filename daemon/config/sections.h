// The config file's sections: one parser per table, and the keys each table
// accepts. The key lists are the one description of the file's shape: the
// parsers refuse every other key with them (Checker::OnlyKeys) and
// ConfigKeySchema() prints them (polar-loadd --print-config-keys).
//
// Internal to daemon/config; called by ParseConfig() in the order below (the
// scenarios read the cluster's shard).
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config/checker.h"
#include "daemon/config/config.h"

namespace polar {

inline constexpr std::array<std::string_view, 7> kTopLevelKeys = {
    "target",  "metrics",  "control",  "daemon",
    "cluster", "webhooks", "scenarios"};
inline constexpr std::array<std::string_view, 11> kTargetKeys = {
    "base_url",         "token",           "token_file",
    "timeout",          "connect_timeout", "allow_production",
    "allow_over_limit", "ca_file",         "connections",
    "max_in_flight",    "http_client"};
inline constexpr std::array<std::string_view, 2> kMetricsKeys = {
    "listen", "allowed_hosts"};
inline constexpr std::array<std::string_view, 2> kControlKeys = {"token",
                                                                 "token_file"};
inline constexpr std::array<std::string_view, 3> kDaemonKeys = {
    "shutdown_grace", "timer_slack", "report"};
inline constexpr std::array<std::string_view, 2> kClusterKeys = {"shard",
                                                                 "shards"};
inline constexpr std::array<std::string_view, 13> kWebhooksKeys = {
    "listen",
    "secret",
    "secret_file",
    "secret_format",
    "tolerance",
    "max_body_bytes",
    "max_header_bytes",
    "remember_ids",
    "deadline",
    "max_expectations",
    "unmatched_after",
    "register_url",
    "register_allow_loopback"};
// Every scenario table's keys, whatever its type (the type's own keys are in
// its ScenarioType, scenarios/registry.h).
inline constexpr std::array<std::string_view, 9> kScenarioCommonKeys = {
    "type",          "rate", "schedule",           "arrivals",
    "max_in_flight", "seed", "honour_retry_after", "max_retry_after",
    "thresholds"};
inline constexpr std::array<std::string_view, 5> kThresholdKeys = {
    "p50", "p90", "p99", "max", "error_ratio"};

// A schedule table's keys by its `type`; `items` names the array of tables
// (steps, windows) whose entries take `item_keys`.
struct ScheduleShape {
  std::string_view type;
  std::vector<std::string_view> keys;  // "type" included
  std::string_view items;
  std::vector<std::string_view> item_keys;
};
const std::vector<ScheduleShape>& ScheduleShapes();
const ScheduleShape* FindScheduleShape(std::string_view type);

void ParseTarget(Checker& c, const toml::table& root, const EnvLookup& env,
                 TargetConfig& target, std::vector<std::string>& notes);
void ParseMetrics(Checker& c, const toml::table& root, const EnvLookup& env,
                  MetricsConfig& metrics, std::vector<std::string>& notes);
void ParseControl(Checker& c, const toml::table& root, ControlConfig& control);
void ParseDaemon(Checker& c, const toml::table& root, DaemonConfig& daemon);
void ParseCluster(Checker& c, const toml::table& root, const EnvLookup& env,
                  ClusterConfig& cluster, std::vector<std::string>& notes);
void ParseWebhooks(Checker& c, const toml::table& root, const EnvLookup& env,
                   WebhooksConfig& w, std::vector<std::string>& secrets,
                   std::vector<std::string>& notes);
// [scenarios.NAME.schedule] into *spec.
void ParseSchedule(Checker& c, const toml::table& t, const std::string& p,
                   ScheduleSpec& spec);
void ParseScenarios(Checker& c, const toml::table& root, const EnvLookup& env,
                    Shard shard, std::vector<ScenarioConfig>& scenarios,
                    std::vector<std::string>& notes);
// Polar's rate limits for the target's host (daemon/config/polar_limits.h):
// per bucket a note; a limit the config would trip is an error against
// sandbox or production (a warning with target.allow_over_limit), a note for
// any other host. Also: a token that is not an organization access token.
void CheckRateLimits(Checker& c, const toml::table& root, const Config& config,
                     std::vector<std::string>& warnings,
                     std::vector<std::string>& notes);

}  // namespace polar
