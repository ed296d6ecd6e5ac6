// End to end: polar-loadd as a systemd service would run it, with our own
// NOTIFY_SOCKET standing in for systemd: readiness, watchdog, reload, drain,
// exit codes and log hygiene. Targets are polar-sim or a scripted
// TestHttpServer, all on loopback with port 0.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <time.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/support/daemons.h"
#include "tests/support/notify_socket.h"
#include "tests/support/process.h"
#include "tests/support/test_http_server.h"

namespace polar::service_e2e {
namespace {

using namespace std::chrono_literals;
using testing::NotifySocket;
using testing::Process;
using testing::Sim;
using testing::StartSim;
using testing::TestHttpServer;
using testing::TestHttpServerOptions;
using Metrics = std::map<std::string, double>;

std::string Config(const std::string& base_url, const std::string& rate,
                   const std::string& extra = "") {
  return fmt::format(R"([target]
base_url = "{}"

[metrics]
listen = "127.0.0.1:0"

[scenarios.ingest]
type = "event_ingestion"
rate = "{}"
batch_size = 1
{}
)",
                     base_url, rate, extra);
}

// polar-loadd started from a config file in its own directory, with a
// NOTIFY_SOCKET; the file can be rewritten and reloaded.
class Loadd {
 public:
  Loadd(const std::string& config, const std::string& token,
        std::map<std::string, std::string> env = {}) {
    dir_ = testing::TempDir();
    path_ = dir_ + "/polar-loadd.toml";
    testing::WriteFile(path_, config);
    env["NOTIFY_SOCKET"] = notify_.path();
    if (!token.empty()) env["LOAD_TEST_API_TOKEN"] = token;
    process_ = std::make_unique<Process>(
        POLAR_LOADD_BIN, std::vector<std::string>{"--config", path_}, env);
  }

  Process& process() { return *process_; }
  NotifySocket& notify() { return notify_; }
  const std::string& path() const { return path_; }

  // Waits for READY=1 (the first, or the next one after index `from`).
  std::size_t WaitReady(std::size_t from = 0) {
    auto i = notify_.WaitFor("READY=1", from, 15s);
    if (!i) {
      throw std::runtime_error("no READY=1; stderr:\n" + process_->Stderr());
    }
    return *i;
  }

  // The last "metrics on http://HOST:PORT/metrics" line in stderr.
  std::string MetricsUrl() const {
    std::string err = process_->Stderr();
    std::regex re(R"(metrics on (http://127\.0\.0\.[0-9]+:[0-9]+/metrics))");
    std::string url;
    for (std::sregex_iterator it(err.begin(), err.end(), re), end; it != end;
         ++it) {
      url = (*it)[1].str();
    }
    return url;
  }

  Metrics Scrape() const {
    auto r = testing::HttpGet(MetricsUrl());
    EXPECT_EQ(r.status, 200) << r.error;
    return testing::ParseMetrics(r.body);
  }

  // Rewrites the config, sends SIGHUP and waits for RELOADING=1 then READY=1.
  void Reload(const std::string& config) {
    testing::WriteFile(path_, config);
    std::size_t from = notify_.size();
    process_->Signal(SIGHUP);
    auto reloading = notify_.WaitFor("RELOADING=1", from, 10s);
    ASSERT_TRUE(reloading) << process_->Stderr();
    WaitReady(*reloading);
  }

 private:
  NotifySocket notify_;
  std::string dir_;
  std::string path_;
  std::unique_ptr<Process> process_;
};

double Requests(const Metrics& m) {
  return testing::SumSeries(m, "polar_loadd_requests_total");
}

// Events polar-sim stored (each request carries one: batch_size = 1).
double SimInserted(const Sim& sim) {
  auto r = testing::HttpGet(sim.metrics_url());
  EXPECT_EQ(r.status, 200) << r.error;
  return testing::SumSeries(testing::ParseMetrics(r.body),
                            "polar_sim_events_ingested_total",
                            {"result=\"inserted\""});
}

// Reloads to a rate of 1/h (one arrival at the reload, the next an hour
// later) and waits until nothing is in flight: then every request polar-loadd
// ever sent has been answered and counted, and its counters must equal what
// polar-sim stored, exactly. A counter that restarted at a reload would have
// lost what came before it. Returns the last scrape.
Metrics QuiesceAndExpectCountersMatchTheTarget(Loadd& loadd, const Sim& sim,
                                               const std::string& config) {
  loadd.Reload(config);
  Metrics m;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    std::this_thread::sleep_for(100ms);
    m = loadd.Scrape();
  } while (testing::SumSeries(m, "polar_loadd_in_flight") != 0 &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_in_flight"), 0);
  const double stored = SimInserted(sim);
  EXPECT_EQ(Requests(m), stored) << "every request counted once, across "
                                    "every reload";
  EXPECT_EQ(
      testing::SumSeries(m, "polar_loadd_requests_total", {"outcome=\"ok\""}),
      stored);
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_request_latency_seconds_count"),
            stored)
      << "the latency histogram counted every request too";
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_arrivals_total"), stored);
  return m;
}

uint64_t MonotonicMicros() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 +
         static_cast<uint64_t>(ts.tv_nsec) / 1'000;
}

TEST(Service, NotifySocketSeesReadyWatchdogReloadingAndStoppingInOrder) {
  Sim sim = StartSim();
  // WATCHDOG_USEC=400ms: pings every 200 ms.
  Loadd loadd(Config(sim.base_url(), "20/s"), sim.token(),
              {{"WATCHDOG_USEC", "400000"}});
  loadd.WaitReady();
  // Ready means the metrics port is already bound and answering.
  std::string url = loadd.MetricsUrl();
  ASSERT_FALSE(url.empty()) << loadd.process().Stderr();
  EXPECT_EQ(testing::HttpGet(url).status, 200);

  std::this_thread::sleep_for(1500ms);
  uint64_t before = MonotonicMicros();
  loadd.Reload(Config(sim.base_url(), "30/s"));
  uint64_t after = MonotonicMicros();
  std::this_thread::sleep_for(300ms);
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
  ASSERT_TRUE(loadd.notify().WaitFor("STOPPING=1", 0, 1s));

  std::vector<std::string> lifecycle;
  std::vector<std::chrono::steady_clock::time_point> pings;
  for (const auto& m : loadd.notify().Messages()) {
    EXPECT_EQ(m.pid, loadd.process().pid()) << "NotifyAccess=main";
    if (m.text == "WATCHDOG=1") {
      pings.push_back(m.at);
      continue;
    }
    if (m.text.rfind("STATUS=", 0) == 0) continue;
    lifecycle.push_back(m.text.substr(0, m.text.find('\n')));
    if (m.text.rfind("RELOADING=1", 0) == 0) {
      std::size_t eq = m.text.find("MONOTONIC_USEC=");
      ASSERT_NE(eq, std::string::npos) << m.text;
      uint64_t usec = std::stoull(m.text.substr(eq + 15));
      EXPECT_GE(usec, before);
      EXPECT_LE(usec, after);
    }
    if (m.text.rfind("STOPPING=1", 0) == 0) {
      EXPECT_NE(m.text.find("EXTEND_TIMEOUT_USEC="), std::string::npos);
    }
  }
  EXPECT_EQ(lifecycle, (std::vector<std::string>{"READY=1", "RELOADING=1",
                                                 "READY=1", "STOPPING=1"}));
  // About 2 s of life at one ping per 200 ms.
  ASSERT_GE(pings.size(), 6u);
  std::vector<double> gaps;
  for (std::size_t i = 1; i < pings.size(); ++i)
    gaps.push_back(
        std::chrono::duration<double>(pings[i] - pings[i - 1]).count());
  std::sort(gaps.begin(), gaps.end());
  double median = gaps[gaps.size() / 2];
  EXPECT_NEAR(median, 0.200, 0.040) << "pings at half of WATCHDOG_USEC";
  EXPECT_LT(gaps.back(), 0.400) << "never a gap the watchdog would punish";
}

TEST(Service, TheWatchdogStopsWhileTheLoopIsBlocked) {
  Sim sim = StartSim();
  // The test hook: SIGUSR2 blocks the loop for 1.5 s (see App's
  // InstallTestHooks); pings are due every 100 ms.
  Loadd loadd(Config(sim.base_url(), "10/s"), sim.token(),
              {{"WATCHDOG_USEC", "200000"},
               {"POLAR_LOADD_TEST_HOOKS", "1"},
               {"POLAR_LOADD_TEST_BLOCK_MS", "1500"}});
  loadd.WaitReady();
  std::this_thread::sleep_for(500ms);
  loadd.process().Signal(SIGUSR2);
  ASSERT_TRUE(loadd.process().WaitForStderr("event loop unblocked", 10s));
  std::this_thread::sleep_for(500ms);
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);

  std::vector<std::chrono::steady_clock::time_point> pings;
  for (const auto& m : loadd.notify().Messages()) {
    if (m.text == "WATCHDOG=1") pings.push_back(m.at);
  }
  ASSERT_GE(pings.size(), 4u);
  double longest = 0;
  std::size_t after_gap = 0;
  for (std::size_t i = 1; i < pings.size(); ++i) {
    double gap = std::chrono::duration<double>(pings[i] - pings[i - 1]).count();
    if (gap > longest) {
      longest = gap;
      after_gap = pings.size() - i;
    }
  }
  // Silent for the whole block (systemd would have killed us at 200 ms)...
  EXPECT_GE(longest, 1.4);
  // ...and pinging again once the loop runs.
  EXPECT_GE(after_gap, 3u);
}

TEST(Service, TheLoopBlockingHookIsOffUnlessTheTestVariableIsSet) {
  Sim sim = StartSim();
  Loadd loadd(Config(sim.base_url(), "5/s"), sim.token());
  loadd.WaitReady();
  loadd.process().Signal(SIGUSR2);
  // SIGUSR2's default action: the process dies by the signal.
  EXPECT_EQ(loadd.process().Wait(10s), 128 + SIGUSR2);
}

TEST(Service, AValidReloadKeepsCountersAndChangesTheRate) {
  Sim sim = StartSim();
  Loadd loadd(Config(sim.base_url(), "20/s"), sim.token());
  loadd.WaitReady();
  std::this_thread::sleep_for(1500ms);
  Metrics m0 = loadd.Scrape();
  ASSERT_GT(Requests(m0), 15);

  loadd.Reload(Config(sim.base_url(), "60/s"));
  Metrics m1 = loadd.Scrape();
  EXPECT_GE(Requests(m1), Requests(m0)) << "counters must not reset";
  EXPECT_GE(testing::SumSeries(m1, "polar_loadd_request_latency_seconds_count"),
            testing::SumSeries(m0, "polar_loadd_request_latency_seconds_count"))
      << "histograms must not reset";
  EXPECT_EQ(testing::SumSeries(m1, "polar_loadd_target_rate"), 60);
  EXPECT_EQ(testing::SumSeries(m1, "polar_loadd_config_reloads_total",
                               {"result=\"success\""}),
            1);
  EXPECT_EQ(testing::SumSeries(m1, "polar_loadd_config_last_reload_successful"),
            1);

  std::this_thread::sleep_for(500ms);
  auto t0 = std::chrono::steady_clock::now();
  Metrics a = loadd.Scrape();
  std::this_thread::sleep_for(2s);
  Metrics b = loadd.Scrape();
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  double rate = (Requests(b) - Requests(a)) / elapsed;
  EXPECT_NEAR(rate, 60, 60 * 0.15) << "the new rate is in force";
  EXPECT_EQ(
      testing::SumSeries(b, "polar_loadd_requests_total", {"outcome=\"ok\""}),
      Requests(b));

  // Exactly: the counters hold every request of both configurations.
  Metrics end = QuiesceAndExpectCountersMatchTheTarget(
      loadd, sim, Config(sim.base_url(), "1/h"));
  EXPECT_EQ(testing::SumSeries(end, "polar_loadd_config_reloads_total",
                               {"result=\"success\""}),
            2);
  EXPECT_EQ(testing::SumSeries(end, "polar_loadd_config_reloads_total",
                               {"result=\"failure\""}),
            0);

  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
}

TEST(Service, AnInvalidReloadKeepsTheOldConfigRunningAndCountsAFailure) {
  Sim sim = StartSim();
  Loadd loadd(Config(sim.base_url(), "20/s"), sim.token());
  loadd.WaitReady();
  std::this_thread::sleep_for(500ms);

  // Two problems; both must be logged with file:line:col.
  loadd.Reload(Config(sim.base_url(), "lots", "colour = \"blue\""));
  std::string err = loadd.process().Stderr();
  EXPECT_NE(err.find(loadd.path() + ":9:8: scenarios.ingest.rate:"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find(loadd.path() + ":11:10: scenarios.ingest.colour:"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("still running the previous configuration"),
            std::string::npos);

  Metrics m0 = loadd.Scrape();
  EXPECT_EQ(testing::SumSeries(m0, "polar_loadd_config_reloads_total",
                               {"result=\"failure\""}),
            1);
  EXPECT_EQ(testing::SumSeries(m0, "polar_loadd_config_last_reload_successful"),
            0);
  EXPECT_EQ(testing::SumSeries(m0, "polar_loadd_target_rate"), 20);
  std::this_thread::sleep_for(1s);
  Metrics m1 = loadd.Scrape();
  EXPECT_GT(Requests(m1) - Requests(m0), 10) << "the old config keeps running";

  // A fixed file reloads fine afterwards.
  loadd.Reload(Config(sim.base_url(), "10/s"));
  Metrics m2 = loadd.Scrape();
  EXPECT_EQ(testing::SumSeries(m2, "polar_loadd_config_reloads_total",
                               {"result=\"success\""}),
            1);
  EXPECT_EQ(testing::SumSeries(m2, "polar_loadd_config_last_reload_successful"),
            1);
  EXPECT_EQ(testing::SumSeries(m2, "polar_loadd_target_rate"), 10);

  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
}

// The units' ExecReload=: `polar-loadd --reload PID` waits for the daemon's
// verdict, so systemctl reload fails when the daemon refused the file (and
// returns only once a good one is applied).
TEST(Service, ReloadCommandExitsWithTheDaemonsVerdict) {
  Sim sim = StartSim();
  Loadd loadd(Config(sim.base_url(), "20/s"), sim.token());
  loadd.WaitReady();
  const std::string pid = std::to_string(loadd.process().pid());
  auto reload = [&] {
    Process client(POLAR_LOADD_BIN, {"--reload", pid}, {});
    auto code = client.Wait(15s);
    return std::make_pair(code.value_or(-1), client.Stderr() + client.Stdout());
  };

  testing::WriteFile(loadd.path(), Config(sim.base_url(), "lots"));
  auto [refused, refused_text] = reload();
  EXPECT_EQ(refused, 78) << refused_text;
  EXPECT_NE(refused_text.find("refused"), std::string::npos) << refused_text;
  Metrics m0 = loadd.Scrape();
  EXPECT_EQ(testing::SumSeries(m0, "polar_loadd_target_rate"), 20)
      << "the old config keeps running";

  // A new metrics address that cannot be bound is refused too: a check of
  // the file alone would have passed it.
  TestHttpServer squatter(TestHttpServerOptions{});
  std::string taken = Config(sim.base_url(), "10/s");
  const std::string host_port = squatter.base_url().substr(7);  // http://
  taken.replace(taken.find("127.0.0.1:0"), 11, host_port);
  testing::WriteFile(loadd.path(), taken);
  auto [bind_refused, bind_text] = reload();
  EXPECT_EQ(bind_refused, 78) << bind_text;

  testing::WriteFile(loadd.path(), Config(sim.base_url(), "10/s"));
  auto [applied, applied_text] = reload();
  EXPECT_EQ(applied, 0) << applied_text;
  // The answer comes after the swap: the new rate is already in place.
  Metrics m1 = loadd.Scrape();
  EXPECT_EQ(testing::SumSeries(m1, "polar_loadd_target_rate"), 10);
  EXPECT_EQ(testing::SumSeries(m1, "polar_loadd_config_reloads_total",
                               {"result=\"failure\""}),
            2);

  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
  // Nobody to answer any more.
  EXPECT_EQ(reload().first, 69);
}

double Series(const Metrics& m, const std::string& name,
              const std::string& scenario) {
  return testing::SumSeries(m, name, {"scenario=\"" + scenario + "\""});
}

// A scenario table for the reload tests below.
std::string ScenarioTable(const std::string& name, const std::string& rate) {
  return fmt::format(R"(
[scenarios.{}]
type = "event_ingestion"
rate = "{}"
batch_size = 1
)",
                     name, rate);
}

std::string Targeted(const std::string& base_url,
                     const std::vector<std::string>& scenarios) {
  std::string config = fmt::format(R"([target]
base_url = "{}"

[metrics]
listen = "127.0.0.1:0"
)",
                                   base_url);
  for (const std::string& s : scenarios) config += s;
  return config;
}

// One reload that removes `gone`, renames `old` to `renamed` and adds
// `added`, while `kept` stays as it was. Removed and renamed-away scenarios
// stop: their series are frozen at what they counted. The renamed one is a
// new scenario to the metrics (its name is its identity) and starts from
// zero, as does the added one. The kept one goes on counting from where it
// was, at its rate, through the reload. Nothing is lost: at the end every
// series together equals what polar-sim stored.
TEST(Service, AReloadAddsRemovesAndRenamesScenariosAndTheRestCarriesOn) {
  Sim sim = StartSim();
  Loadd loadd(Targeted(sim.base_url(), {ScenarioTable("kept", "20/s"),
                                        ScenarioTable("gone", "10/s"),
                                        ScenarioTable("old", "10/s")}),
              sim.token());
  loadd.WaitReady();
  std::this_thread::sleep_for(1500ms);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const Metrics m0 = loadd.Scrape();
  ASSERT_GT(Series(m0, "polar_loadd_arrivals_total", "gone"), 5);
  ASSERT_GT(Series(m0, "polar_loadd_arrivals_total", "old"), 5);
  EXPECT_EQ(Series(m0, "polar_loadd_arrivals_total", "renamed"), 0);

  const auto reload_start = Clock::now();
  loadd.Reload(Targeted(sim.base_url(), {ScenarioTable("kept", "20/s"),
                                         ScenarioTable("renamed", "10/s"),
                                         ScenarioTable("added", "5/s")}));
  const auto reload_end = Clock::now();
  // Answers to requests sent before the reload come back (loopback: ms).
  std::this_thread::sleep_for(300ms);
  const Metrics m1 = loadd.Scrape();
  std::this_thread::sleep_for(1500ms);
  const auto t2 = Clock::now();
  const Metrics m2 = loadd.Scrape();
  auto seconds = [](Clock::duration d) {
    return std::chrono::duration<double>(d).count();
  };

  for (const char* name : {"gone", "old"}) {
    SCOPED_TRACE(name);
    for (const char* series :
         {"polar_loadd_arrivals_total", "polar_loadd_requests_total"}) {
      EXPECT_EQ(Series(m2, series, name), Series(m1, series, name))
          << series << " still grows";
    }
    EXPECT_EQ(Series(m2, "polar_loadd_in_flight", name), 0);
    EXPECT_EQ(Series(m2, "polar_loadd_target_rate", name), 0);
    EXPECT_GE(Series(m2, "polar_loadd_arrivals_total", name),
              Series(m0, "polar_loadd_arrivals_total", name))
        << "what it counted stays";
  }
  // New names start from zero: only what they sent since the reload, at
  // their rates (10/s and 5/s), counting the arrival due at once.
  for (const auto& [name, rate] :
       {std::pair<const char*, double>{"renamed", 10}, {"added", 5}}) {
    SCOPED_TRACE(name);
    const double n = Series(m2, "polar_loadd_arrivals_total", name);
    EXPECT_LE(n, rate * seconds(t2 - reload_start) + 1.5);
    EXPECT_GE(n, rate * seconds(t2 - reload_end) * 0.9 - 1);
    EXPECT_EQ(Series(m2, "polar_loadd_target_rate", name), rate);
  }
  // The kept scenario neither restarted its counters nor stalled: 20/s over
  // the whole window around the reload, measured here.
  const double kept = Series(m2, "polar_loadd_arrivals_total", "kept") -
                      Series(m0, "polar_loadd_arrivals_total", "kept");
  EXPECT_NEAR(kept / seconds(t2 - t0), 20, 20 * 0.1)
      << kept << " arrivals in " << seconds(t2 - t0) << " s";
  EXPECT_GE(Series(m1, "polar_loadd_requests_total", "kept"),
            Series(m0, "polar_loadd_requests_total", "kept"));

  // Every request of every scenario, old names included, equals what the
  // target stored.
  QuiesceAndExpectCountersMatchTheTarget(
      loadd, sim,
      Targeted(sim.base_url(),
               {ScenarioTable("kept", "1/h"), ScenarioTable("renamed", "1/h"),
                ScenarioTable("added", "1/h")}));
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
}

// target.token_file is read at every reload: a rotated token (an operator or
// a credential manager replacing the file) is used from the reload on, by
// new requests on new connections, and the next rotation again. The file
// starts with a token polar-sim refuses (401), then the right one, then a
// wrong one again. The tokens never reach the log.
TEST(Service, ARotatedTokenFileIsPickedUpOnReload) {
  Sim sim = StartSim();
  const std::string dir = testing::TempDir();
  const std::string wrong = "polar_oat_RotatedAwayRotatedAwayRotatedAway00000";
  const std::string rotate_to = sim.token();
  // Replaced as a whole (write aside, rename), as credential tools do.
  auto write_token = [&](const std::string& token) {
    testing::WriteFile(dir + "/token.new", token + "\n");
    ASSERT_EQ(
        std::rename((dir + "/token.new").c_str(), (dir + "/token").c_str()), 0);
  };
  write_token(wrong);
  std::string config = Config(sim.base_url(), "20/s");
  config.replace(0, 8, "[target]\ntoken_file = \"" + dir + "/token\"");
  Loadd loadd(config, "");
  loadd.WaitReady();
  // Outcomes over one second after `settle` (answers to requests sent
  // before a reload come back within it).
  auto second_of = [&](const char* outcome) {
    std::this_thread::sleep_for(300ms);
    Metrics a = loadd.Scrape();
    std::this_thread::sleep_for(1s);
    Metrics b = loadd.Scrape();
    const double all = Requests(b) - Requests(a);
    const double counted =
        testing::SumSeries(b, "polar_loadd_requests_total",
                           {std::string("outcome=\"") + outcome + "\""}) -
        testing::SumSeries(a, "polar_loadd_requests_total",
                           {std::string("outcome=\"") + outcome + "\""});
    EXPECT_GE(all, 10) << outcome;
    EXPECT_EQ(counted, all) << "every request " << outcome;
  };
  second_of("http_4xx");

  write_token(rotate_to);
  loadd.Reload(config);  // the same file: only the token in it changed
  second_of("ok");

  write_token(wrong);
  loadd.Reload(config);
  second_of("http_4xx");

  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
  const std::string err = loadd.process().Stderr();
  EXPECT_EQ(err.find(wrong), std::string::npos) << err;
  EXPECT_EQ(err.find(rotate_to), std::string::npos) << err;
}

TEST(Service, AReloadToANewTargetMovesTheLoadThere) {
  Sim first = StartSim();
  Sim second = StartSim();
  Loadd loadd(Config(first.base_url(), "20/s"), first.token());
  loadd.WaitReady();
  std::this_thread::sleep_for(500ms);
  loadd.Reload(Config(second.base_url(), "20/s"));
  // With the first target gone, anything still sent there would fail.
  first.process->Signal(SIGTERM);
  ASSERT_TRUE(first.process->Wait(10s));
  Metrics m0 = loadd.Scrape();
  std::this_thread::sleep_for(1s);
  Metrics m1 = loadd.Scrape();
  EXPECT_GT(Requests(m1) - Requests(m0), 10);
  EXPECT_EQ(
      testing::SumSeries(m1, "polar_loadd_requests_total", {"outcome=\"ok\""}),
      Requests(m1))
      << loadd.process().Stderr();
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
}

TEST(Service, RequestsInFlightAcrossAReloadFinishOnTheOldTargetAndAreCounted) {
  // Answers take 600 ms, so ~12 requests are in flight at 20/s when the
  // reload moves the load to a second target at 1/h (one arrival at the
  // reload, the next an hour later). The old target's answers can only be
  // counted through the retired scenario and engine.
  TestHttpServer first({.delay = 600ms});
  TestHttpServer second({.delay = 600ms});
  Loadd loadd(Config(first.base_url(), "20/s"), "polar_oat_reload_test");
  loadd.WaitReady();
  std::this_thread::sleep_for(1s);
  loadd.Reload(Config(second.base_url(), "1/h"));
  uint64_t in_flight_at_reload = first.requests() - first.answers();
  EXPECT_GE(in_flight_at_reload, 5u);
  ASSERT_TRUE(loadd.process().WaitForStderr(
      "the requests in flight to the old target " + first.base_url() +
          " finished",
      5s))
      << loadd.process().Stderr();
  EXPECT_EQ(first.answers(), first.requests());
  // The second target's one request is answered 600 ms after the reload.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (second.answers() < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(100ms);
  Metrics m = loadd.Scrape();
  EXPECT_EQ(second.requests(), 1u);
  EXPECT_EQ(Requests(m),
            static_cast<double>(first.answers() + second.answers()))
      << "every answer is counted, the old target's included";
  EXPECT_EQ(
      testing::SumSeries(m, "polar_loadd_requests_total", {"outcome=\"ok\""}),
      Requests(m));
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_in_flight"), 0);
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
}

TEST(Service, AReloadMovesTheMetricsListenerAndKeepsTheCounters) {
  Sim sim = StartSim();
  Loadd loadd(Config(sim.base_url(), "20/s"), sim.token());
  loadd.WaitReady();
  std::this_thread::sleep_for(500ms);
  std::string old_url = loadd.MetricsUrl();
  double before = Requests(loadd.Scrape());
  ASSERT_GT(before, 0);
  std::string moved = Config(sim.base_url(), "20/s");
  moved.replace(moved.find("127.0.0.1:0"), 11, "127.0.0.2:0");
  loadd.Reload(moved);
  std::string new_url = loadd.MetricsUrl();
  ASSERT_NE(new_url.find("127.0.0.2"), std::string::npos) << new_url;
  EXPECT_GE(Requests(loadd.Scrape()), before);
  EXPECT_NE(testing::HttpGet(old_url, 2s).status, 200)
      << "the old listener is closed";
  // The new listener serves the same counters, not fresh ones: exactly what
  // polar-sim stored since the start.
  std::string quiet = Config(sim.base_url(), "1/h");
  quiet.replace(quiet.find("127.0.0.1:0"), 11, "127.0.0.2:0");
  Metrics end = QuiesceAndExpectCountersMatchTheTarget(loadd, sim, quiet);
  EXPECT_EQ(loadd.MetricsUrl(), new_url) << "the same address stays bound";
  EXPECT_EQ(testing::SumSeries(end, "polar_loadd_config_reloads_total",
                               {"result=\"success\""}),
            2);
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
}

TEST(Service, SigtermDrainsRequestsInFlightWithinTheGracePeriod) {
  // Every answer takes 700 ms, so ~14 requests are always in flight at 20/s.
  TestHttpServer target({.delay = 700ms});
  Loadd loadd(
      Config(target.base_url(), "20/s", "[daemon]\nshutdown_grace = \"5s\""),
      "polar_oat_drain_test_token");
  loadd.WaitReady();
  std::this_thread::sleep_for(1500ms);
  auto t0 = std::chrono::steady_clock::now();
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(10s), 0);
  double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  std::string err = loadd.process().Stderr();
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(err, m, std::regex("draining ([0-9]+) in-flight")))
      << err;
  EXPECT_GE(std::stoi(m[1].str()), 5) << "requests were in flight at SIGTERM";
  EXPECT_EQ(err.find("abandoning"), std::string::npos) << err;
  EXPECT_EQ(target.answers(), target.requests())
      << "every request sent got its answer before the exit";
  EXPECT_LT(took, 5.0) << "within the grace period";
  EXPECT_GE(took, 0.3) << "it waited for the answers";
}

TEST(Service, SigtermAbandonsRequestsStillInFlightWhenTheGraceEnds) {
  TestHttpServer target({.never_answer = true});
  Loadd loadd(
      Config(target.base_url(), "20/s", "[daemon]\nshutdown_grace = \"1s\""),
      "polar_oat_drain_test_token");
  loadd.WaitReady();
  std::this_thread::sleep_for(500ms);
  auto t0 = std::chrono::steady_clock::now();
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(10s), 0);
  double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 4.0);
  EXPECT_NE(loadd.process().Stderr().find("drain grace period over"),
            std::string::npos);
}

TEST(Service, ABadConfigExits78AndNeverSaysReady) {
  Loadd loadd("[target]\ntoken = \"polar_oat_x\"\ntimeout = \"soon\"\n", "");
  EXPECT_EQ(loadd.process().Wait(10s), 78);
  std::string err = loadd.process().Stderr();
  EXPECT_NE(err.find(loadd.path() + ":3:11: target.timeout:"),
            std::string::npos)
      << err;
  EXPECT_FALSE(loadd.notify().WaitFor("READY=1", 0, 200ms));
}

TEST(Service, TheTokenNeverAppearsInLogsEvenWhenTheTargetEchoesIt) {
  const std::string token = "polar_oat_EchoedBackByAProxy0123456789abcdefghij";
  // A target that answers 401 with the Authorization header in the body.
  TestHttpServer target(
      {.status = 401, .body = R"({"detail":"bad credentials: {AUTH}"})"});
  std::string config = Config(target.base_url(), "10/s");
  config.insert(config.find("\n[metrics]"), "\ntoken = \"" + token + "\"");
  Loadd loadd(config, "");
  loadd.WaitReady();
  ASSERT_TRUE(loadd.process().WaitForStderr("http_4xx", 10s));
  // An invalid reload whose errors quote the token.
  std::string bad = config;
  bad.replace(bad.find("base_url = \""), 12,
              "base_url = \"ftp://" + token + "@");
  loadd.Reload(bad);
  ASSERT_TRUE(loadd.process().WaitForStderr("still running the previous", 5s));
  auto scraped = testing::HttpGet(loadd.MetricsUrl());
  EXPECT_EQ(scraped.status, 200);
  EXPECT_EQ(scraped.body.find(token), std::string::npos);
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
  std::string err = loadd.process().Stderr();
  EXPECT_EQ(err.find(token), std::string::npos) << err;
  EXPECT_NE(err.find("bad credentials: Bearer [redacted]"), std::string::npos)
      << err;
  EXPECT_NE(err.find("ftp://[redacted]@"), std::string::npos) << err;
}

}  // namespace
}  // namespace polar::service_e2e
