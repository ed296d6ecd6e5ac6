// End to end: the status page and the control API of a real polar-loadd
// against polar-sim (or a scripted failing target), over HTTP on loopback.
// Each action, and each refusal (no token configured, missing or wrong token),
// is checked by its effect on the load (arrivals in /metrics), not only by the
// answer's status code.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/daemons.h"
#include "tests/support/test_http_server.h"

namespace polar::control_e2e {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Loadd;
using testing::Sim;
using testing::StartSim;

constexpr const char* kControlToken = "e2e-control-token-0123456789abcdef";

// Two scenarios at modest rates (scaled down under the sanitizers); `control`
// is the [control] table or "".
std::string Config(const std::string& base_url, const std::string& control,
                   double ingest_rate = 20, double other_rate = 5) {
  const double k = testing::RateScale();
  return fmt::format(R"([target]
base_url = "{}"

[metrics]
listen = "127.0.0.1:0"

{}

[scenarios.ingest]
type = "event_ingestion"
rate = "{}/s"
batch_size = 1

[scenarios.other]
type = "event_ingestion"
rate = "{}/s"
batch_size = 1
)",
                     base_url, control, ingest_rate * k, other_rate * k);
}

std::string ControlTable(const std::string& dir) {
  testing::WriteFile(dir + "/control-token", std::string(kControlToken) + "\n");
  return fmt::format("[control]\ntoken_file = \"{}/control-token\"\n", dir);
}

struct Answer {
  long status = 0;
  json body;
};

Answer Call(const Loadd& loadd, const std::string& method,
            const std::string& path, const std::string& body = "",
            const std::string& token = kControlToken) {
  std::vector<std::string> headers{"Content-Type: application/json"};
  if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
  auto r = testing::HttpRequest(method, loadd.BaseUrl() + path, body, headers);
  Answer a;
  a.status = r.status;
  a.body = json::parse(r.body, nullptr, false);
  return a;
}

json Status(const Loadd& loadd) {
  auto r = testing::HttpGet(loadd.BaseUrl() + "/api/status");
  EXPECT_EQ(r.status, 200) << r.error;
  return json::parse(r.body, nullptr, false);
}

json ScenarioStatus(const json& status, const std::string& name) {
  for (const json& s : status["scenarios"])
    if (s["name"] == name) return s;
  return json();
}

double Arrivals(const Loadd& loadd, const std::string& scenario) {
  return testing::SumSeries(loadd.Scrape(), "polar_loadd_arrivals_total",
                            {"scenario=\"" + scenario + "\""});
}

double Metric(const Loadd& loadd, const std::string& name,
              const std::vector<std::string>& labels) {
  return testing::SumSeries(loadd.Scrape(), name, labels);
}

// Polls `condition` every 100 ms until it holds or `timeout` passes.
template <typename F>
bool Eventually(F condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return condition();
}

// A running pair: polar-sim and polar-loadd with the control token.
struct Rig {
  Sim sim = StartSim();
  std::string dir = testing::TempDir();
  Loadd loadd{Config(sim.base_url(), ControlTable(dir)), sim.token()};
  Rig() {
    loadd.WaitListening();
    // Both scenarios have started sending.
    EXPECT_TRUE(Eventually([&] { return Arrivals(loadd, "ingest") > 0; }, 5s))
        << loadd.process().Stderr();
  }
};

TEST(ControlApiE2E, EveryActionIsRefusedWhenNoTokenIsConfigured) {
  Sim sim = StartSim();
  Loadd loadd(Config(sim.base_url(), ""), sim.token());
  loadd.WaitListening();
  for (auto [method, path, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"POST", "/api/scenarios/ingest/pause", ""},
           {"POST", "/api/scenarios/ingest/resume", ""},
           {"PUT", "/api/scenarios/ingest/rate", R"({"rate":"1/s"})"},
           {"DELETE", "/api/scenarios/ingest/rate", ""},
           {"POST", "/api/scenarios/ingest/burst", R"({"count":10})"}}) {
    Answer a = Call(loadd, method, path, body, "anything-at-all-0123456789");
    EXPECT_EQ(a.status, 403) << method << " " << path;
    EXPECT_NE(a.body.value("error", "").find("no control token"),
              std::string::npos)
        << a.body.dump();
  }
  // The load went on untouched.
  const double before = Arrivals(loadd, "ingest");
  std::this_thread::sleep_for(600ms);
  EXPECT_GT(Arrivals(loadd, "ingest"), before);
  EXPECT_EQ(Metric(loadd, "polar_loadd_control_actions_total",
                   {"result=\"no_token_configured\""}),
            5);
  // The status page stays readable and says the API is off.
  EXPECT_FALSE(Status(loadd)["control_enabled"].get<bool>());
}

TEST(ControlApiE2E, AMissingOrWrongTokenIsRefusedAndChangesNothing) {
  Rig rig;
  Answer missing =
      Call(rig.loadd, "POST", "/api/scenarios/ingest/pause", "", "");
  EXPECT_EQ(missing.status, 401);
  Answer wrong = Call(rig.loadd, "POST", "/api/scenarios/ingest/pause", "",
                      "e2e-control-token-0123456789abcdeX");
  EXPECT_EQ(wrong.status, 401);
  Answer burst = Call(rig.loadd, "POST", "/api/scenarios/ingest/burst",
                      R"({"count":100})", "nope");
  EXPECT_EQ(burst.status, 401);
  EXPECT_FALSE(ScenarioStatus(Status(rig.loadd), "ingest")["control"]["paused"]
                   .get<bool>());
  const double before = Arrivals(rig.loadd, "ingest");
  std::this_thread::sleep_for(600ms);
  EXPECT_GT(Arrivals(rig.loadd, "ingest"), before);
  EXPECT_EQ(Metric(rig.loadd, "polar_loadd_control_actions_total",
                   {"result=\"unauthorized\""}),
            3);
  // Refusals are logged, and no token (right or wrong) is ever printed.
  std::string log = rig.loadd.process().Stderr();
  EXPECT_NE(log.find("refused: wrong token"), std::string::npos) << log;
  EXPECT_EQ(log.find("0123456789abcde"), std::string::npos) << log;
}

TEST(ControlApiE2E, PauseStopsTheScenarioAndResumeStartsItAgain) {
  Rig rig;
  Answer a = Call(rig.loadd, "POST", "/api/scenarios/ingest/pause");
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_TRUE(a.body["state"]["paused"].get<bool>());
  std::this_thread::sleep_for(200ms);  // answers in flight come back
  const double paused_at = Arrivals(rig.loadd, "ingest");
  const double other_at = Arrivals(rig.loadd, "other");
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(Arrivals(rig.loadd, "ingest"), paused_at);
  EXPECT_GT(Arrivals(rig.loadd, "other"), other_at);  // only that scenario
  EXPECT_EQ(
      Metric(rig.loadd, "polar_loadd_scenario_paused", {"scenario=\"ingest\""}),
      1);
  EXPECT_EQ(
      Metric(rig.loadd, "polar_loadd_target_rate", {"scenario=\"ingest\""}), 0);
  // The status page's achieved rate falls to zero within its rate window.
  EXPECT_TRUE(Eventually(
      [&] {
        json s = ScenarioStatus(Status(rig.loadd), "ingest");
        return s["achieved_rate"].is_number() &&
               s["achieved_rate"].get<double>() == 0;
      },
      12s));

  a = Call(rig.loadd, "POST", "/api/scenarios/ingest/resume");
  ASSERT_EQ(a.status, 200);
  EXPECT_FALSE(a.body["state"]["paused"].get<bool>());
  EXPECT_TRUE(Eventually(
      [&] { return Arrivals(rig.loadd, "ingest") > paused_at + 3; }, 3s));
  EXPECT_EQ(Metric(rig.loadd, "polar_loadd_control_actions_total",
                   {"action=\"pause\"", "result=\"ok\""}),
            1);
  EXPECT_EQ(Metric(rig.loadd, "polar_loadd_control_actions_total",
                   {"action=\"resume\"", "result=\"ok\""}),
            1);
  std::string log = rig.loadd.process().Stderr();
  EXPECT_NE(log.find("control: pause ingest from 127.0.0.1: paused"),
            std::string::npos)
      << log;
}

TEST(ControlApiE2E, ARateOverrideForAWhileThenTheScheduleReturns) {
  Rig rig;
  const double k = testing::RateScale();
  const std::string rate =
      fmt::format(R"({{"rate":"{}/s","for":"3s"}})", 100 * k);
  Answer a = Call(rig.loadd, "PUT", "/api/scenarios/ingest/rate", rate);
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_DOUBLE_EQ(a.body["state"]["override"]["rate"].get<double>(), 100 * k);
  EXPECT_EQ(
      Metric(rig.loadd, "polar_loadd_target_rate", {"scenario=\"ingest\""}),
      100 * k);
  EXPECT_EQ(Metric(rig.loadd, "polar_loadd_scenario_rate_overridden",
                   {"scenario=\"ingest\""}),
            1);
  // 100/s instead of the configured 20/s, over time measured here: each
  // scrape happened somewhere between the instants taken around it, so the
  // window between the two counts is at least `shortest` and at most
  // `longest` long.
  using Clock = std::chrono::steady_clock;
  const auto a0 = Clock::now();
  const double n0 = Arrivals(rig.loadd, "ingest");
  const auto a1 = Clock::now();
  std::this_thread::sleep_for(2s);
  const auto b0 = Clock::now();
  const double during = Arrivals(rig.loadd, "ingest") - n0;
  const auto b1 = Clock::now();
  const double shortest = std::chrono::duration<double>(b0 - a1).count();
  const double longest = std::chrono::duration<double>(b1 - a0).count();
  // 5% for the loop's lag on a busy machine, and one arrival at each end.
  EXPECT_GE(during, 100 * k * shortest * 0.95 - 1)
      << "over " << shortest << "-" << longest << " s";
  EXPECT_LE(during, 100 * k * longest * 1.05 + 1)
      << "over " << shortest << "-" << longest << " s";
  // After the 3 s the configured 20/s is back, by itself.
  EXPECT_TRUE(Eventually(
      [&] {
        return Metric(rig.loadd, "polar_loadd_scenario_rate_overridden",
                      {"scenario=\"ingest\""}) == 0;
      },
      3s));
  EXPECT_EQ(
      Metric(rig.loadd, "polar_loadd_target_rate", {"scenario=\"ingest\""}),
      20 * k);
  // An override until the next reload, then cleared by DELETE.
  a = Call(rig.loadd, "PUT", "/api/scenarios/ingest/rate", R"({"rate":"2/s"})");
  ASSERT_EQ(a.status, 200);
  EXPECT_TRUE(a.body["state"]["override"]["remaining_seconds"].is_null());
  a = Call(rig.loadd, "DELETE", "/api/scenarios/ingest/rate");
  ASSERT_EQ(a.status, 200);
  EXPECT_TRUE(a.body["state"]["override"].is_null());
  // Bad input is refused with a reason.
  a = Call(rig.loadd, "PUT", "/api/scenarios/ingest/rate",
           R"({"rate":"lots"})");
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(a.body.value("error", "").find("rate"), std::string::npos);
}

TEST(ControlApiE2E, ABurstStartsExactlyThatManyArrivalsAndIsBounded) {
  Rig rig;
  ASSERT_EQ(Call(rig.loadd, "POST", "/api/scenarios/ingest/pause").status, 200);
  // Whatever was in flight when the pause came has been answered.
  ASSERT_TRUE(Eventually(
      [&] {
        return Metric(rig.loadd, "polar_loadd_in_flight",
                      {"scenario=\"ingest\""}) == 0;
      },
      5s));
  const double before = Arrivals(rig.loadd, "ingest");
  const double requests_before =
      Metric(rig.loadd, "polar_loadd_requests_total", {"scenario=\"ingest\""});
  Answer a = Call(rig.loadd, "POST", "/api/scenarios/ingest/burst",
                  R"({"count":150})");
  ASSERT_EQ(a.status, 200) << a.body.dump();
  // Paused, so every new arrival is the burst's, and each one is answered.
  EXPECT_TRUE(Eventually(
      [&] {
        return Metric(rig.loadd, "polar_loadd_requests_total",
                      {"scenario=\"ingest\""}) == requests_before + 150;
      },
      5s));
  EXPECT_EQ(Arrivals(rig.loadd, "ingest"), before + 150);
  a = Call(rig.loadd, "POST", "/api/scenarios/ingest/burst",
           R"({"count":10001})");
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(Arrivals(rig.loadd, "ingest"), before + 150);
  a = Call(rig.loadd, "POST", "/api/scenarios/nothing/burst", R"({"count":1})");
  EXPECT_EQ(a.status, 404);
}

TEST(ControlApiE2E, AReloadKeepsAPauseAndEndsAnOverride) {
  Rig rig;
  ASSERT_EQ(Call(rig.loadd, "POST", "/api/scenarios/ingest/pause").status, 200);
  ASSERT_EQ(
      Call(rig.loadd, "PUT", "/api/scenarios/other/rate", R"({"rate":"1/s"})")
          .status,
      200);
  rig.loadd.process().Signal(SIGHUP);
  ASSERT_TRUE(rig.loadd.process().WaitForStderr("reloaded", 10s))
      << rig.loadd.process().Stderr();
  json status = Status(rig.loadd);
  EXPECT_EQ(status["last_reload"]["result"], "success");
  EXPECT_TRUE(
      ScenarioStatus(status, "ingest")["control"]["paused"].get<bool>());
  EXPECT_TRUE(ScenarioStatus(status, "other")["control"]["override"].is_null());
  const double paused_at = Arrivals(rig.loadd, "ingest");
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(Arrivals(rig.loadd, "ingest"), paused_at);
  EXPECT_EQ(
      Metric(rig.loadd, "polar_loadd_target_rate", {"scenario=\"other\""}),
      5 * testing::RateScale());
  std::string log = rig.loadd.process().Stderr();
  EXPECT_NE(log.find("scenario ingest stays paused across the reload"),
            std::string::npos);
  EXPECT_NE(log.find("reload ends the rate override of scenario other"),
            std::string::npos);
}

// control.token_file is read at every reload too: after the file is
// replaced and the daemon reloaded, the old token is refused and the new one
// accepted, without a restart.
TEST(ControlApiE2E, ARotatedControlTokenFileIsPickedUpOnReload) {
  Rig rig;
  const std::string next = "e2e-rotated-control-token-fedcba9876543210";
  testing::WriteFile(rig.dir + "/control-token.new", next + "\n");
  ASSERT_EQ(std::rename((rig.dir + "/control-token.new").c_str(),
                        (rig.dir + "/control-token").c_str()),
            0);
  // Not before the reload: the file is read when the config is.
  EXPECT_EQ(
      Call(rig.loadd, "POST", "/api/scenarios/ingest/pause", "", next).status,
      401);
  rig.loadd.process().Signal(SIGHUP);
  ASSERT_TRUE(rig.loadd.process().WaitForStderr("reloaded", 10s))
      << rig.loadd.process().Stderr();
  EXPECT_EQ(Call(rig.loadd, "POST", "/api/scenarios/ingest/pause").status, 401)
      << "the old token after the rotation";
  EXPECT_FALSE(ScenarioStatus(Status(rig.loadd), "ingest")["control"]["paused"]
                   .get<bool>());
  Answer a = Call(rig.loadd, "POST", "/api/scenarios/ingest/pause", "", next);
  EXPECT_EQ(a.status, 200) << a.body.dump();
  EXPECT_TRUE(ScenarioStatus(Status(rig.loadd), "ingest")["control"]["paused"]
                  .get<bool>());
  EXPECT_EQ(Metric(rig.loadd, "polar_loadd_control_actions_total",
                   {"result=\"unauthorized\""}),
            2);
  EXPECT_EQ(rig.loadd.process().Stderr().find(next), std::string::npos);
}

TEST(StatusPageE2E, ThePageAndItsAssetsComeFromTheBinary) {
  Rig rig;
  auto page = testing::HttpGet(rig.loadd.BaseUrl() + "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find(R"(<script src="/status.js")"), std::string::npos);
  // No asset from anywhere else.
  EXPECT_EQ(page.body.find("http://"), std::string::npos);
  EXPECT_EQ(page.body.find("https://"), std::string::npos);
  auto js = testing::HttpGet(rig.loadd.BaseUrl() + "/status.js");
  ASSERT_EQ(js.status, 200);
  EXPECT_NE(js.body.find("/api/status"), std::string::npos);
  EXPECT_EQ(testing::HttpGet(rig.loadd.BaseUrl() + "/status.css").status, 200);
  // Chart.js (Debian's libjs-chart.js, compiled in) and the charting script.
  EXPECT_NE(page.body.find(R"(<script src="/chart.js")"), std::string::npos);
  auto chart = testing::HttpGet(rig.loadd.BaseUrl() + "/chart.js");
  ASSERT_EQ(chart.status, 200);
  EXPECT_NE(chart.body.find("Chart.js v3."), std::string::npos);
  EXPECT_GT(chart.body.size(), 150'000u);
  auto charts = testing::HttpGet(rig.loadd.BaseUrl() + "/charts.js");
  ASSERT_EQ(charts.status, 200);
  EXPECT_NE(charts.body.find("PolarCharts"), std::string::npos);
  // The page comes with its rows, for browsers without JavaScript.
  EXPECT_NE(page.body.find(R"(<tr class="scenario" data-scenario="ingest">)"),
            std::string::npos);
  EXPECT_EQ(page.body.find("<!--server:"), std::string::npos);
  auto history = testing::HttpGet(rig.loadd.BaseUrl() + "/api/history");
  ASSERT_EQ(history.status, 200);
  EXPECT_EQ(json::parse(history.body)["window_seconds"], 900.0);
  EXPECT_EQ(testing::HttpGet(rig.loadd.BaseUrl() + "/nothing-here").status,
            404);
  // /metrics is still where Prometheus expects it.
  EXPECT_FALSE(rig.loadd.Scrape().empty());
}

TEST(StatusPageE2E, TheStatusShowsRatesPercentilesAndTheDaemon) {
  Rig rig;
  std::this_thread::sleep_for(2500ms);
  json status = Status(rig.loadd);
  EXPECT_EQ(status["config_path"], rig.loadd.path());
  EXPECT_TRUE(status["control_enabled"].get<bool>());
  EXPECT_EQ(status["last_reload"]["result"], "none");
  EXPECT_GT(status["uptime_seconds"].get<double>(), 2);
  json s = ScenarioStatus(status, "ingest");
  ASSERT_TRUE(s.is_object()) << status.dump();
  const double k = testing::RateScale();
  EXPECT_EQ(s["target_rate"].get<double>(), 20 * k);
  EXPECT_NEAR(s["achieved_rate"].get<double>(), 20 * k, 6 * k);
  EXPECT_EQ(s["error_ratio"].get<double>(), 0);
  ASSERT_EQ(s["steps"].size(), 1u);
  json step = s["steps"][0];
  EXPECT_EQ(step["step"], "ingest");
  // Loopback against polar-sim: well under a second.
  EXPECT_GT(step["p50_seconds"].get<double>(), 0);
  EXPECT_LT(step["p99_seconds"].get<double>(), 1.0);
  EXPECT_TRUE(status["errors"].empty());
}

TEST(StatusPageE2E, RecentErrorsShowTheResponseWithTheTokenRedacted) {
  // A target that answers 500 and echoes the API token back in its body.
  testing::TestHttpServerOptions options;
  options.status = 500;
  options.body = R"({"detail":"upstream broke; you sent {AUTH}"})";
  testing::TestHttpServer target(options);
  const std::string api_token = "polar_oat_e2eSecretTokenThatMustNotLeak";
  std::string dir = testing::TempDir();
  Loadd loadd(Config(target.base_url(), ControlTable(dir), 10, 2), api_token);
  loadd.WaitListening();
  ASSERT_TRUE(Eventually(
      [&] {
        json st = Status(loadd);
        return st["errors"].is_array() && st["errors"].size() == 2;
      },
      5s))
      << Status(loadd).dump();
  json status = Status(loadd);
  for (const json& e : status["errors"]) {
    EXPECT_EQ(e["outcome"], "http_5xx");
    EXPECT_EQ(e["status"], 500);
    EXPECT_GE(e["count"].get<int>(), 1);
    const std::string snippet = e["snippet"];
    EXPECT_NE(snippet.find("upstream broke"), std::string::npos) << snippet;
    EXPECT_NE(snippet.find("[redacted]"), std::string::npos) << snippet;
  }
  EXPECT_EQ(status.dump().find("e2eSecretToken"), std::string::npos);
  // Every request failed: the error ratio says so.
  EXPECT_TRUE(Eventually(
      [&] {
        json s = ScenarioStatus(Status(loadd), "ingest");
        return s["error_ratio"].is_number() &&
               s["error_ratio"].get<double>() == 1.0;
      },
      3s));
}

}  // namespace
}  // namespace polar::control_e2e
