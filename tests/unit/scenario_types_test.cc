// The scenario-type registry (scenarios/registry.h) and the key schema
// (ConfigKeySchema): every type's declared keys are read, validated, refused
// when unknown, and documented with defaults that really are the defaults.
// The tests walk the registry, so a new type is covered without editing them.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "daemon/config/config.h"
#include "scenarios/registry.h"
#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using testing::FakeEnv;

// A valid table of `type`, plus `extra` lines.
std::string TableOf(const ScenarioType& type, const std::string& extra) {
  std::string text = "[target]\ntoken = \"t\"\n[scenarios.x]\ntype = \"" +
                     std::string(type.name) + "\"\nrate = \"1/s\"\n";
  // The required keys, unless `extra` sets the same one.
  std::string example(type.required_example);
  std::size_t at = 0;
  while (at < example.size()) {
    std::size_t end = example.find('\n', at);
    if (end == std::string::npos) end = example.size();
    const std::string line = example.substr(at, end - at);
    const std::string key = line.substr(0, line.find_first_of(" ="));
    if (extra.rfind(key + " ", 0) != 0) text += line + "\n";
    at = end + 1;
  }
  return text + extra;
}

// `key = value` as a TOML line; "funnel.update" becomes an inline table.
std::string Line(std::string_view key, std::string_view value) {
  const std::size_t dot = key.find('.');
  if (dot == std::string_view::npos)
    return std::string(key) + " = " + std::string(value) + "\n";
  return std::string(key.substr(0, dot)) + " = { " +
         std::string(key.substr(dot + 1)) + " = " + std::string(value) + " }\n";
}

std::string AllErrors(const ConfigResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.ToString() + "\n";
  return out;
}

TEST(ScenarioTypes, TheRegistryListsEachTypeOnceAndFindsItByName) {
  std::set<std::string_view> names;
  for (const ScenarioType* type : ScenarioTypes()) {
    EXPECT_TRUE(names.insert(type->name).second) << type->name;
    EXPECT_EQ(FindScenarioType(type->name), type);
    EXPECT_FALSE(type->summary.empty()) << type->name;
    EXPECT_FALSE(type->steps.empty()) << type->name;
  }
  EXPECT_EQ(names, (std::set<std::string_view>{"checkout", "event_ingestion",
                                               "event_visibility"}));
  EXPECT_EQ(FindScenarioType("browse"), nullptr);
}

TEST(ScenarioTypes, ARequiredExampleAloneMakesAValidTable) {
  for (const ScenarioType* type : ScenarioTypes()) {
    ConfigResult r = ParseConfig(TableOf(*type, ""), "t.toml", FakeEnv());
    ASSERT_TRUE(r.config) << type->name << "\n" << AllErrors(r);
    EXPECT_EQ(r.config->scenarios[0].type, type);
  }
}

TEST(ScenarioTypes, EveryDocumentedDefaultParsesToTheDefault) {
  int checked = 0;
  for (const ScenarioType* type : ScenarioTypes()) {
    ConfigResult plain = ParseConfig(TableOf(*type, ""), "t.toml", FakeEnv());
    ASSERT_TRUE(plain.config) << AllErrors(plain);
    for (const ConfigKey& key : type->keys) {
      if (key.default_value.empty()) continue;
      ConfigResult set =
          ParseConfig(TableOf(*type, Line(key.name, key.default_value)),
                      "t.toml", FakeEnv());
      ASSERT_TRUE(set.config) << type->name << "." << key.name << "\n"
                              << AllErrors(set);
      EXPECT_TRUE(type->same(plain.config->scenarios[0].options,
                             set.config->scenarios[0].options))
          << type->name << "." << key.name << " = " << key.default_value
          << " is not what the table means without it";
      ++checked;
    }
  }
  EXPECT_GE(checked, 15);
}

TEST(ScenarioTypes, EveryDeclaredKeyIsReadAndValidated) {
  // A value no key accepts: each declared key must answer it with an error
  // under its own path (not "unknown key"), which proves the type's parser
  // reads it.
  for (const ScenarioType* type : ScenarioTypes()) {
    for (const ConfigKey& key : type->keys) {
      ConfigResult r = ParseConfig(TableOf(*type, Line(key.name, "[[1]]")),
                                   "t.toml", FakeEnv());
      const std::string path = "scenarios.x." + std::string(key.name);
      bool found = false;
      for (const ConfigError& e : r.errors) {
        if (e.key != path) continue;
        found = true;
        EXPECT_EQ(e.message.find("unknown key"), std::string::npos)
            << e.ToString();
        EXPECT_GT(e.line, 0) << e.ToString();
      }
      EXPECT_TRUE(found) << type->name << ": nothing rejected " << path
                         << " = [[1]]\n"
                         << AllErrors(r);
    }
  }
}

TEST(ScenarioTypes, UnknownKeysAreRefusedInTheTableAndItsSubTables) {
  for (const ScenarioType* type : ScenarioTypes()) {
    std::vector<std::string> tables = {""};
    for (const ConfigKey& key : type->keys) {
      const std::size_t dot = key.name.find('.');
      if (dot != std::string_view::npos)
        tables.emplace_back(key.name.substr(0, dot));
    }
    for (const std::string& table : tables) {
      const std::string key = table.empty() ? "colour" : table + ".colour";
      ConfigResult r =
          ParseConfig(TableOf(*type, Line(key, "1")), "t.toml", FakeEnv());
      ASSERT_FALSE(r.config) << type->name << " accepted " << key;
      bool found = false;
      for (const ConfigError& e : r.errors) {
        found = found || (e.key == "scenarios.x." + key &&
                          e.message.find("unknown key") != std::string::npos);
      }
      EXPECT_TRUE(found) << AllErrors(r);
    }
  }
}

TEST(ScenarioTypes, AnotherTypesKeyIsAnUnknownKey) {
  ConfigResult r = ParseConfig(
      TableOf(*FindScenarioType("event_ingestion"), "think_time = \"1s\"\n"),
      "t.toml", FakeEnv());
  ASSERT_FALSE(r.config);
  EXPECT_EQ(r.errors[0].key, "scenarios.x.think_time");
  EXPECT_NE(r.errors[0].message.find("unknown key"), std::string::npos);
}

TEST(ScenarioTypes, AnUnknownTypeNamesEveryRegisteredType) {
  ConfigResult r = ParseConfig(
      "[target]\ntoken = \"t\"\n[scenarios.x]\ntype = \"browse\"\nrate = "
      "\"1/s\"\n",
      "t.toml", FakeEnv());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].ToString(),
            "t.toml:4:8: scenarios.x.type: unknown scenario type \"browse\"; "
            "use \"event_ingestion\", \"checkout\" or \"event_visibility\"");
}

TEST(ConfigKeySchema, ListsEveryTablesKeysOncePerLineInTheDocumentedForm) {
  const std::vector<std::string> keys = ConfigKeySchema();
  const std::set<std::string> unique(keys.begin(), keys.end());
  EXPECT_EQ(unique.size(), keys.size()) << "a key is listed twice";
  // The grammar docs/architecture.md gives: dotted segments, each a name or a
  // <placeholder>, either optionally restricted to a type with :TYPE, and []
  // after an array of tables.
  const std::regex segment(
      R"((<[a-z]+(:[a-z_]+)?>|[a-z_0-9]+(:[a-z_]+)?)(\[\])?)");
  for (const std::string& key : keys) {
    std::size_t at = 0;
    while (at <= key.size()) {
      std::size_t dot = key.find('.', at);
      if (dot == std::string::npos) dot = key.size();
      EXPECT_TRUE(std::regex_match(key.substr(at, dot - at), segment)) << key;
      at = dot + 1;
    }
  }
  for (const char* expected :
       {"target.base_url", "webhooks.register_allow_loopback", "cluster.shards",
        "scenarios.<name>.rate", "scenarios.<name>.schedule.type",
        "scenarios.<name>.schedule:ramp.over",
        "scenarios.<name>.schedule:steps.steps[].for",
        "scenarios.<name>.schedule:weekly.windows[].days",
        "scenarios.<name>.thresholds.<step>.error_ratio",
        "scenarios.<name:checkout>.funnel.confirm",
        "scenarios.<name:event_ingestion>.batch_size",
        "scenarios.<name:event_visibility>.search_margin"}) {
    EXPECT_TRUE(unique.count(expected)) << expected;
  }
  // Every type's every key is there.
  for (const ScenarioType* type : ScenarioTypes()) {
    for (const ConfigKey& key : type->keys) {
      EXPECT_TRUE(unique.count("scenarios.<name:" + std::string(type->name) +
                               ">." + std::string(key.name)))
          << key.name;
    }
  }
}

TEST(ConfigKeySchema, EveryListedSectionKeyIsReadByItsSection) {
  // Each fixed-path key (target.*, metrics.*, ...) set to a value of the
  // wrong type draws an error under its own path, never "unknown key".
  for (const std::string& key : ConfigKeySchema()) {
    if (key.rfind("scenarios.", 0) == 0) continue;
    const std::size_t dot = key.find('.');
    const std::string text =
        "[" + key.substr(0, dot) + "]\n" + key.substr(dot + 1) +
        " = [[1]]\n[target]\ntoken = \"t\"\n[scenarios.x]\ntype = "
        "\"event_ingestion\"\nrate = \"1/s\"\n";
    ConfigResult r = ParseConfig(
        key.rfind("target.", 0) == 0
            ? "[target]\n" + key.substr(dot + 1) +
                  " = [[1]]\n[scenarios.x]\ntype = \"event_ingestion\"\nrate "
                  "= \"1/s\"\n"
            : text,
        "t.toml", FakeEnv());
    for (const ConfigError& e : r.errors) {
      EXPECT_EQ(e.message.find("unknown key"), std::string::npos)
          << e.ToString();
    }
    EXPECT_FALSE(r.config) << key << " accepted [[1]]";
  }
}

}  // namespace
}  // namespace polar
