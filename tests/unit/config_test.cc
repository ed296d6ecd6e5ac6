#include "daemon/config/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "scenarios/checkout.h"
#include "scenarios/event_ingestion.h"
#include "scenarios/event_visibility.h"
#include "tests/support/process.h"
#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using testing::FakeEnv;

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
  ConfigResult r = ParseConfig(kValid, "test.toml", FakeEnv());
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->target.base_url,
            "http://127.0.0.1:8000");  // trailing slash dropped
  EXPECT_EQ(r.config->target.timeout, std::chrono::seconds(5));
  EXPECT_EQ(r.config->metrics.listen.port, 0);
  ASSERT_EQ(r.config->scenarios.size(), 1u);
  const ScenarioConfig& s = r.config->scenarios[0];
  EXPECT_EQ(s.name, "ingest");
  const auto& options = s.OptionsAs<EventIngestionOptions>();
  EXPECT_EQ(s.schedule.kind, ScheduleKind::kConstant);
  EXPECT_DOUBLE_EQ(s.schedule.rate, 2.0);
  EXPECT_EQ(s.arrivals, ArrivalKind::kUniform);
  EXPECT_TRUE(s.honour_retry_after);
  EXPECT_EQ(options.batch_size, 7);
  EXPECT_EQ(options.external_customer_ids,
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
  ConfigResult r = ParseConfig(kBad, "bad.toml", FakeEnv());
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
  ConfigResult r =
      ParseConfig("[target\nbase_url = 1\n", "broken.toml", FakeEnv());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 1);
  EXPECT_EQ(r.errors[0].file, "broken.toml");
}

TEST(Config, LoadTestVariablesOverrideTheFile) {
  ConfigResult r = ParseConfig(
      kValid, "test.toml",
      FakeEnv({{"LOAD_TEST_HOST", "http://10.0.0.1:8000"},
               {"LOAD_TEST_API_TOKEN", "polar_oat_from_env"},
               {"LOAD_TEST_EVENT_BATCH_SIZE", "10"},
               {"LOAD_TEST_EVENT_EXTERNAL_CUSTOMER_IDS", "x, y,z"}}));
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->target.base_url, "http://10.0.0.1:8000");
  EXPECT_EQ(r.config->target.token, "polar_oat_from_env");
  EXPECT_EQ(
      r.config->scenarios[0].OptionsAs<EventIngestionOptions>().batch_size, 10);
  EXPECT_EQ(r.config->scenarios[0]
                .OptionsAs<EventIngestionOptions>()
                .external_customer_ids,
            (std::vector<std::string>{"x", "y", "z"}));
  int overrides = 0;
  for (const auto& note : r.notes)
    overrides += note.find("overrides") != std::string::npos;
  EXPECT_EQ(overrides, 4);
}

TEST(Config, ABadEnvironmentValueIsAnErrorNotAClamp) {
  ConfigResult r = ParseConfig(
      kValid, "test.toml", FakeEnv({{"LOAD_TEST_EVENT_BATCH_SIZE", "lots"}}));
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
  ConfigResult r = ParseConfig(text, "t.toml", FakeEnv());
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  EXPECT_EQ(r.config->target.token, "polar_oat_filetoken");
}

TEST(Config, AnUnreadableTokenFileIsAnErrorThatDoesNotLeakContents) {
  std::string text =
      "[target]\ntoken_file = \"/nonexistent/token\"\n[scenarios.a]\ntype = "
      "\"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult r = ParseConfig(text, "t.toml", FakeEnv());
  EXPECT_FALSE(r.config);
  bool found = false;
  for (const auto& e : r.errors) found = found || e.key == "target.token_file";
  EXPECT_TRUE(found);
}

// A token_file naming an endless or huge file is an error, not an attempt to
// read it all into memory on the event loop.
TEST(Config, ATokenFileThatNeverEndsIsAnErrorNotAHang) {
  std::string text =
      "[target]\ntoken_file = \"/dev/zero\"\n[scenarios.a]\ntype = "
      "\"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult r = ParseConfig(text, "t.toml", FakeEnv());
  EXPECT_FALSE(r.config);
  std::string message;
  for (const auto& e : r.errors)
    if (e.key == "target.token_file") message = e.message;
  EXPECT_EQ(message, "/dev/zero is larger than 64 KiB; not a token");
}

TEST(Config, AConfigFileOverOneMebibyteIsRefused) {
  ConfigResult r = LoadConfig("/dev/zero", FakeEnv());
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].ToString(),
            "/dev/zero: (file): the config file is larger than 1 MiB");
}

// Listeners bind loopback unless the config says otherwise.
TEST(Config, TheMetricsListenerDefaultsToLoopback) {
  MetricsConfig defaults;
  EXPECT_TRUE(defaults.listen.IsLoopback());
  EXPECT_EQ(defaults.listen.ToString(), "127.0.0.1:9477");
  std::string text =
      "[target]\ntoken = \"polar_oat_x\"\n[scenarios.a]\ntype = "
      "\"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult r = ParseConfig(text, "t.toml", FakeEnv());
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  EXPECT_EQ(r.config->metrics.listen.ToString(), "127.0.0.1:9477");
}

// The Host allow-list against DNS rebinding: names are kept lower-case
// without a trailing dot; anything else is refused where it stands.
TEST(Config, AllowedHostsAreHostNamesAndEveryBadOneIsNamedWithItsPlace) {
  const std::string base =
      "[target]\ntoken = \"polar_oat_x\"\n[scenarios.a]\ntype = "
      "\"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult good =
      ParseConfig(base +
                      "[metrics]\nallowed_hosts = [\"LoadBox-1.Internal.\", "
                      "\"grafana_proxy\"]\n",
                  "t.toml", FakeEnv());
  ASSERT_TRUE(good.config) << good.errors[0].ToString();
  EXPECT_EQ(good.config->metrics.allowed_hosts,
            (std::vector<std::string>{"loadbox-1.internal", "grafana_proxy"}));
  ConfigResult none = ParseConfig(base, "t.toml", FakeEnv());
  ASSERT_TRUE(none.config);
  EXPECT_TRUE(none.config->metrics.allowed_hosts.empty());

  // Line 7 is the allowed_hosts line: a port, a space, a number.
  ConfigResult bad = ParseConfig(
      base +
          "[metrics]\nallowed_hosts = [\"ok.example\", \"a.example:9477\", "
          "\"a b\", 7]\n",
      "bad.toml", FakeEnv());
  EXPECT_FALSE(bad.config);
  ASSERT_EQ(bad.errors.size(), 3u);
  for (const ConfigError& e : bad.errors) {
    EXPECT_EQ(e.key, "metrics.allowed_hosts");
    EXPECT_EQ(e.line, 7);
    EXPECT_NE(e.message.find("without a port"), std::string::npos);
  }
  EXPECT_EQ(bad.errors[0].column, 32);

  ConfigResult not_list =
      ParseConfig(base + "[metrics]\nallowed_hosts = \"loadbox-1.internal\"\n",
                  "bad.toml", FakeEnv());
  ASSERT_EQ(not_list.errors.size(), 1u);
  EXPECT_EQ(not_list.errors[0].ToString().rfind(
                "bad.toml:7:17: metrics.allowed_hosts: must be a list", 0),
            0u);
}

TEST(Config, TheShippedConfigListensOnLoopbackOnly) {
  ConfigResult r =
      LoadConfig(POLAR_SOURCE_DIR "/packaging/polar-loadd.toml",
                 FakeEnv({{"LOAD_TEST_API_TOKEN", "polar_oat_test"}}));
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  EXPECT_TRUE(r.config->metrics.listen.IsLoopback())
      << r.config->metrics.listen.ToString();
}

// The issue an operator hit: after storing the token as the docs say, the
// documented check must pass before the service ever started, when
// /run/credentials/polar-loadd.service/ does not exist.
TEST(Config, TheShippedConfigPassesTheCheckBeforeTheFirstStart) {
  const std::string store = testing::TempDir() + "credstore-check";
  std::filesystem::create_directories(store);
  std::ofstream(store + "/polar-token") << "polar_oat_from_the_store\n";
  CredentialStoreOptions options;
  options.plain_dirs = {store};
  options.encrypted_dirs = {};
  ConfigResult r = LoadConfig(POLAR_SOURCE_DIR "/packaging/polar-loadd.toml",
                              FakeEnv(), CredentialStoreReader(options));
  for (const auto& e : r.errors) ADD_FAILURE() << e.ToString();
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->target.token, "polar_oat_from_the_store");
  bool noted = false;
  for (const auto& n : r.notes)
    noted = noted || n.find(store + "/polar-token") != std::string::npos;
  EXPECT_TRUE(noted) << "no note names the file that was checked";
  // Without the credential the check fails and says where it looked.
  std::filesystem::remove(store + "/polar-token");
  r = LoadConfig(POLAR_SOURCE_DIR "/packaging/polar-loadd.toml", FakeEnv(),
                 CredentialStoreReader(options));
  ASSERT_FALSE(r.config);
  std::string message;
  for (const auto& e : r.errors)
    if (e.key == "target.token_file") message = e.message;
  EXPECT_NE(message.find("credential polar-token"), std::string::npos)
      << message;
  EXPECT_NE(message.find(store), std::string::npos) << message;
}

// Under systemd the daemon reads the same path from the unit's own folder, so
// one file serves polar-loadd.service and every polar-loadd@N.service.
TEST(Config, TheDaemonReadsCredentialsFromItsUnitsFolder) {
  const std::string unit = testing::TempDir() + "credentials-unit";
  std::filesystem::create_directories(unit);
  std::ofstream(unit + "/polar-token") << "polar_oat_of_the_unit";
  ConfigResult r = LoadConfig(POLAR_SOURCE_DIR "/packaging/polar-loadd.toml",
                              FakeEnv({{"CREDENTIALS_DIRECTORY", unit}}));
  for (const auto& e : r.errors) ADD_FAILURE() << e.ToString();
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->target.token, "polar_oat_of_the_unit");
  // Started without systemd's credentials, it says why it cannot read it.
  r = LoadConfig(POLAR_SOURCE_DIR "/packaging/polar-loadd.toml", FakeEnv());
  ASSERT_FALSE(r.config);
  std::string message;
  for (const auto& e : r.errors)
    if (e.key == "target.token_file") message = e.message;
  EXPECT_NE(message.find("$CREDENTIALS_DIRECTORY is not set"),
            std::string::npos)
      << message;
}

TEST(Config, ProductionIsRefusedUnlessAllowed) {
  std::string text =
      "[target]\nbase_url = \"https://api.polar.sh\"\ntoken = "
      "\"t\"\n[scenarios.a]\ntype = "
      "\"event_ingestion\"\nrate = \"1/s\"\n";
  EXPECT_FALSE(ParseConfig(text, "t.toml", FakeEnv()).config);
  std::string allowed = text;
  allowed.insert(allowed.find("token"), "allow_production = true\n");
  EXPECT_TRUE(ParseConfig(allowed, "t.toml", FakeEnv()).config);
}

TEST(Config, TheHttpClientIsAutoByDefaultAndOnlyAutoOrCurl) {
  ConfigResult r = ParseConfig(kValid, "test.toml", FakeEnv());
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->target.http_client, "auto");
  std::string text = kValid;
  text.insert(text.find("timeout"), "http_client = \"curl\"\n");
  r = ParseConfig(text, "test.toml", FakeEnv());
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->target.http_client, "curl");
  text.replace(text.find("\"curl\""), 6, "\"h2c\"");
  r = ParseConfig(text, "test.toml", FakeEnv());
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].key, "target.http_client");
  EXPECT_EQ(r.errors[0].line, 5);
}

TEST(Config, AMissingTokenIsAnError) {
  std::string text =
      "[scenarios.a]\ntype = \"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult r = ParseConfig(text, "t.toml", FakeEnv());
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].key, "target.token");
}

TEST(Config, TheShutdownGraceIsConfigurableAndBounded) {
  const std::string base =
      "[target]\ntoken = \"t\"\n[scenarios.a]\ntype = "
      "\"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult defaults = ParseConfig(base, "t.toml", FakeEnv());
  ASSERT_TRUE(defaults.config);
  EXPECT_EQ(defaults.config->daemon.shutdown_grace, std::chrono::seconds(10));

  ConfigResult set = ParseConfig(
      base + "[daemon]\nshutdown_grace = \"2500ms\"\n", "t.toml", FakeEnv());
  ASSERT_TRUE(set.config);
  EXPECT_EQ(set.config->daemon.shutdown_grace, std::chrono::milliseconds(2500));

  ConfigResult bad =
      ParseConfig(base + "[daemon]\nshutdown_grace = \"1h\"\nwatchdog = true\n",
                  "t.toml", FakeEnv());
  EXPECT_FALSE(bad.config);
  ASSERT_EQ(bad.errors.size(), 2u);
  EXPECT_EQ(bad.errors[0].key, "daemon.watchdog");  // unknown keys first
  EXPECT_EQ(
      bad.errors[1].ToString(),
      "t.toml:7:18: daemon.shutdown_grace: 1h is out of range [0ms, 10m]");
}

TEST(Config, TheTimerSlackDefaultsToAMillisecondAndIsBounded) {
  const std::string base =
      "[target]\ntoken = \"t\"\n[scenarios.a]\ntype = "
      "\"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult defaults = ParseConfig(base, "t.toml", FakeEnv());
  ASSERT_TRUE(defaults.config);
  EXPECT_EQ(defaults.config->daemon.timer_slack, std::chrono::milliseconds(1));

  ConfigResult off = ParseConfig(base + "[daemon]\ntimer_slack = \"0s\"\n",
                                 "t.toml", FakeEnv());
  ASSERT_TRUE(off.config);
  EXPECT_EQ(off.config->daemon.timer_slack, Duration::zero());

  ConfigResult bad = ParseConfig(base + "[daemon]\ntimer_slack = \"50ms\"\n",
                                 "t.toml", FakeEnv());
  EXPECT_FALSE(bad.config);
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_EQ(
      bad.errors[0].ToString(),
      "t.toml:7:15: daemon.timer_slack: 50ms is out of range [0ms, 10ms]");
}

TEST(Config, SecretsAreHandedBackEvenWhenTheFileIsInvalid) {
  // The caller registers them with the log redactor before printing errors.
  ConfigResult r = ParseConfig(
      "[target]\ntoken = \"polar_oat_abcdef\"\ntimeout = \"soon\"\n", "t.toml",
      FakeEnv());
  EXPECT_FALSE(r.config);
  EXPECT_EQ(r.secrets, (std::vector<std::string>{"polar_oat_abcdef"}));
}

TEST(Config, TheShippedExampleConfigIsValid) {
  ConfigResult r =
      LoadConfig(std::string(POLAR_SOURCE_DIR) + "/packaging/polar-loadd.toml",
                 FakeEnv({{"LOAD_TEST_API_TOKEN", "polar_oat_x"}}));
  for (const auto& e : r.errors) ADD_FAILURE() << e.ToString();
  EXPECT_TRUE(r.config);
}

std::string WithScenario(const std::string& body) {
  return std::string(R"(
[target]
token = "t"
[scenarios.ingest]
type = "event_ingestion"
)") + body;
}

TEST(ConfigSchedule, ARampTableBecomesARampSchedule) {
  auto r = ParseConfig(WithScenario(R"(arrivals = "poisson"
[scenarios.ingest.schedule]
type = "ramp"
from = "1/s"
to = "600/min"
over = "10m"
)"),
                       "t.toml", FakeEnv());
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  const auto& s = r.config->scenarios[0];
  EXPECT_EQ(s.arrivals, ArrivalKind::kPoisson);
  EXPECT_EQ(s.schedule.kind, ScheduleKind::kRamp);
  EXPECT_DOUBLE_EQ(s.schedule.from, 1);
  EXPECT_DOUBLE_EQ(s.schedule.to, 10);
  EXPECT_EQ(s.schedule.over, std::chrono::minutes(10));
}

TEST(ConfigSchedule, StepsWeeklyAndDailyTablesParse) {
  auto steps = ParseConfig(WithScenario(R"(
[scenarios.ingest.schedule]
type = "steps"
repeat = true
steps = [{ rate = "5/s", for = "1m" }, { rate = "50/s", for = "30s" }]
)"),
                           "t.toml", FakeEnv());
  ASSERT_TRUE(steps.config) << steps.errors[0].ToString();
  EXPECT_EQ(steps.config->scenarios[0].schedule.steps.size(), 2u);
  EXPECT_TRUE(steps.config->scenarios[0].schedule.repeat);

  auto weekly = ParseConfig(WithScenario(R"(
[scenarios.ingest.schedule]
type = "weekly"
time_zone = "Europe/Berlin"
otherwise = "1/s"
windows = [
  { days = "Mon-Fri", hours = "09:00-18:00", rate = "5/s" },
  { days = "Sat,Sun", hours = "22:00-06:00", rate = "2/s" },
]
)"),
                            "t.toml", FakeEnv());
  ASSERT_TRUE(weekly.config) << weekly.errors[0].ToString();
  const auto& w = weekly.config->scenarios[0].schedule;
  EXPECT_EQ(w.zone->name(), "Europe/Berlin");
  ASSERT_EQ(w.windows.size(), 2u);
  EXPECT_EQ(w.windows[0].days, 0b0011111);
  EXPECT_EQ(w.windows[0].start_minute, 9 * 60);
  EXPECT_EQ(w.windows[1].days, 0b1100000);
  EXPECT_EQ(w.windows[1].end_minute, 6 * 60);
  EXPECT_DOUBLE_EQ(w.rate, 1);

  auto daily = ParseConfig(WithScenario(R"(
[scenarios.ingest.schedule]
type = "daily"
time_zone = "UTC"
rate = "10/s"
hourly = [0, 0, 0, 0, 0, 0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.5, 0, 0, 0, 2]
)"),
                           "t.toml", FakeEnv());
  ASSERT_TRUE(daily.config) << daily.errors[0].ToString();
  EXPECT_DOUBLE_EQ(daily.config->scenarios[0].schedule.hourly[23], 2);
  EXPECT_DOUBLE_EQ(daily.config->scenarios[0].schedule.PeakRate(), 20);
}

TEST(ConfigSchedule, ScheduleMistakesAreReportedTogetherWithTheirKeys) {
  auto r = ParseConfig(WithScenario(R"(rate = "1/s"
arrivals = "bursty"
[scenarios.ingest.schedule]
type = "weekly"
time_zone = "Mars/Olympus"
otherwise = "1/s"
windows = [{ days = "Mon-Fry", hours = "9-17", rate = "5/s" }]
)"),
                       "t.toml", FakeEnv());
  EXPECT_FALSE(r.config);
  std::map<std::string, ConfigError> by_key;
  for (const auto& e : r.errors) by_key[e.key] = e;
  EXPECT_TRUE(by_key.count("scenarios.ingest.rate"));  // rate and schedule
  EXPECT_TRUE(by_key.count("scenarios.ingest.arrivals"));
  EXPECT_TRUE(by_key.count("scenarios.ingest.schedule.time_zone"));
  EXPECT_TRUE(by_key.count("scenarios.ingest.schedule.windows[0].days"));
  EXPECT_TRUE(by_key.count("scenarios.ingest.schedule.windows[0].hours"));
  EXPECT_GT(by_key["scenarios.ingest.schedule.windows[0].days"].line, 0);
  EXPECT_EQ(r.errors.size(), 5u);
}

TEST(ConfigSchedule, APeakAboveTheMaximumRateIsAnError) {
  auto r = ParseConfig(WithScenario(R"(
[scenarios.ingest.schedule]
type = "daily"
rate = "1000/s"
hourly = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 200]
)"),
                       "t.toml", FakeEnv());
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("100000/s"), std::string::npos);
}

TEST(ConfigThresholds, StepTablesAndLocustVariablesBecomeThresholds) {
  auto r = ParseConfig(WithScenario(R"(rate = "1/s"
max_retry_after = "5m"
honour_retry_after = false
[scenarios.ingest.thresholds.ingest]
p99 = "800ms"
p50 = "100ms"
error_ratio = 0.01
)"),
                       "t.toml", FakeEnv());
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  const auto& s = r.config->scenarios[0];
  EXPECT_FALSE(s.honour_retry_after);
  EXPECT_EQ(s.max_retry_after, std::chrono::minutes(5));
  ASSERT_EQ(s.thresholds.size(), 3u);
  EXPECT_EQ(s.thresholds[0].source, "scenarios.ingest.thresholds.ingest.p50");

  auto env =
      ParseConfig(WithScenario(R"(rate = "1/s"
[scenarios.ingest.thresholds.ingest]
p99 = "800ms"
)"),
                  "t.toml",
                  FakeEnv({{"LOAD_TEST_EVENT_INGEST_THRESHOLD", "250"},
                           {"LOAD_TEST_CHECKOUT_CREATE_THRESHOLD", "2000"}}));
  ASSERT_TRUE(env.config) << env.errors[0].ToString();
  const auto& t = env.config->scenarios[0].thresholds;
  // The variable replaces the file's p99 on the ingest step; the checkout
  // variable names a step this scenario does not have.
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].metric, ThresholdMetric::kLatencyP99);
  EXPECT_DOUBLE_EQ(t[0].limit, 0.25);
  EXPECT_EQ(t[0].source, "LOAD_TEST_EVENT_INGEST_THRESHOLD");
}

TEST(ConfigThresholds, AnUnknownStepOrBadLimitIsAnError) {
  auto r =
      ParseConfig(WithScenario(R"(rate = "1/s"
[scenarios.ingest.thresholds.confirm]
p99 = "1s"
[scenarios.ingest.thresholds.ingest]
p99 = "soon"
error_ratio = 5
)"),
                  "t.toml", FakeEnv({{"LOAD_TEST_LIST_THRESHOLD", "abc"}}));
  EXPECT_FALSE(r.config);
  std::map<std::string, ConfigError> by_key;
  for (const auto& e : r.errors) by_key[e.key] = e;
  EXPECT_TRUE(by_key.count("scenarios.ingest.thresholds.confirm"));
  EXPECT_TRUE(by_key.count("scenarios.ingest.thresholds.ingest.p99"));
  EXPECT_TRUE(by_key.count("scenarios.ingest.thresholds.ingest.error_ratio"));
  EXPECT_TRUE(by_key.count("env LOAD_TEST_LIST_THRESHOLD"));
}

}  // namespace
}  // namespace polar

namespace polar {
namespace {

constexpr const char* kScenarios = R"(
[target]
base_url = "http://127.0.0.1:8000"
token = "polar_oat_secret"

[scenarios.checkout]
type = "checkout"
rate = "2/s"
product_id = "77d5072c-f7be-48fd-8bd4-abf9451d0bf0"
create_form = "product_id"
customer_email = "petru+loadtest@polar.sh"
customer_pool = 10
billing_address = { country = "US", line1 = "1 Main St", city = "Springfield", state = "IL", postal_code = "62701" }
funnel = { update = 0.6, status = 0.4, confirm = 0.2 }
think_time = "250ms"
completion = "poll"
poll_interval = "200ms"
completion_deadline = "30s"

[scenarios.checkout.thresholds.confirm]
p99 = "5500ms"

[scenarios.visible]
type = "event_visibility"
rate = "6/min"
probe_customer_id = "probe"
event_name = "probe.event"
poll_interval = "500ms"
deadline = "2m"
timestamp_backdate = "3s"
search_margin = "10m"

[scenarios.ingest]
type = "event_ingestion"
rate = "1/s"
timestamp_backdate = "2s"
)";

const ScenarioConfig& Named(const Config& c, const std::string& name) {
  for (const auto& s : c.scenarios)
    if (s.name == name) return s;
  throw std::runtime_error("no scenario " + name);
}

TEST(Config, CheckoutVisibilityAndIngestionKeysFreezeIntoTheirOptions) {
  ConfigResult r = ParseConfig(kScenarios, "s.toml", FakeEnv());
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  const auto& c = Named(*r.config, "checkout");
  EXPECT_EQ(c.type->name, "checkout");
  const auto& co = c.OptionsAs<CheckoutOptions>();
  EXPECT_EQ(co.product_id, "77d5072c-f7be-48fd-8bd4-abf9451d0bf0");
  EXPECT_EQ(co.create_form, CreateForm::kProductId);
  EXPECT_EQ(co.customer_email, "petru+loadtest@polar.sh");
  EXPECT_EQ(co.customer_pool, 10);
  ASSERT_TRUE(co.billing_address);
  EXPECT_EQ(co.billing_address->state, "IL");
  EXPECT_DOUBLE_EQ(co.update_ratio, 0.6);
  EXPECT_DOUBLE_EQ(co.status_ratio, 0.4);
  EXPECT_DOUBLE_EQ(co.confirm_ratio, 0.2);
  EXPECT_EQ(co.think_time, std::chrono::milliseconds(250));
  EXPECT_EQ(co.completion, CompletionMode::kPoll);
  EXPECT_EQ(co.poll_interval, std::chrono::milliseconds(200));
  EXPECT_EQ(co.completion_deadline, std::chrono::seconds(30));
  ASSERT_EQ(c.thresholds.size(), 1u);
  EXPECT_EQ(c.thresholds[0].step, "confirm");

  const auto& v = Named(*r.config, "visible");
  EXPECT_EQ(v.type->name, "event_visibility");
  const auto& vo = v.OptionsAs<EventVisibilityOptions>();
  EXPECT_EQ(vo.probe_customer_id, "probe");
  EXPECT_EQ(vo.event_name, "probe.event");
  EXPECT_EQ(vo.poll_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(vo.deadline, std::chrono::minutes(2));
  EXPECT_EQ(vo.timestamp_backdate, std::chrono::seconds(3));
  EXPECT_EQ(vo.search_margin, std::chrono::minutes(10));

  EXPECT_EQ(Named(*r.config, "ingest")
                .OptionsAs<EventIngestionOptions>()
                .timestamp_backdate,
            std::chrono::seconds(2));
  EXPECT_TRUE(r.warnings.empty());
}

TEST(Config, CheckoutDefaultsAreTheSeedsFunnelAndADeliverableDomain) {
  ConfigResult r = ParseConfig(R"(
[target]
token = "t"
[scenarios.c]
type = "checkout"
rate = "1/s"
product_id = "77d5072c-f7be-48fd-8bd4-abf9451d0bf0"
billing_address = false
)",
                               "d.toml", FakeEnv());
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  const CheckoutOptions& o =
      r.config->scenarios[0].OptionsAs<CheckoutOptions>();
  EXPECT_DOUBLE_EQ(o.update_ratio, 0.5);
  EXPECT_DOUBLE_EQ(o.status_ratio, 0.3);
  EXPECT_DOUBLE_EQ(o.confirm_ratio, 0.1);
  EXPECT_EQ(o.customer_email, "loadtest@polar.sh");
  EXPECT_EQ(o.create_form, CreateForm::kProducts);
  EXPECT_EQ(o.completion, CompletionMode::kStream);
  EXPECT_FALSE(o.billing_address) << "false sends none";
}

TEST(Config, TheLocustVariablesSetProductAndCustomerEmail) {
  ConfigResult r = ParseConfig(
      kScenarios, "s.toml",
      FakeEnv({{"LOAD_TEST_PRODUCT_ID", "a6e925e2-44c6-401e-9c9f-8bcc73ed4d8c"},
               {"LOAD_TEST_CUSTOMER_EMAIL", "ops@acme.io"}}));
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  const auto& c = Named(*r.config, "checkout");
  EXPECT_EQ(c.OptionsAs<CheckoutOptions>().product_id,
            "a6e925e2-44c6-401e-9c9f-8bcc73ed4d8c");
  EXPECT_EQ(c.OptionsAs<CheckoutOptions>().customer_email, "ops@acme.io");
  // A product id from the environment alone is enough.
  ConfigResult bare = ParseConfig(
      R"(
[target]
token = "t"
[scenarios.c]
type = "checkout"
rate = "1/s"
)",
      "b.toml",
      FakeEnv(
          {{"LOAD_TEST_PRODUCT_ID", "a6e925e2-44c6-401e-9c9f-8bcc73ed4d8c"}}));
  EXPECT_TRUE(bare.errors.empty());
}

TEST(Config, CheckoutMistakesAreReportedWithTheirKeys) {
  ConfigResult r = ParseConfig(R"([target]
token = "t"
[scenarios.c]
type = "checkout"
rate = "1/s"
product_id = "not-a-uuid"
customer_email = "load@example.com"
funnel = { update = 0.2, status = 0.5, confirm = 1.5 }
billing_address = { country = "US" }
completion = "webhook"
create_form = "price"
think_time = "forever"
colour = "red"
[scenarios.c.thresholds.ingest]
p99 = "1s"
[scenarios.v]
type = "event_visibility"
rate = "1/s"
event_name = ""
deadline = "0s"
)",
                               "bad.toml", FakeEnv());
  EXPECT_FALSE(r.config);
  std::string all;
  for (const auto& e : r.errors) all += e.ToString() + "\n";
  for (const char* want :
       {"bad.toml:6:14: scenarios.c.product_id: \"not-a-uuid\" is not a "
        "product id",
        "bad.toml:7:18: scenarios.c.customer_email: \"load@example.com\" "
        "example.com is a special-use domain",
        "scenarios.c.funnel.confirm: must be a share in [0, 1]",
        "scenarios.c.funnel: shares of created checkouts",
        "scenarios.c.billing_address: a US address needs line1",
        "scenarios.c.completion: \"webhook\" is not stream or poll",
        "scenarios.c.create_form: \"price\" is not products or product_id",
        "scenarios.c.think_time:", "scenarios.c.colour: unknown key",
        "scenarios.c.thresholds.ingest: this scenario has no step \"ingest\"; "
        "its steps: create, update, status, confirm, stream, get",
        "scenarios.v.event_name: must be 1-128 characters",
        "scenarios.v.deadline: 0s is out of range"}) {
    EXPECT_NE(all.find(want), std::string::npos) << want << "\nin:\n" << all;
  }
  ConfigResult missing = ParseConfig(R"([target]
token = "t"
[scenarios.c]
type = "checkout"
rate = "1/s"
)",
                                     "m.toml", FakeEnv());
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_NE(missing.errors[0].ToString().find(
                "scenarios.c.product_id: missing; the id of the product"),
            std::string::npos)
      << missing.errors[0].ToString();
  ConfigResult bad_env =
      ParseConfig(kScenarios, "s.toml",
                  FakeEnv({{"LOAD_TEST_CUSTOMER_EMAIL", "me@shop.test"}}));
  ASSERT_FALSE(bad_env.errors.empty());
  EXPECT_EQ(bad_env.errors[0].key, "env LOAD_TEST_CUSTOMER_EMAIL");
}

// Polar's limits per bucket (daemon/config/polar_limits.h): against sandbox
// and production a limit the config would trip is an error naming it.
std::string Limits(const std::string& url, const std::string& checkout,
                   const std::string& more = "") {
  return R"(
[target]
token = "polar_oat_t"
base_url = ")" +
         url + R"("
)" + more +
         R"(
[scenarios.c]
type = "checkout"
product_id = "77d5072c-f7be-48fd-8bd4-abf9451d0bf0"
)" + checkout +
         R"(
[scenarios.i]
type = "event_ingestion"
rate = "30/min"
)";
}

std::string Joined(const ConfigResult& r) {
  std::string all;
  for (const auto& e : r.errors) all += e.ToString() + "\n";
  return all;
}

TEST(Config, AConfirmRateOverSandboxsLimitsIsRefusedNamingTheLimit) {
  // 60 checkouts/min, a tenth confirming: 6/min on average, up to 16 in a
  // minute, 360 an hour: both confirm limits.
  ConfigResult r =
      ParseConfig(Limits("https://sandbox-api.polar.sh", "rate = \"1/s\""),
                  "w.toml", FakeEnv());
  EXPECT_FALSE(r.config);
  const std::string all = Joined(r);
  EXPECT_NE(all.find("w.toml:4:12: target.base_url: Polar's sandbox allows 6 "
                     "requests per minute from this load box's IP, checkout "
                     "confirms"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("allows 20 requests per hour from this load box's IP, "
                     "checkout confirms, then refuses every request of that "
                     "IP, on every route, for 30 minutes"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("target.allow_over_limit = true"), std::string::npos);
  // The explicit key turns them into warnings.
  ConfigResult allowed =
      ParseConfig(Limits("https://sandbox-api.polar.sh", "rate = \"1/s\"",
                         "allow_over_limit = true"),
                  "w.toml", FakeEnv());
  ASSERT_TRUE(allowed.config) << Joined(allowed);
  EXPECT_EQ(allowed.warnings.size(), 2u);
}

TEST(Config, TheHourlyConfirmLimitCountsTheFunnelsRandomDraws) {
  // 3 checkouts/min with a tenth confirming is 18 an hour on average, but
  // the draws put more than 20 in an hour often: refused.
  ConfigResult random =
      ParseConfig(Limits("https://sandbox-api.polar.sh", "rate = \"3/min\""),
                  "w.toml", FakeEnv());
  EXPECT_FALSE(random.config);
  EXPECT_NE(Joined(random).find("18.0 on average at their peak, and up to 35 "
                                "in any hour"),
            std::string::npos)
      << Joined(random);
  // Every flow confirming at 15/h: exactly 15 in any hour.
  ConfigResult exact = ParseConfig(
      Limits("https://sandbox-api.polar.sh",
             "rate = \"15/h\"\n"
             "funnel = { update = 1.0, status = 1.0, confirm = 1.0 }"),
      "w.toml", FakeEnv());
  ASSERT_TRUE(exact.config) << Joined(exact);
  EXPECT_TRUE(exact.warnings.empty());
  std::string notes;
  for (const auto& n : exact.notes) notes += n + "\n";
  EXPECT_NE(notes.find("checkout confirms per hour: 15.0 on average, at most "
                       "15; Polar's sandbox allows 20"),
            std::string::npos)
      << notes;
  EXPECT_NE(notes.find("the organization (every request with the token) per "
                       "minute: 30.2 on average, at most 31"),
            std::string::npos)
      << notes;
}

TEST(Config, TheOrganizationsMinuteCountsEveryTokenRequest) {
  // 90 checkouts/min (creates, with the token) + 30 ingests: 120 a minute
  // against sandbox's 100; production allows 500.
  const std::string heavy =
      "rate = \"90/min\"\nfunnel = { update = 0.0, status = 0.0, confirm = "
      "0.0 }";
  ConfigResult sandbox = ParseConfig(
      Limits("https://sandbox-api.polar.sh", heavy), "w.toml", FakeEnv());
  EXPECT_FALSE(sandbox.config);
  EXPECT_NE(Joined(sandbox).find("Polar's sandbox allows 100 requests per "
                                 "minute from the organization"),
            std::string::npos)
      << Joined(sandbox);
  ConfigResult production = ParseConfig(
      Limits("https://api.polar.sh", heavy, "allow_production = true"),
      "w.toml", FakeEnv());
  EXPECT_TRUE(production.config) << Joined(production);
  // Any other host: notes, never errors (a local Polar has no limits).
  ConfigResult local = ParseConfig(
      Limits("http://127.0.0.1:8000", "rate = \"50/s\""), "w.toml", FakeEnv());
  ASSERT_TRUE(local.config) << Joined(local);
  EXPECT_TRUE(local.warnings.empty());
  bool noted = false;
  for (const auto& n : local.notes)
    noted |= n.find("if this target limits as Polar's sandbox does") == 0;
  EXPECT_TRUE(noted);
}

TEST(Config, ABaseUrlWithV1IsTakenWithoutIt) {
  ConfigResult r = ParseConfig(
      "[target]\nbase_url = \"https://sandbox-api.polar.sh/v1/\"\ntoken = "
      "\"polar_oat_t\"\n[scenarios.i]\ntype = \"event_ingestion\"\nrate = "
      "\"1/min\"\n",
      "v.toml", FakeEnv());
  ASSERT_TRUE(r.config) << Joined(r);
  EXPECT_EQ(r.config->target.base_url, "https://sandbox-api.polar.sh");
  bool noted = false;
  for (const auto& n : r.notes)
    noted |= n.find("ends in /v1") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(Config, ATokenThatIsNotAnOrganizationTokenIsExplained) {
  ConfigResult r = ParseConfig(
      "[target]\ntoken = \"polar_pat_abc\"\n[scenarios.i]\ntype = "
      "\"event_ingestion\"\nrate = \"1/min\"\n",
      "t.toml", FakeEnv());
  ASSERT_TRUE(r.config) << Joined(r);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("organization_id is required"),
            std::string::npos);
  EXPECT_EQ(r.warnings[0].find("polar_pat_abc"), std::string::npos)
      << "never the token itself";
}

TEST(Config, BillingAddressesFollowPolarsRules) {
  auto address = [](const std::string& a) {
    return ParseConfig(R"([target]
token = "polar_oat_t"
[scenarios.c]
type = "checkout"
rate = "1/min"
product_id = "77d5072c-f7be-48fd-8bd4-abf9451d0bf0"
billing_address = )" + a + "\n",
                       "a.toml", FakeEnv());
  };
  ConfigResult lower = address("{ country = \"se\" }");
  ASSERT_TRUE(lower.config) << Joined(lower);
  EXPECT_EQ(lower.config->scenarios[0]
                .OptionsAs<CheckoutOptions>()
                .billing_address->country,
            "SE");
  ConfigResult ca = address("{ country = \"CA\", state = \"QC\" }");
  EXPECT_TRUE(ca.config) << Joined(ca);
  EXPECT_TRUE(address("{ country = \"US\", state = \"US-NY\", line1 = \"1 A "
                      "St\", city = \"New York\", postal_code = \"10001\" }")
                  .config);
  ConfigResult state = address(
      "{ country = \"US\", state = \"XX\", line1 = \"1 A St\", city = \"C\", "
      "postal_code = \"1\" }");
  EXPECT_FALSE(state.config);
  EXPECT_NE(Joined(state).find("scenarios.c.billing_address.state: \"XX\" is "
                               "not a US state"),
            std::string::npos)
      << Joined(state);
  ConfigResult embargo = address("{ country = \"ru\" }");
  EXPECT_FALSE(embargo.config);
  EXPECT_NE(Joined(embargo).find("\"RU\" is under a US trade embargo"),
            std::string::npos)
      << Joined(embargo);
  EXPECT_FALSE(address("{ country = \"Sweden\" }").config);
}

TEST(Config, ProductionIsStillRefusedForCheckouts) {
  ConfigResult r = ParseConfig(R"(
[target]
token = "t"
base_url = "https://api.polar.sh"
[scenarios.c]
type = "checkout"
rate = "1/min"
product_id = "77d5072c-f7be-48fd-8bd4-abf9451d0bf0"
)",
                               "p.toml", FakeEnv());
  EXPECT_FALSE(r.config);
}

}  // namespace
}  // namespace polar
