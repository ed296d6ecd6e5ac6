// End to end for the load engine: one-shot runs with summaries and verdicts,
// coordinated omission made visible (a frozen target), and rate accuracy,
// against polar-sim on free loopback ports.
//
// Rates scale by POLAR_TEST_RATE_SCALE (the asan preset sets 0.25) so the
// sanitizer build measures the same behaviour at a pace it can keep.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cmath>
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

constexpr const char* kPassingThresholds = R"(
[scenarios.ingest.thresholds.ingest]
p99 = "5s"
error_ratio = 0.0
)";

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
      .count();
}

TEST(OnceMode, APassingRunPrintsTheSummaryWritesJsonAndJUnitAndExitsZero) {
  // No Tinybird delay: the events are listed as soon as they are stored.
  Sim sim = StartSim({"--event-lag", "0ms"});
  const double rate = 200 * RateScale();
  std::string dir;
  const auto spawned = std::chrono::steady_clock::now();
  auto loadd = StartLoadd(
      IngestConfig(sim, rate, kPassingThresholds),
      {"--once", "--duration", "2s", "--summary-json", "DIR/summary.json",
       "--junit", "DIR/junit.xml", "--report", "DIR/report.html"},
      {{"LOAD_TEST_API_TOKEN", sim.token()}}, &dir);
  ASSERT_EQ(loadd->Wait(30s), 0) << loadd->Stderr();
  const double lifetime = SecondsSince(spawned);
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
  // The run's own clock: the schedule ran its 2 s (the timer is never
  // early), within the process's lifetime as the test measured it.
  const double duration = j["duration_seconds"];
  EXPECT_GE(duration, 2.0);
  EXPECT_LT(duration, lifetime);
  EXPECT_NEAR(j["steps"][0]["rate"].get<double>(), count / duration, 1e-9);
  // The rate as the target saw it, over time measured there: the batches'
  // arrival times at polar-sim (two events each, stamped together), n
  // batches over the n - 1 gaps from the first to the last. A run that took
  // twice as long at half the rate has the same count but fails here.
  const std::vector<double> times = testing::StoredEventTimes(sim);
  ASSERT_EQ(times.size(), 2 * count);
  const double span = times.back() - times.front();
  EXPECT_NEAR((count - 1) / span, rate, rate * 0.02)
      << count << " batches in " << span << " s at the target";
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

// Stopped early (a CI job cancelled, Ctrl-C at a terminal), a one-shot run
// still ends with its verdict: the summary on stdout, the JSON and the JUnit
// file, over the time it really ran, and the exit code of that verdict.
void ExpectAnEarlyStopStillReports(int signo, bool pass) {
  Sim sim = StartSim();
  // Slow enough that even a loop running late on a busy machine has started
  // every arrival due before the signal (one every 50 ms).
  const double rate = 20;
  std::string dir;
  // A wrong token fails the error-ratio limit on every request, and the p99
  // limit too: no request answered ok, so no latency holds it (a fast 401 is
  // no fast answer).
  const std::string token =
      pass ? sim.token() : "polar_oat_wrongwrongwrongwrongwrongwrong0000";
  const auto spawned = std::chrono::steady_clock::now();
  auto loadd = StartLoadd(IngestConfig(sim, rate, kPassingThresholds),
                          {"--once", "--duration", "60s", "--summary-json",
                           "DIR/summary.json", "--junit", "DIR/junit.xml"},
                          {{"LOAD_TEST_API_TOKEN", token}}, &dir);
  MetricsUrl(*loadd);  // running
  std::this_thread::sleep_for(2s);
  const double signalled = SecondsSince(spawned);
  loadd->Signal(signo);
  ASSERT_EQ(loadd->Wait(30s), pass ? 0 : 1) << loadd->Stderr();
  const std::string out = loadd->Stdout();
  EXPECT_NE(out.find(pass ? "result: PASS (2 of 2 thresholds held)"
                          : "result: FAIL (0 of 2 thresholds held)"),
            std::string::npos)
      << out;
  const std::string json_text = testing::ReadFile(dir + "/summary.json");
  ASSERT_FALSE(json_text.empty()) << "no summary JSON\n" << loadd->Stderr();
  auto j = nlohmann::json::parse(json_text);
  EXPECT_EQ(j["passed"], pass);
  // The time it ran until the signal, not the 60 s it was asked for.
  const double duration = j["duration_seconds"];
  EXPECT_GE(duration, 1.9);
  EXPECT_LE(duration, signalled);
  ASSERT_EQ(j["steps"].size(), 1u);
  const double count = j["steps"][0]["count"];
  EXPECT_EQ(j["steps"][0]["outcomes"][pass ? "ok" : "http_4xx"], count);
  // Every arrival until the stop was sent and answered: one per 1/rate from
  // t = 0, so rate x duration of them, + 1 for the one at t = 0.
  ASSERT_EQ(j["scenarios"].size(), 1u);
  EXPECT_EQ(j["scenarios"][0]["arrivals"], count);
  EXPECT_NEAR(count, rate * duration + 1, 1.5) << "duration " << duration;
  const std::string junit = testing::ReadFile(dir + "/junit.xml");
  EXPECT_NE(junit.find(pass ? "tests=\"2\" failures=\"0\""
                            : "tests=\"2\" failures=\"2\""),
            std::string::npos)
      << junit;
}

TEST(OnceMode, StoppedEarlyBySigtermItStillWritesTheSummaryJsonAndJUnit) {
  ExpectAnEarlyStopStillReports(SIGTERM, /*pass=*/true);
}

TEST(OnceMode, StoppedEarlyBySigintAFailedRunStillWritesItsVerdictAndExitsOne) {
  ExpectAnEarlyStopStillReports(SIGINT, /*pass=*/false);
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

// ---- Schedules end to end ----------------------------------------------

// Poisson arrivals: the gaps between them are exponential with the
// configured mean, as the target sees them. polar-sim stamps each event on
// arrival; 10/s for 15 s gives ~150 gaps, tested against Exp(10/s) with
// Kolmogorov-Smirnov at p = 0.001 (critical D = 1.95 / sqrt(gaps), ~0.16).
// Evenly spaced arrivals would put every gap at the mean, where the
// exponential CDF is 1 - 1/e: D = 0.63. 10/s keeps the gaps (100 ms on
// average) large next to the few ms the send and the receipt add to each.
TEST(Schedules, PoissonArrivalsHaveExponentialGapsWithTheConfiguredMean) {
  Sim sim = StartSim({"--event-lag", "0ms"});
  const double rate = 10;
  const int seconds = 15;
  auto loadd = StartLoadd(fmt::format(R"(
[target]
base_url = "{}"

[metrics]
listen = "127.0.0.1:0"

[scenarios.ingest]
type = "event_ingestion"
rate = "{:.0f}/s"
arrivals = "poisson"
batch_size = 1
)",
                                      sim.base_url(), rate),
                          {"--once", "--duration", fmt::format("{}s", seconds)},
                          {{"LOAD_TEST_API_TOKEN", sim.token()}});
  ASSERT_EQ(loadd->Wait(60s), 0) << loadd->Stderr();
  const std::vector<double> times = testing::StoredEventTimes(sim);
  // The count of a Poisson process over 15 s: 150 +- 4.5 sigma (sqrt(150)).
  const double n = static_cast<double>(times.size());
  EXPECT_NEAR(n, rate * seconds, 4.5 * std::sqrt(rate * seconds));
  ASSERT_GE(times.size(), 50u);
  std::vector<double> gaps;
  for (std::size_t i = 1; i < times.size(); ++i)
    gaps.push_back(times[i] - times[i - 1]);
  std::sort(gaps.begin(), gaps.end());
  const double m = static_cast<double>(gaps.size());
  double d = 0;
  for (std::size_t i = 0; i < gaps.size(); ++i) {
    const double cdf = 1 - std::exp(-rate * gaps[i]);
    d = std::max({d, cdf - static_cast<double>(i) / m,
                  static_cast<double>(i + 1) / m - cdf});
  }
  EXPECT_LT(d, 1.95 / std::sqrt(m))
      << "KS distance from Exp(" << rate << "/s) over " << m << " gaps";
  // The mean gap: 1/rate, within 4.5 standard errors (1/rate/sqrt(m)).
  double sum = 0;
  for (double g : gaps) sum += g;
  EXPECT_NEAR(sum / m, 1 / rate, 4.5 / rate / std::sqrt(m));
  std::printf("poisson: %zu arrivals, KS D %.3f (critical %.3f)\n",
              times.size(), d, 1.95 / std::sqrt(m));
}

// Asia/Kolkata is UTC+05:30 all year (no daylight saving since 1945): the
// test computes the local wall clock itself, independently of polar-loadd's
// TZif reader, and a daemon reading the windows as UTC would be 5.5 h off.
constexpr int64_t kKolkataOffsetSeconds = 5 * 3600 + 30 * 60;

struct LocalTime {
  int weekday;  // 0 = Monday
  int minute;   // of the day
};

LocalTime KolkataAt(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds + kKolkataOffsetSeconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return {(tm.tm_wday + 6) % 7, tm.tm_hour * 60 + tm.tm_min};
}

std::string Hhmm(int minute) {
  return fmt::format("{:02}:{:02}", minute / 60, minute % 60);
}

constexpr std::array<const char*, 7> kDays = {"Mon", "Tue", "Wed", "Thu",
                                              "Fri", "Sat", "Sun"};

// A weekly window in a time zone, end to end: polar-loadd starts inside a
// window of today (local) that ends at the next minute, runs its rate, and
// falls back to `otherwise` on that local minute. The same hours on another
// day never apply. The test waits for a real minute boundary (3 to 63 s; the
// load is light, so other tests run beside it).
TEST(Schedules, AWeeklyWindowInItsTimeZoneStartsAndEndsOnItsLocalMinutes) {
  Sim sim = StartSim();
  using Wall = std::chrono::system_clock;
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          Wall::now().time_since_epoch())
                          .count();
  int64_t edge = (now / 60 + 1) * 60;
  if (edge - now < 3) edge += 60;  // start well inside the window
  const LocalTime start = KolkataAt(edge - 600), end = KolkataAt(edge);
  const std::string hours = Hhmm(start.minute) + "-" + Hhmm(end.minute);
  auto scenario = [&](const std::string& name, int day, double otherwise) {
    return fmt::format(R"(
[scenarios.{0}]
type = "event_ingestion"
batch_size = 1
[scenarios.{0}.schedule]
type = "weekly"
time_zone = "Asia/Kolkata"
otherwise = "{1}/s"
windows = [{{ days = "{2}", hours = "{3}", rate = "20/s" }}]
)",
                       name, otherwise, kDays[static_cast<std::size_t>(day)],
                       hours);
  };
  const std::string config = fmt::format(R"(
[target]
base_url = "{}"

[metrics]
listen = "127.0.0.1:0"
)",
                                         sim.base_url()) +
                             scenario("today", start.weekday, 2) +
                             scenario("elsewhen", (start.weekday + 3) % 7, 3);
  auto loadd = StartLoadd(config, {}, {{"LOAD_TEST_API_TOKEN", sim.token()}});
  const std::string url = MetricsUrl(*loadd);
  SCOPED_TRACE(fmt::format("window {} {} Asia/Kolkata, edge at {}",
                           kDays[static_cast<std::size_t>(start.weekday)],
                           hours, edge));
  auto scrape = [&] {
    return testing::ParseMetrics(testing::HttpGet(url).body);
  };
  auto gauge = [](const std::map<std::string, double>& m,
                  const std::string& name) {
    return testing::SumSeries(m, "polar_loadd_target_rate",
                              {"scenario=\"" + name + "\""});
  };
  auto arrivals = [](const std::map<std::string, double>& m,
                     const std::string& name) {
    return testing::SumSeries(m, "polar_loadd_arrivals_total",
                              {"scenario=\"" + name + "\""});
  };
  auto wall_seconds = [] {
    return std::chrono::duration<double>(Wall::now().time_since_epoch())
        .count();
  };
  const double before_inside = wall_seconds();
  const auto inside = scrape();
  const double after_inside = wall_seconds();
  ASSERT_LT(after_inside, static_cast<double>(edge))
      << "started too late to see the window";
  EXPECT_EQ(gauge(inside, "today"), 20);
  EXPECT_EQ(gauge(inside, "elsewhen"), 3) << "another day's window";

  // One second past the edge: the window is over.
  std::this_thread::sleep_until(Wall::time_point(std::chrono::seconds(edge)) +
                                1s);
  const auto a0 = std::chrono::steady_clock::now();
  const double before_after = wall_seconds();
  const auto after = scrape();
  const double after_after = wall_seconds();
  EXPECT_EQ(gauge(after, "today"), 2);
  EXPECT_EQ(gauge(after, "elsewhen"), 3);
  // Between the two scrapes: 20/s up to the edge, 2/s since. Each scrape
  // happened within the instants taken around it; 5% and one arrival at
  // each end for a busy machine.
  const double e = static_cast<double>(edge);
  EXPECT_GE(arrivals(after, "today") - arrivals(inside, "today"),
            (20 * (e - after_inside) + 2 * (before_after - e)) * 0.95 - 2);
  EXPECT_LE(arrivals(after, "today") - arrivals(inside, "today"),
            (20 * (e - before_inside) + 2 * (after_after - e)) * 1.05 + 2);
  std::this_thread::sleep_for(3s);
  const auto later = scrape();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - a0)
          .count();
  EXPECT_NEAR(arrivals(later, "today") - arrivals(after, "today"), 2 * elapsed,
              1.5);
  EXPECT_NEAR(arrivals(later, "elsewhen") - arrivals(after, "elsewhen"),
              3 * elapsed, 1.5);
  loadd->Signal(SIGTERM);
  EXPECT_EQ(loadd->Wait(15s), 0);
}

}  // namespace
}  // namespace polar::engine_e2e
