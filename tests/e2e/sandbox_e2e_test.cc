// End to end against Polar's sandbox rules: polar-sim --rate-limit sandbox
// (Polar's limits as rate_limit.py sets them and asgi-ratelimit applies them),
// polar-loadd's --check-config against them, and the behaviour sandbox and
// production show that a local Polar does not: the read replica behind
// GET /v1/checkouts/{id}, the checkout stream's 10-minute lifetime, paid
// products.
//
// Hours of Polar time run in seconds: polar-sim's --time-scale shortens its
// windows, blocks and lifetimes, and the config under test is compressed by
// the same factor (rates up, think times and poll intervals down), so every
// window of Polar's sees the requests it would see in real time. Load stays on
// loopback and every run is bounded (a fixed run time, then SIGTERM).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/daemons.h"
#include "tests/support/http_head.h"

namespace polar::sandbox_e2e {
namespace {

using namespace std::chrono_literals;
using testing::Loadd;
using testing::Sim;
using testing::StartSim;
using testing::SumSeries;
using json = nlohmann::json;
using Metrics = std::map<std::string, double>;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The config with `scale` seconds of real time standing for each second of
// Polar's: rates divided by it, think times, poll intervals and deadlines
// multiplied (request timeouts stay: loopback answers in milliseconds either
// way).
std::string Compressed(std::string toml, double scale) {
  std::string out;
  std::smatch m;
  const std::regex rate(R"re(rate = "([0-9.]+)/(s|min|h)")re");
  while (std::regex_search(toml, m, rate)) {
    out += m.prefix().str() + fmt::format("rate = \"{:.4f}/{}\"",
                                          std::stod(m[1]) / scale, m[2].str());
    toml = m.suffix().str();
  }
  toml = out + toml;
  out.clear();
  const std::regex duration(
      R"re((think_time|poll_interval|completion_deadline|deadline) = "([0-9.]+)(ms|s|m|h)")re");
  while (std::regex_search(toml, m, duration)) {
    const double unit = m[3] == "ms"  ? 1e-3
                        : m[3] == "s" ? 1
                        : m[3] == "m" ? 60
                                      : 3600;
    out += m.prefix().str() +
           fmt::format("{} = \"{:.0f}ms\"", m[1].str(),
                       std::max(1e3 * std::stod(m[2]) * unit * scale, 50.0));
    toml = m.suffix().str();
  }
  return out + toml;
}

void Replace(std::string& text, const std::string& from,
             const std::string& to) {
  const auto at = text.find(from);
  ASSERT_NE(at, std::string::npos) << "no \"" << from << "\"";
  text.replace(at, from.size(), to);
}

double SimCounter(const Sim& sim, const std::string& name,
                  const std::vector<std::string>& labels = {}) {
  auto r = testing::HttpGet(sim.metrics_url());
  return SumSeries(testing::ParseMetrics(r.body), name, labels);
}

testing::HttpResult SimGet(const Sim& sim, const std::string& path,
                           bool token = true) {
  return testing::HttpRequest(
      "GET", sim.base_url() + path, "",
      token ? std::vector<std::string>{"Authorization: Bearer " + sim.token()}
            : std::vector<std::string>{});
}

Metrics WaitFor(const Loadd& loadd,
                const std::function<bool(const Metrics&)>& done,
                std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  Metrics m;
  while (std::chrono::steady_clock::now() < end) {
    m = loadd.Scrape();
    if (!m.empty() && done(m)) return m;
    std::this_thread::sleep_for(200ms);
  }
  return m;
}

double Requests(const Metrics& m, const std::string& scenario,
                const std::string& step, const std::string& outcome) {
  return SumSeries(m, "polar_loadd_requests_total",
                   {"scenario=\"" + scenario + "\"", "step=\"" + step + "\"",
                    "outcome=\"" + outcome + "\""});
}

double NotOk(const Metrics& m) {
  double all = SumSeries(m, "polar_loadd_requests_total");
  return all - SumSeries(m, "polar_loadd_requests_total", {"outcome=\"ok\""});
}

void Stop(Loadd& loadd) {
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(20s), 0) << loadd.process().Stderr();
}

// ---- the shipped example --------------------------------------------------

// packaging/examples/sandbox.toml against polar-sim's sandbox rules for two
// hours of Polar time (72 s at a time scale of 0.01): not one 429, every step
// of every scenario ok, checkout completions and visibility lags measured.
TEST(SandboxE2E, TheShippedExampleRunsTwoPolarHoursWithoutA429) {
  constexpr double kScale = 0.01;
  constexpr auto kPolarTime = 2h + 2min;
  Sim sim = StartSim({"--rate-limit", "sandbox", "--time-scale",
                      fmt::format("{}", kScale), "--allow-loopback-webhooks",
                      "--event-lag", "20ms", "--replica-lag", "20ms"});
  std::string config = ReadFile(std::string(POLAR_SOURCE_DIR) +
                                "/packaging/examples/sandbox.toml");
  const int port = testing::FreeLoopbackPort();
  Replace(config, "listen = \"127.0.0.1:9477\"", "listen = \"127.0.0.1:0\"");
  Replace(config, "listen = \"127.0.0.1:9478\"",
          fmt::format("listen = \"127.0.0.1:{}\"", port));
  Replace(config,
          "register_url = \"https://polar-loadd.example.com/webhooks/polar\"",
          fmt::format("register_url = \"http://127.0.0.1:{}/webhooks/polar\"\n"
                      "register_allow_loopback = true",
                      port));
  config = Compressed(config, kScale);
  const auto start = std::chrono::steady_clock::now();
  Loadd loadd(config, sim.token(),
              {{"LOAD_TEST_HOST", sim.base_url()},
               {"LOAD_TEST_PRODUCT_ID", sim.free_product()}});
  loadd.WaitListening();
  std::this_thread::sleep_until(
      start + std::chrono::duration_cast<std::chrono::milliseconds>(kPolarTime *
                                                                    kScale));
  const Metrics m = loadd.Scrape();
  const double limited = SimCounter(sim, "polar_sim_rate_limited_total");
  Stop(loadd);

  EXPECT_EQ(limited, 0) << "429s from polar-sim's sandbox rules";
  EXPECT_EQ(NotOk(m), 0) << loadd.process().Stderr();
  // Every scenario's every step ran.
  for (const auto& [scenario, step] :
       std::vector<std::pair<std::string, std::string>>{
           {"checkout", "create"},
           {"checkout", "update"},
           {"checkout", "status"},
           {"checkout", "confirm"},
           {"checkout", "stream"},
           {"browse", "create"},
           {"browse", "update"},
           {"ingest", "ingest"},
           {"visibility", "ingest"},
           {"visibility", "probe"}}) {
    EXPECT_GT(Requests(m, scenario, step, "ok"), 0) << scenario << "/" << step;
  }
  // 15 confirms a Polar hour: about 30 in two, each one seen succeeding.
  const double confirms = Requests(m, "checkout", "confirm", "ok");
  EXPECT_GE(confirms, 25);
  EXPECT_LE(confirms, 33);
  EXPECT_GE(SumSeries(m, "polar_loadd_completion_seconds_count",
                      {"kind=\"checkout_succeeded\""}),
            confirms - 1);
  EXPECT_GT(SumSeries(m, "polar_loadd_completion_seconds_count",
                      {"scenario=\"visibility\""}),
            100);
  RecordProperty("confirms", static_cast<int>(confirms));
}

// ---- each limit broken ----------------------------------------------------

std::string Sandboxed(const std::string& scenarios,
                      const std::string& more = "") {
  return R"([target]
base_url = "https://sandbox-api.polar.sh"
token = "polar_oat_0123456789"
)" + more +
         "\n" + scenarios;
}

std::string CheckoutScenario(const std::string& rate,
                             const std::string& funnel) {
  return fmt::format(R"(
[scenarios.checkout]
type = "checkout"
rate = "{}"
product_id = "77d5072c-f7be-48fd-8bd4-abf9451d0bf0"
funnel = {}
)",
                     rate, funnel);
}

TEST(SandboxE2E, CheckConfigRefusesEachLimitByName) {
  const std::string dir = testing::TempDir();
  const std::string all = "{ update = 1.0, status = 1.0, confirm = 1.0 }";
  const std::string none = "{ update = 0.0, status = 0.0, confirm = 0.0 }";
  struct Case {
    std::string name, toml, limit;
  };
  const std::vector<Case> cases = {
      {"organization", Sandboxed(CheckoutScenario("120/min", none)),
       "Polar's sandbox allows 100 requests per minute from the "
       "organization"},
      {"client IP",
       Sandboxed(CheckoutScenario(
           "70/min", "{ update = 1.0, status = 1.0, confirm = 0.0 }")),
       "Polar's sandbox allows 100 requests per minute from this load box's "
       "IP, checkout page steps"},
      {"confirms a minute", Sandboxed(CheckoutScenario("7/min", all)),
       "Polar's sandbox allows 6 requests per minute from this load box's "
       "IP, checkout confirms"},
      {"confirms an hour", Sandboxed(CheckoutScenario("21/h", all)),
       "Polar's sandbox allows 20 requests per hour from this load box's IP, "
       "checkout confirms"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    testing::WriteFile(dir + "/limit.toml", c.toml);
    testing::Process p(POLAR_LOADD_BIN,
                       {"--check-config", "--config", dir + "/limit.toml"});
    EXPECT_NE(p.Wait(10s), 0);
    EXPECT_NE(p.Stderr().find(c.limit), std::string::npos) << p.Stderr();
    EXPECT_NE(p.Stderr().find("target.allow_over_limit = true"),
              std::string::npos);
    // Meant: the explicit key makes it a warning.
    testing::WriteFile(dir + "/limit.toml",
                       Sandboxed(c.toml.substr(c.toml.find("[scenarios")),
                                 "allow_over_limit = true"));
    testing::Process allowed(
        POLAR_LOADD_BIN, {"--check-config", "--config", dir + "/limit.toml"});
    EXPECT_EQ(allowed.Wait(10s), 0) << allowed.Stderr();
    EXPECT_NE(allowed.Stderr().find("warning: " + c.limit), std::string::npos);
  }
}

// The same four broken limits run against polar-sim's sandbox rules, as a
// daemon meets them: the step that spends the bucket gets 429, polar-sim counts
// it in the limit's zone, and the Retry-After the scenario pauses for is what
// asgi-ratelimit sends: the minute window's whole period (60 s, however much of
// the window was left) or, in the confirm zone, the 1800-s block, which then
// refuses that IP's client GET of a new checkout as well. Windows run at a
// time scale; Retry-After is in Polar's seconds and the daemon waits it in
// real ones, so its gate shows the figure Polar sent.
TEST(SandboxE2E, EachBrokenLimitIsAnsweredAsPolarWould) {
  struct Case {
    std::string name;
    double scale;  // polar-sim's --time-scale and the config's compression
    std::string rate, funnel;
    std::vector<std::string> steps;  // where the 429 may land
    std::string zone;                // polar-sim's zone label
    double retry_after;              // Polar's seconds
  };
  const std::string all = "{ update = 1.0, status = 1.0, confirm = 1.0 }";
  const std::vector<Case> cases = {
      {"organization",
       0.05,
       "120/min",
       "{ update = 0.0, status = 0.0, confirm = 0.0 }",
       {"create"},
       "api",
       60},
      {"client IP",
       0.05,
       "70/min",
       "{ update = 1.0, status = 1.0, confirm = 0.0 }",
       {"update", "status"},
       "api",
       60},
      {"confirms a minute",
       0.05,
       "7/min",
       all,
       {"confirm"},
       "checkout-confirm",
       1800},
      {"confirms an hour",
       0.001,
       "21/h",
       all,
       {"confirm"},
       "checkout-confirm",
       1800},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Sim sim = StartSim({"--rate-limit", "sandbox", "--time-scale",
                        fmt::format("{}", c.scale)});
    Loadd loadd(Compressed(fmt::format(R"([target]
base_url = "{}"
[metrics]
listen = "127.0.0.1:0"
[scenarios.checkout]
type = "checkout"
rate = "{}"
product_id = "{}"
funnel = {}
think_time = "0s"
completion = "poll"
poll_interval = "10s"
honour_retry_after = true
)",
                                       sim.base_url(), c.rate,
                                       sim.free_product(), c.funnel),
                           c.scale),
                sim.token());
    loadd.WaitListening();
    auto limited = [&](const Metrics& m) {
      double n = 0;
      for (const std::string& step : c.steps)
        n += Requests(m, "checkout", step, "rate_limited");
      return n;
    };
    Metrics m = WaitFor(
        loadd, [&](const Metrics& m) { return limited(m) >= 1; }, 30s);
    const auto seen = std::chrono::steady_clock::now();
    ASSERT_GE(limited(m), 1) << loadd.process().Stderr();
    // What the scenario was told to wait, less the real time since.
    auto status = testing::HttpGet(loadd.BaseUrl() + "/api/status");
    ASSERT_EQ(status.status, 200) << status.body;
    double gate = -1;
    const json board = json::parse(status.body);
    for (const json& s : board["scenarios"])
      if (s["name"] == "checkout")
        gate = s["control"]["retry_after_remaining_seconds"].get<double>();
    EXPECT_GT(gate, c.retry_after - 5) << status.body;
    EXPECT_LE(gate, c.retry_after);
    EXPECT_GE(SimCounter(sim, "polar_sim_rate_limited_by_zone_total",
                         {"zone=\"" + c.zone + "\""}),
              1);
    const bool block = c.retry_after == 1800;
    EXPECT_EQ(SimCounter(sim, "polar_sim_rate_limit_blocks_total"),
              block ? 1 : 0);
    if (block) {
      // The organization goes on; the IP's client GET is refused by the block.
      auto create =
          testing::HttpRequest("POST", sim.base_url() + "/v1/checkouts/",
                               json{{"product_id", sim.free_product()}}.dump(),
                               {"Authorization: Bearer " + sim.token(),
                                "Content-Type: application/json"});
      ASSERT_EQ(create.status, 201) << create.body;
      const std::string secret = json::parse(create.body)["client_secret"];
      auto get = SimGet(sim, "/v1/checkouts/client/" + secret, false);
      const double polar_since =
          std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                        seen + 500ms)
              .count() /
          c.scale;
      EXPECT_EQ(get.status, 429);
      const int retry =
          std::stoi(testing::HeaderValue(get.head, "retry-after"));
      EXPECT_LE(retry, 1800);
      EXPECT_GE(retry, 1800 - polar_since - 1);
    }
    Stop(loadd);
  }
}

// 7 confirms in a minute from one IP, in real time: the 7th is 429 with
// Retry-After 1800, and from then on every anonymous checkout request of that
// IP is refused, the checkout page's GET included, while the token's own
// requests (the organization's bucket) go on.
TEST(SandboxE2E, ASeventhConfirmInAMinuteBlocksTheWholeIpAsPolarDoes) {
  Sim sim = StartSim({"--rate-limit", "sandbox"});
  Loadd loadd(fmt::format(R"([target]
base_url = "{}"
[metrics]
listen = "127.0.0.1:0"
[scenarios.checkout]
type = "checkout"
product_id = "{}"
funnel = {{ update = 1.0, status = 1.0, confirm = 1.0 }}
think_time = "0s"
completion = "poll"
poll_interval = "200ms"
[scenarios.checkout.schedule]
type = "steps"
steps = [{{ rate = "2/s", for = "5s" }}, {{ rate = "0/s", for = "24h" }}]
)",
                          sim.base_url(), sim.free_product()),
              sim.token());
  loadd.WaitListening();
  Metrics m = WaitFor(
      loadd,
      [](const Metrics& m) {
        return Requests(m, "checkout", "confirm", "rate_limited") >= 1;
      },
      20s);
  EXPECT_EQ(Requests(m, "checkout", "confirm", "ok"), 6);
  EXPECT_GE(Requests(m, "checkout", "confirm", "rate_limited"), 1);
  // The same IP's client GET of a checkout: refused by the block.
  auto c = testing::HttpRequest("POST", sim.base_url() + "/v1/checkouts/",
                                json{{"product_id", sim.free_product()}}.dump(),
                                {"Authorization: Bearer " + sim.token(),
                                 "Content-Type: application/json"});
  ASSERT_EQ(c.status, 201) << c.body << " (the organization is not blocked)";
  const std::string secret = json::parse(c.body)["client_secret"];
  auto get = SimGet(sim, "/v1/checkouts/client/" + secret, /*token=*/false);
  EXPECT_EQ(get.status, 429);
  const int retry = std::stoi(testing::HeaderValue(get.head, "retry-after"));
  EXPECT_GE(retry, 1790);
  EXPECT_LE(retry, 1800);
  EXPECT_EQ(SimCounter(sim, "polar_sim_rate_limit_blocks_total",
                       {"zone=\"checkout-confirm\""}),
            1);
  Stop(loadd);
  EXPECT_NE(loadd.process().Stderr().find("429"), std::string::npos);
}

// The hour limit at no more than 4 confirms a Polar minute (never the
// minute's 6): the 21st in the hour blocks. One flow in flight at a time:
// after a stall of the loaded test machine the late arrivals are dropped
// rather than sent together, so their confirms cannot crowd into one Polar
// minute (1.2 s at a time scale of 0.02) and trip the minute's limit first.
// A flow's completion poll takes about every other slot, so the 21st confirm
// comes some 13 s into the run.
TEST(SandboxE2E, TwentyConfirmsAnHourBlockEvenUnderTheMinuteLimit) {
  Sim sim = StartSim({"--rate-limit", "sandbox", "--time-scale", "0.02"});
  Loadd loadd(Compressed(fmt::format(R"([target]
base_url = "{}"
[metrics]
listen = "127.0.0.1:0"
[scenarios.checkout]
type = "checkout"
product_id = "{}"
funnel = {{ update = 1.0, status = 1.0, confirm = 1.0 }}
think_time = "0s"
completion = "poll"
poll_interval = "10s"
rate = "4/min"
max_in_flight = 1
)",
                                     sim.base_url(), sim.free_product()),
                         0.02),
              sim.token());
  loadd.WaitListening();
  Metrics m = WaitFor(
      loadd,
      [](const Metrics& m) {
        return Requests(m, "checkout", "confirm", "rate_limited") >= 1;
      },
      30s);
  EXPECT_EQ(Requests(m, "checkout", "confirm", "ok"), 20);
  EXPECT_GE(Requests(m, "checkout", "confirm", "rate_limited"), 1);
  EXPECT_EQ(SimCounter(sim, "polar_sim_rate_limited_by_zone_total",
                       {"zone=\"checkout-confirm\"", "reason=\"window\""}),
            1);
  Stop(loadd);
}

// ---- what sandbox and production do that a local Polar does not ----------

// GET /v1/checkouts/{id} reads a replica: just after confirm it still says
// open. Polling waits that out: no check_failed, every checkout completes.
TEST(SandboxE2E, PollingThroughAReplicaThatLagsLosesNothing) {
  Sim sim = StartSim({"--replica-lag", "400ms"});
  Loadd loadd(fmt::format(R"([target]
base_url = "{}"
[metrics]
listen = "127.0.0.1:0"
[scenarios.checkout]
type = "checkout"
product_id = "{}"
funnel = {{ update = 1.0, status = 1.0, confirm = 1.0 }}
think_time = "500ms"
completion = "poll"
poll_interval = "50ms"
[scenarios.checkout.schedule]
type = "steps"
steps = [{{ rate = "4/s", for = "3s" }}, {{ rate = "0/s", for = "24h" }}]
)",
                          sim.base_url(), sim.free_product()),
              sim.token());
  loadd.WaitListening();
  Metrics m = WaitFor(
      loadd,
      [](const Metrics& m) {
        return SumSeries(m, "polar_loadd_target_rate") == 0 &&
               SumSeries(m, "polar_loadd_in_flight") == 0 &&
               SumSeries(m, "polar_loadd_arrivals_total") > 0;
      },
      30s);
  const double confirms = Requests(m, "checkout", "confirm", "ok");
  EXPECT_GE(confirms, 10);
  EXPECT_EQ(NotOk(m), 0);
  EXPECT_EQ(SumSeries(m, "polar_loadd_completion_seconds_count",
                      {"kind=\"checkout_succeeded\""}),
            confirms);
  // The replica was seen behind: more polls than checkouts.
  EXPECT_GT(Requests(m, "checkout", "get", "ok"), confirms);
  Stop(loadd);
}

// A paid product: one clear error, no confirm sent (each would be a 422 or
// a PaymentError against Polar).
TEST(SandboxE2E, APaidProductIsOneClearErrorNotAStreamOfConfirmFailures) {
  Sim sim = StartSim();
  Loadd loadd(
      fmt::format(R"([target]
base_url = "{}"
[metrics]
listen = "127.0.0.1:0"
[scenarios.checkout]
type = "checkout"
product_id = "{}"
funnel = {{ update = 1.0, status = 1.0, confirm = 1.0 }}
think_time = "50ms"
[scenarios.checkout.schedule]
type = "steps"
steps = [{{ rate = "5/s", for = "2s" }}, {{ rate = "0/s", for = "24h" }}]
)",
                  sim.base_url(),
                  sim.ready["products"]["paid"]["id"].get<std::string>()),
      sim.token());
  loadd.WaitListening();
  Metrics m = WaitFor(
      loadd,
      [](const Metrics& m) {
        return SumSeries(m, "polar_loadd_target_rate") == 0 &&
               SumSeries(m, "polar_loadd_in_flight") == 0 &&
               SumSeries(m, "polar_loadd_arrivals_total") > 0;
      },
      30s);
  Stop(loadd);
  const std::string err = loadd.process().Stderr();
  EXPECT_NE(err.find("needs a payment"), std::string::npos) << err;
  std::size_t said = 0;
  for (auto at = err.find("needs a payment"); at != std::string::npos;
       at = err.find("needs a payment", at + 1))
    ++said;
  EXPECT_EQ(said, 1u);
  EXPECT_EQ(Requests(m, "checkout", "confirm", "http_4xx") +
                Requests(m, "checkout", "confirm", "ok"),
            0);
  EXPECT_GE(Requests(m, "checkout", "create", "check_failed"), 8);
  EXPECT_EQ(SimCounter(sim, "polar_sim_http_requests_total",
                       {"route=\"checkouts:client_confirm\""}),
            0);
}

// The checkout stream ends after its lifetime with {"type": "reconnect"}; the
// flow opens a new one and completes.
TEST(SandboxE2E, AReconnectFrameContinuesTheStreamAndTheFlowCompletes) {
  // Streams live 1 s; the success job takes 2 s after confirm.
  Sim sim = StartSim(
      {"--stream-lifetime", "1s", "--slow-worker", "high_priority=1+2s"});
  Loadd loadd(fmt::format(R"([target]
base_url = "{}"
[metrics]
listen = "127.0.0.1:0"
[scenarios.checkout]
type = "checkout"
product_id = "{}"
funnel = {{ update = 1.0, status = 1.0, confirm = 1.0 }}
think_time = "100ms"
completion = "stream"
completion_deadline = "10s"
[scenarios.checkout.schedule]
type = "steps"
steps = [{{ rate = "2/s", for = "2s" }}, {{ rate = "0/s", for = "24h" }}]
)",
                          sim.base_url(), sim.free_product()),
              sim.token());
  loadd.WaitListening();
  Metrics m = WaitFor(
      loadd,
      [](const Metrics& m) {
        return SumSeries(m, "polar_loadd_target_rate") == 0 &&
               SumSeries(m, "polar_loadd_in_flight") == 0 &&
               SumSeries(m, "polar_loadd_arrivals_total") > 0;
      },
      40s);
  Stop(loadd);
  const double confirms = Requests(m, "checkout", "confirm", "ok");
  EXPECT_GE(confirms, 3);
  EXPECT_EQ(NotOk(m), 0) << loadd.process().Stderr();
  EXPECT_EQ(SumSeries(m, "polar_loadd_completion_seconds_count",
                      {"kind=\"checkout_succeeded\""}),
            confirms);
  // At least one new stream per confirming flow.
  EXPECT_GE(Requests(m, "checkout", "stream", "ok"), 2 * confirms);
}

}  // namespace
}  // namespace polar::sandbox_e2e
