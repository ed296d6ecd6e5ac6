// [cluster] and POLAR_LOADD_SHARD / POLAR_LOADD_SHARDS: this instance's share
// of a load plan run by N copies (scenarios/shard.h, daemon/config/sections.h).
#include <fmt/format.h>

#include "daemon/config/sections.h"

namespace polar {
namespace {

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

}  // namespace

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
    c.OnlyKeys(*t, p, kClusterKeys);
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

}  // namespace polar
