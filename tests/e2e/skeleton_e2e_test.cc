// End to end: polar-sim and polar-loadd as real processes on free loopback
// ports.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/support/daemons.h"
#include "tests/support/process.h"

namespace polar::skeleton_e2e {
namespace {

using namespace std::chrono_literals;
using testing::Process;
using testing::Sim;
using testing::StartSim;

// Starts polar-loadd with `config` and returns it with its metrics URL.
std::pair<std::unique_ptr<Process>, std::string> StartLoadd(
    const std::string& config, const std::string& token) {
  std::string dir = testing::TempDir();
  testing::WriteFile(dir + "/polar-loadd.toml", config);
  auto p = std::make_unique<Process>(
      POLAR_LOADD_BIN,
      std::vector<std::string>{"--config", dir + "/polar-loadd.toml"},
      std::map<std::string, std::string>{{"LOAD_TEST_API_TOKEN", token}});
  auto err = p->WaitForStderr("/metrics", 10s);
  if (!err)
    throw std::runtime_error("polar-loadd did not start: " + p->Stderr());
  std::smatch m;
  std::regex re("http://127\\.0\\.0\\.1:([0-9]+)/metrics");
  if (!std::regex_search(*err, m, re))
    throw std::runtime_error("no metrics URL in: " + *err);
  return {std::move(p), m[0].str()};
}

std::map<std::string, double> Scrape(const std::string& url) {
  auto r = testing::HttpGet(url);
  EXPECT_EQ(r.status, 200) << r.error;
  return testing::ParseMetrics(r.body);
}

TEST(Skeleton, LoaddHoldsItsRateAgainstPolarSimAndEveryRequestSucceeds) {
  Sim sim = StartSim();
  constexpr double kRate = 100;
  std::string config = fmt::format(R"(
[target]
base_url = "{}"

[metrics]
listen = "127.0.0.1:0"

[scenarios.ingest]
type = "event_ingestion"
rate = "{}/s"
batch_size = 7
)",
                                   sim.base_url(), kRate);
  auto [loadd, metrics_url] = StartLoadd(config, sim.token());

  // Skip the first second (process start, first connection), then measure over
  // 4 s.
  std::this_thread::sleep_for(1s);
  auto t0 = std::chrono::steady_clock::now();
  auto m0 = Scrape(metrics_url);
  std::this_thread::sleep_for(4s);
  auto t1 = std::chrono::steady_clock::now();
  auto m1 = Scrape(metrics_url);
  double elapsed = std::chrono::duration<double>(t1 - t0).count();

  const std::string kReq = "polar_loadd_requests_total";
  double done = testing::SumSeries(m1, kReq) - testing::SumSeries(m0, kReq);
  double expected = kRate * elapsed;
  EXPECT_NEAR(done, expected, expected * 0.05) << "elapsed " << elapsed << " s";
  double ok = testing::SumSeries(m1, kReq, {"outcome=\"ok\""});
  EXPECT_EQ(ok, testing::SumSeries(m1, kReq))
      << "every request must get 200 and a full count";
  EXPECT_GT(ok, 0);
  EXPECT_EQ(testing::SumSeries(m1, "polar_loadd_events_total",
                               {"result=\"inserted\""}),
            ok * 7);
  EXPECT_EQ(testing::SumSeries(m1, "polar_loadd_arrivals_dropped_total"), 0);
  EXPECT_EQ(testing::SumSeries(m1, "polar_loadd_build_info"), 1);

  loadd->Signal(SIGTERM);
  EXPECT_EQ(loadd->Wait(15s), 0);
}

TEST(Skeleton,
     AWrongTokenMakesEveryRequestA4xxAndTheTokenNeverReachesTheMetrics) {
  Sim sim = StartSim();
  std::string config = fmt::format(R"(
[target]
base_url = "{}"
[metrics]
listen = "127.0.0.1:0"
[scenarios.ingest]
type = "event_ingestion"
rate = "50/s"
)",
                                   sim.base_url());
  const std::string wrong =
      "polar_oat_wrongwrongwrongwrongwrongwrongwrong000000";
  auto [loadd, metrics_url] = StartLoadd(config, wrong);
  std::this_thread::sleep_for(1500ms);
  auto body = testing::HttpGet(metrics_url).body;
  auto m = testing::ParseMetrics(body);
  EXPECT_GT(testing::SumSeries(m, "polar_loadd_requests_total",
                               {"outcome=\"http_4xx\""}),
            0);
  EXPECT_EQ(
      testing::SumSeries(m, "polar_loadd_requests_total", {"outcome=\"ok\""}),
      0);
  EXPECT_EQ(body.find(wrong), std::string::npos);
  loadd->Signal(SIGTERM);
  EXPECT_EQ(loadd->Wait(15s), 0);
  EXPECT_EQ(loadd->Stderr().find(wrong), std::string::npos);
}

TEST(Skeleton, ABadConfigExits78AndNamesFileLineAndKey) {
  std::string dir = testing::TempDir();
  testing::WriteFile(dir + "/bad.toml",
                     "[target]\ntoken = \"t\"\ntimeout = \"soon\"\n");
  Process p(POLAR_LOADD_BIN, {"--check-config", "--config", dir + "/bad.toml"});
  EXPECT_EQ(p.Wait(10s), 78);
  EXPECT_NE(p.Stderr().find(dir + "/bad.toml:3:11: target.timeout:"),
            std::string::npos)
      << p.Stderr();
}

}  // namespace
}  // namespace polar::skeleton_e2e
