// End to end for the load engine: one-shot runs with summaries and verdicts,
// coordinated omission made visible (a frozen target), and rate accuracy,
// against polar-sim on free loopback ports.
//
// Rates scale by POLAR_TEST_RATE_SCALE (the asan preset sets 0.25) so the
// sanitizer build measures the same behaviour at a pace it can keep.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/daemons.h"
#include "tests/support/process.h"

namespace polar::engine_e2e {
namespace {

using namespace std::chrono_literals;
using testing::Process;
using testing::Sim;
using testing::StartSim;

double RateScale() {
  const char* s = std::getenv("POLAR_TEST_RATE_SCALE");
  return s ? std::atof(s) : 1.0;
}

std::unique_ptr<Process> StartLoadd(const std::string& config,
                                    const std::vector<std::string>& extra,
                                    std::map<std::string, std::string> env,
                                    std::string* dir_out = nullptr) {
  std::string dir = testing::TempDir();
  // "DIR/" in the config and the arguments is this run's directory.
  std::string text = config;
  for (std::size_t at; (at = text.find("DIR/")) != std::string::npos;)
    text.replace(at, 3, dir);
  testing::WriteFile(dir + "/polar-loadd.toml", text);
  std::vector<std::string> args{"--config", dir + "/polar-loadd.toml"};
  args.insert(args.end(), extra.begin(), extra.end());
  for (auto& a : args) {
    if (a.rfind("DIR/", 0) == 0) a = dir + a.substr(3);
  }
  if (dir_out) *dir_out = dir;
  return std::make_unique<Process>(POLAR_LOADD_BIN, args, std::move(env));
}

std::string MetricsUrl(Process& p) {
  auto err = p.WaitForStderr("/metrics", 10s);
  if (!err)
    throw std::runtime_error("polar-loadd did not start: " + p.Stderr());
  std::smatch m;
  std::regex re("http://127\\.0\\.0\\.1:[0-9]+/metrics");
  if (!std::regex_search(*err, m, re))
    throw std::runtime_error("no metrics URL in: " + *err);
  return m[0].str();
}

std::string IngestConfig(const Sim& sim, double rate,
                         const std::string& more = "") {
  return fmt::format(R"(
[target]
base_url = "{}"
connections = 32

[metrics]
listen = "127.0.0.1:0"

[scenarios.ingest]
type = "event_ingestion"
rate = "{:.0f}/s"
batch_size = 2
max_in_flight = 10000
{}
)",
                     sim.base_url(), rate, more);
}

// Keeps a stopped process from outliving a failed assertion.
struct ContinueOnExit {
  pid_t pid;
  ~ContinueOnExit() { kill(pid, SIGCONT); }
};

TEST(OnceMode, APassingRunPrintsTheSummaryWritesJsonAndJUnitAndExitsZero) {
  Sim sim = StartSim();
  const double rate = 200 * RateScale();
  std::string dir;
  auto loadd = StartLoadd(
      IngestConfig(sim, rate, R"(
[scenarios.ingest.thresholds.ingest]
p99 = "5s"
error_ratio = 0.0
)"),
      {"--once", "--duration", "2s", "--summary-json", "DIR/summary.json",
       "--junit", "DIR/junit.xml", "--report", "DIR/report.html"},
      {{"LOAD_TEST_API_TOKEN", sim.token()}}, &dir);
  ASSERT_EQ(loadd->Wait(30s), 0) << loadd->Stderr();
  const std::string out = loadd->Stdout();
  EXPECT_NE(out.find("result: PASS (2 of 2 thresholds held)"),
            std::string::npos)
      << out;
  auto j = nlohmann::json::parse(testing::ReadFile(dir + "/summary.json"));
  EXPECT_EQ(j["passed"], true);
  ASSERT_EQ(j["steps"].size(), 1u);
  const double count = j["steps"][0]["count"];
  EXPECT_NEAR(count, rate * 2, rate * 2 * 0.02);
  EXPECT_EQ(j["steps"][0]["outcomes"]["ok"], count);
  EXPECT_GT(j["steps"][0]["latency_seconds"]["p50"].get<double>(), 0);
  EXPECT_GE(j["steps"][0]["latency_seconds"]["p99"].get<double>(),
            j["steps"][0]["latency_seconds"]["p50"].get<double>());
  const std::string junit = testing::ReadFile(dir + "/junit.xml");
  EXPECT_NE(junit.find("tests=\"2\" failures=\"0\""), std::string::npos)
      << junit;
  const std::string report = testing::ReadFile(dir + "/report.html");
  EXPECT_NE(report.find("<span class=\"verdict pass\" id=\"verdict\">passed"),
            std::string::npos);
  EXPECT_NE(report.find("<h2>Thresholds: 2 of 2 held</h2>"), std::string::npos);
  EXPECT_NE(report.find("<dt>ended by</dt><dd>duration reached</dd>"),
            std::string::npos);
}

TEST(OnceMode, AFailedThresholdExitsOneAndNamesTheVariableItCameFrom) {
  Sim sim = StartSim();
  std::string dir;
  // A wrong token makes every request a 401: the error-ratio limit fails, and
  // so does the Locust variable's generous p99 limit (60 s): no request was
  // answered, so there is no latency to hold it to (a fast 401 is no fast
  // answer), and it says so.
  auto loadd = StartLoadd(
      IngestConfig(sim, 50, R"(
[scenarios.ingest.thresholds.ingest]
error_ratio = 0.01
)"),
      {"--once", "--duration", "1s", "--junit", "DIR/junit.xml"},
      {{"LOAD_TEST_API_TOKEN", "polar_oat_wrongwrongwrongwrongwrongwrong0000"},
       {"LOAD_TEST_EVENT_INGEST_THRESHOLD", "60000"}},
      &dir);
  ASSERT_EQ(loadd->Wait(30s), 1) << loadd->Stderr();
  const std::string out = loadd->Stdout();
  EXPECT_NE(out.find("FAIL ingest/ingest error ratio 100.00% > 1.00%"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("FAIL ingest/ingest p99 latency: no request answered ok "
                     "or timed out"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("(limit 60.0s, from LOAD_TEST_EVENT_INGEST_THRESHOLD)"),
            std::string::npos)
      << out;
  EXPECT_NE(testing::ReadFile(dir + "/junit.xml").find("failures=\"2\""),
            std::string::npos);
}

TEST(OnceMode, DurationWithoutOnceIsAUsageError) {
  Process p(POLAR_LOADD_BIN, {"--duration", "5s"});
  EXPECT_EQ(p.Wait(10s), 64);
}

TEST(OnceMode, ReportWithoutOnceIsAUsageError) {
  Process p(POLAR_LOADD_BIN, {"--report", "run.html"});
  EXPECT_EQ(p.Wait(10s), 64);
  EXPECT_NE(p.Stderr().find("--report need --once"), std::string::npos)
      << p.Stderr();
}

TEST(OnceMode, AReportThatCannotBeWrittenFailsAtTheStartNotAfterTheRun) {
  Sim sim = StartSim();
  const auto began = std::chrono::steady_clock::now();
  auto loadd = StartLoadd(IngestConfig(sim, 10),
                          {"--once", "--duration", "1h", "--report",
                           "DIR/no-such-directory/run.html"},
                          {{"LOAD_TEST_API_TOKEN", sim.token()}});
  ASSERT_EQ(loadd->Wait(20s), 73) << loadd->Stderr();  // EX_CANTCREAT
  EXPECT_LT(std::chrono::steady_clock::now() - began, 15s);
  EXPECT_NE(loadd->Stderr().find("cannot write the run report to"),
            std::string::npos)
      << loadd->Stderr();
}

TEST(OnceMode, TheServiceWritesItsReportWhenStoppedNamedByItsStart) {
  Sim sim = StartSim();
  std::string dir;
  auto loadd = StartLoadd(IngestConfig(sim, 20 * RateScale(), R"(
[daemon]
report = "DIR/service-{start}.html"
)"),
                          {}, {{"LOAD_TEST_API_TOKEN", sim.token()}}, &dir);
  ASSERT_TRUE(loadd->WaitForStderr("scenario ingest", 10s)) << loadd->Stderr();
  std::this_thread::sleep_for(3s);  // a few seconds of load to chart
  loadd->Signal(SIGTERM);
  ASSERT_EQ(loadd->Wait(30s), 0) << loadd->Stderr();
  std::smatch m;
  const std::string err = loadd->Stderr();
  ASSERT_TRUE(std::regex_search(
      err, m,
      std::regex("run report: (\\S+/service-[0-9]{8}T[0-9]{6}Z\\.html)")))
      << err;
  const std::string html = testing::ReadFile(m[1].str());
  EXPECT_NE(html.find("<dt>run</dt><dd>service</dd>"), std::string::npos);
  EXPECT_NE(html.find("<dt>ended by</dt><dd>SIGTERM</dd>"), std::string::npos);
  EXPECT_NE(html.find("\"name\":\"ingest\""), std::string::npos);
  EXPECT_NE(html.find("<td>ingest / ingest</td>"), std::string::npos);
}

// Prometheus cumulative bucket count of `name` at `le` for the ingest step.
double Bucket(const std::map<std::string, double>& m, const std::string& name,
              const std::string& le) {
  return testing::SumSeries(m, name + "_bucket", {"le=\"" + le + "\""});
}

TEST(CoordinatedOmission,
     AFrozenTargetShowsUpAsLatencyFromTheIntendedStartNotAsServiceTime) {
  Sim sim = StartSim();
  const double rate = 1000 * RateScale();
  auto loadd =
      StartLoadd(IngestConfig(sim, rate), {"--once", "--duration", "30s"},
                 {{"LOAD_TEST_API_TOKEN", sim.token()}});
  const std::string url = MetricsUrl(*loadd);
  std::this_thread::sleep_for(1500ms);
  auto before = testing::ParseMetrics(testing::HttpGet(url).body);
  {
    ContinueOnExit guard{sim.process->pid()};
    ASSERT_EQ(kill(sim.process->pid(), SIGSTOP), 0);
    std::this_thread::sleep_for(2s);
  }  // SIGCONT
  // How long the target takes to work off the backlog: arrivals until then
  // wait too (tens of ms normally; longer under sanitizers). Measured, so the
  // bounds below can say exactly which requests may have waited.
  const auto resumed = std::chrono::steady_clock::now();
  const double idle = std::max(5.0, rate * 0.01);
  while (std::chrono::steady_clock::now() - resumed < 10s) {
    auto m = testing::ParseMetrics(testing::HttpGet(url).body);
    if (testing::SumSeries(m, "polar_loadd_in_flight") <= idle) break;
    std::this_thread::sleep_for(20ms);
  }
  const double recovery =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - resumed)
          .count();
  std::this_thread::sleep_for(500ms);
  auto after = testing::ParseMetrics(testing::HttpGet(url).body);

  const std::string lat = "polar_loadd_request_latency_seconds";
  const std::string svc = "polar_loadd_request_service_seconds";
  auto delta = [&](const std::string& name, const std::string& le) {
    return Bucket(after, name, le) - Bucket(before, name, le);
  };
  const double total = delta(lat, "+Inf");
  const double slow = total - delta(lat, "0.1");
  const double over_1s = total - delta(lat, "1");
  const double over_2_5s = total - delta(lat, "2.5");
  const double slow_service = total - delta(svc, "0.1");
  const double frozen = rate * 2;  // arrivals intended during the freeze
  const double backlog = rate * recovery;  // arrivals while it caught up
  SCOPED_TRACE(fmt::format("total {} slow {} over_1s {} recovery {:.3f} s",
                           total, slow, over_1s, recovery));
  // Every arrival of the 2 s freeze waited: ~2,000 requests slower than
  // 0.1 s (plus those that came while the target worked off the backlog).
  EXPECT_GE(slow, frozen * 0.75);
  EXPECT_LE(slow, frozen * 1.25 + backlog);
  // Spread over 0-2 s: about half of them waited more than 1 s, none 2.5 s.
  EXPECT_GE(over_1s, frozen * 0.3);
  EXPECT_LE(over_1s, frozen * 0.7 + backlog);
  EXPECT_LT(over_2_5s, frozen * 0.02);
  // They waited on our side (for one of the 32 connections), so their
  // service time is small: only those already on the wire were slow to serve.
  EXPECT_LT(slow_service, 0.1 * slow) << "slow service " << slow_service;
  // None was dropped and none failed.
  EXPECT_EQ(testing::SumSeries(after, "polar_loadd_arrivals_dropped_total"), 0);
  EXPECT_EQ(testing::SumSeries(after, "polar_loadd_requests_total",
                               {"outcome=\"ok\""}),
            testing::SumSeries(after, "polar_loadd_requests_total"));
  // A one-shot run stopped early still ends with its summary and verdict.
  loadd->Signal(SIGTERM);
  EXPECT_EQ(loadd->Wait(30s), 0);
  EXPECT_NE(loadd->Stdout().find("no thresholds configured: result PASS"),
            std::string::npos);
}

TEST(RateAccuracy, HoldsAThousandPerSecondWithinTwoPercentOverThreeSeconds) {
  Sim sim = StartSim();
  const double rate = 1000 * RateScale();
  auto loadd =
      StartLoadd(IngestConfig(sim, rate), {"--once", "--duration", "6s"},
                 {{"LOAD_TEST_API_TOKEN", sim.token()}});
  const std::string url = MetricsUrl(*loadd);
  std::this_thread::sleep_for(1500ms);
  auto t0 = std::chrono::steady_clock::now();
  auto m0 = testing::ParseMetrics(testing::HttpGet(url).body);
  std::this_thread::sleep_for(3s);
  auto t1 = std::chrono::steady_clock::now();
  auto m1 = testing::ParseMetrics(testing::HttpGet(url).body);
  const double elapsed = std::chrono::duration<double>(t1 - t0).count();
  const std::string req = "polar_loadd_requests_total";
  const double achieved = (testing::SumSeries(m1, req, {"outcome=\"ok\""}) -
                           testing::SumSeries(m0, req, {"outcome=\"ok\""})) /
                          elapsed;
  EXPECT_NEAR(achieved, rate, rate * 0.02);
  EXPECT_EQ(testing::SumSeries(m1, "polar_loadd_target_rate"), rate);
  EXPECT_EQ(testing::SumSeries(m1, "polar_loadd_arrivals_dropped_total"), 0);
  // The saturation signals are exported and sane.
  const double util = testing::SumSeries(m1, "polar_loadd_loop_utilisation");
  EXPECT_GT(util, 0);
  EXPECT_LT(util, 1);
  EXPECT_GT(testing::SumSeries(m1, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(testing::SumSeries(m1, "process_open_fds"), 3);
  EXPECT_GT(testing::SumSeries(m1, "process_cpu_seconds_total"), 0);
  EXPECT_EQ(loadd->Wait(30s), 0);
}

}  // namespace
}  // namespace polar::engine_e2e
