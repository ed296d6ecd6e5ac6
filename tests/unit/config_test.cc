#include "daemon/config.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/support/process.h"

namespace polar {
namespace {

EnvLookup Env(std::map<std::string, std::string> vars = {}) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

constexpr const char* kValid = R"(
[target]
base_url = "http://127.0.0.1:8000/"
token = "polar_oat_secret"
timeout = "5s"

[metrics]
listen = "127.0.0.1:0"

[scenarios.ingest]
type = "event_ingestion"
rate = "120/min"
batch_size = 7
external_customer_ids = ["a", "b"]
)";

TEST(Config, AValidFileFreezesIntoTheConfigStruct) {
  ConfigResult r = ParseConfig(kValid, "test.toml", Env());
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->target.base_url,
            "http://127.0.0.1:8000");  // trailing slash dropped
  EXPECT_EQ(r.config->target.timeout, std::chrono::seconds(5));
  EXPECT_EQ(r.config->metrics.listen.port, 0);
  ASSERT_EQ(r.config->scenarios.size(), 1u);
  const ScenarioConfig& s = r.config->scenarios[0];
  EXPECT_EQ(s.name, "ingest");
  EXPECT_DOUBLE_EQ(s.rate, 2.0);
  EXPECT_EQ(s.event_ingestion.batch_size, 7);
  EXPECT_EQ(s.event_ingestion.external_customer_ids,
            (std::vector<std::string>{"a", "b"}));
}

TEST(Config, EveryProblemIsReportedAtOnceWithLineColumnAndKey) {
  constexpr const char* kBad = R"([target]
token = "t"
timeout = "ten seconds"
colour = "blue"

[scenarios.ingest]
type = "event_ingestion"
rate = "fast"
batch_size = 0
)";
  ConfigResult r = ParseConfig(kBad, "bad.toml", Env());
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 4u);
  std::map<std::string, ConfigError> by_key;
  for (const auto& e : r.errors) by_key[e.key] = e;
  ASSERT_TRUE(by_key.count("target.timeout"));
  EXPECT_EQ(by_key["target.timeout"].line, 3);
  EXPECT_EQ(by_key["target.timeout"].column, 11);
  ASSERT_TRUE(by_key.count("target.colour"));
  EXPECT_NE(by_key["target.colour"].message.find("unknown key"),
            std::string::npos);
  ASSERT_TRUE(by_key.count("scenarios.ingest.rate"));
  EXPECT_EQ(by_key["scenarios.ingest.rate"].line, 8);
  ASSERT_TRUE(by_key.count("scenarios.ingest.batch_size"));
  EXPECT_NE(by_key["scenarios.ingest.batch_size"].message.find("out of range"),
            std::string::npos);
  EXPECT_EQ(by_key["target.timeout"].ToString().rfind(
                "bad.toml:3:11: target.timeout: ", 0),
            0u);
}

TEST(Config, SyntaxErrorsNameTheirPlace) {
  ConfigResult r = ParseConfig("[target\nbase_url = 1\n", "broken.toml", Env());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 1);
  EXPECT_EQ(r.errors[0].file, "broken.toml");
}

TEST(Config, LoadTestVariablesOverrideTheFile) {
  ConfigResult r =
      ParseConfig(kValid, "test.toml",
                  Env({{"LOAD_TEST_HOST", "http://10.0.0.1:8000"},
                       {"LOAD_TEST_API_TOKEN", "polar_oat_from_env"},
                       {"LOAD_TEST_EVENT_BATCH_SIZE", "10"},
                       {"LOAD_TEST_EVENT_EXTERNAL_CUSTOMER_IDS", "x, y,z"}}));
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->target.base_url, "http://10.0.0.1:8000");
  EXPECT_EQ(r.config->target.token, "polar_oat_from_env");
  EXPECT_EQ(r.config->scenarios[0].event_ingestion.batch_size, 10);
  EXPECT_EQ(r.config->scenarios[0].event_ingestion.external_customer_ids,
            (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(r.notes.size(), 4u);
}

TEST(Config, ABadEnvironmentValueIsAnErrorNotAClamp) {
  ConfigResult r = ParseConfig(kValid, "test.toml",
                               Env({{"LOAD_TEST_EVENT_BATCH_SIZE", "lots"}}));
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].key, "env LOAD_TEST_EVENT_BATCH_SIZE");
}

TEST(Config, TheTokenIsReadFromTokenFileWithoutItsNewline) {
  std::string dir = testing::TempDir();
  testing::WriteFile(dir + "/token", "polar_oat_filetoken\n");
  std::string text =
      "[target]\ntoken_file = \"" + dir +
      "/token\"\n[scenarios.a]\ntype = \"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult r = ParseConfig(text, "t.toml", Env());
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  EXPECT_EQ(r.config->target.token, "polar_oat_filetoken");
}

TEST(Config, AnUnreadableTokenFileIsAnErrorThatDoesNotLeakContents) {
  std::string text =
      "[target]\ntoken_file = \"/nonexistent/token\"\n[scenarios.a]\ntype = "
      "\"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult r = ParseConfig(text, "t.toml", Env());
  EXPECT_FALSE(r.config);
  bool found = false;
  for (const auto& e : r.errors) found = found || e.key == "target.token_file";
  EXPECT_TRUE(found);
}

TEST(Config, ProductionIsRefusedUnlessAllowed) {
  std::string text =
      "[target]\nbase_url = \"https://api.polar.sh\"\ntoken = "
      "\"t\"\n[scenarios.a]\ntype = "
      "\"event_ingestion\"\nrate = \"1/s\"\n";
  EXPECT_FALSE(ParseConfig(text, "t.toml", Env()).config);
  std::string allowed = text;
  allowed.insert(allowed.find("token"), "allow_production = true\n");
  EXPECT_TRUE(ParseConfig(allowed, "t.toml", Env()).config);
}

TEST(Config, AMissingTokenIsAnError) {
  std::string text =
      "[scenarios.a]\ntype = \"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult r = ParseConfig(text, "t.toml", Env());
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].key, "target.token");
}

TEST(Config, TheShutdownGraceIsConfigurableAndBounded) {
  const std::string base =
      "[target]\ntoken = \"t\"\n[scenarios.a]\ntype = "
      "\"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult defaults = ParseConfig(base, "t.toml", Env());
  ASSERT_TRUE(defaults.config);
  EXPECT_EQ(defaults.config->daemon.shutdown_grace, std::chrono::seconds(10));

  ConfigResult set = ParseConfig(
      base + "[daemon]\nshutdown_grace = \"2500ms\"\n", "t.toml", Env());
  ASSERT_TRUE(set.config);
  EXPECT_EQ(set.config->daemon.shutdown_grace, std::chrono::milliseconds(2500));

  ConfigResult bad =
      ParseConfig(base + "[daemon]\nshutdown_grace = \"1h\"\nwatchdog = true\n",
                  "t.toml", Env());
  EXPECT_FALSE(bad.config);
  ASSERT_EQ(bad.errors.size(), 2u);
  EXPECT_EQ(bad.errors[0].key, "daemon.watchdog");  // unknown keys first
  EXPECT_EQ(
      bad.errors[1].ToString(),
      "t.toml:7:18: daemon.shutdown_grace: 1h is out of range [0ms, 10m]");
}

TEST(Config, SecretsAreHandedBackEvenWhenTheFileIsInvalid) {
  // The caller registers them with the log redactor before printing errors.
  ConfigResult r = ParseConfig(
      "[target]\ntoken = \"polar_oat_abcdef\"\ntimeout = \"soon\"\n", "t.toml",
      Env());
  EXPECT_FALSE(r.config);
  EXPECT_EQ(r.secrets, (std::vector<std::string>{"polar_oat_abcdef"}));
}

TEST(Config, TheShippedExampleConfigIsValid) {
  ConfigResult r =
      LoadConfig(std::string(POLAR_SOURCE_DIR) + "/packaging/polar-loadd.toml",
                 Env({{"LOAD_TEST_API_TOKEN", "polar_oat_x"}}));
  for (const auto& e : r.errors) ADD_FAILURE() << e.ToString();
  EXPECT_TRUE(r.config);
}

}  // namespace
}  // namespace polar
