// End to end for the scenarios: polar-loadd's checkout funnel, visibility
// probe and ingestion against polar-sim processes on free loopback ports.
// Every step against the real routes, the funnel's ratios, completion over
// the SSE stream and by polling, the completion and visibility histograms when
// polar-sim's worker is slowed, lost probes, and each error path (401, 403,
// 409, 410, 422, 429, timeouts) counted as its outcome.
//
// Load is bounded: each scenario runs a `steps` schedule that drops to 0/s
// after a few seconds, so every flow it started finishes and the counts can
// be compared exactly. Rates scale by POLAR_TEST_RATE_SCALE (the asan preset
// sets 0.25).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "tests/support/daemons.h"

namespace polar::scenarios_e2e {
namespace {

using namespace std::chrono_literals;
using testing::Loadd;
using testing::RateScale;
using testing::Sim;
using testing::StartSim;
using testing::SumSeries;
using Metrics = std::map<std::string, double>;

// polar-loadd on `config`, listening; `env` adds to its environment.
Loadd StartLoadd(const std::string& config, const std::string& token,
                 std::map<std::string, std::string> env = {}) {
  Loadd loadd(config, token, std::move(env));
  loadd.WaitListening();
  return loadd;
}

// A scenario table running `rate` for `seconds`, then nothing.
std::string Burst(const std::string& name, const std::string& type, double rate,
                  int seconds, const std::string& more) {
  return fmt::format(R"(
[scenarios.{0}]
type = "{1}"
{4}
[scenarios.{0}.schedule]
type = "steps"
steps = [{{ rate = "{2:.3f}/s", for = "{3}s" }}, {{ rate = "0/s", for = "24h" }}]
)",
                     name, type, rate, seconds, more);
}

std::string Target(const Sim& sim, const std::string& more = "") {
  return fmt::format(R"(
[target]
base_url = "{}"
{}
[metrics]
listen = "127.0.0.1:0"
)",
                     sim.base_url(), more);
}

// Scrapes until `done` holds (or `limit` passes); returns the last scrape.
Metrics WaitFor(const Loadd& loadd,
                const std::function<bool(const Metrics&)>& done,
                std::chrono::milliseconds limit = 20s) {
  auto end = std::chrono::steady_clock::now() + limit;
  Metrics m;
  while (std::chrono::steady_clock::now() < end) {
    m = loadd.Scrape();
    if (!m.empty() && done(m)) return m;
    std::this_thread::sleep_for(100ms);
  }
  return m;
}

// Every arrival produced and every flow finished (the schedule is at 0/s).
Metrics WaitUntilIdle(const Loadd& loadd, const std::string& scenario,
                      std::chrono::milliseconds limit = 30s) {
  const std::string s = "scenario=\"" + scenario + "\"";
  return WaitFor(
      loadd,
      [&](const Metrics& m) {
        return SumSeries(m, "polar_loadd_target_rate", {s}) == 0 &&
               SumSeries(m, "polar_loadd_arrivals_total", {s}) > 0 &&
               SumSeries(m, "polar_loadd_in_flight", {s}) == 0;
      },
      limit);
}

double Requests(const Metrics& m, const std::string& scenario,
                const std::string& step, const std::string& outcome = "") {
  std::vector<std::string> labels = {"scenario=\"" + scenario + "\"",
                                     "step=\"" + step + "\""};
  if (!outcome.empty()) labels.push_back("outcome=\"" + outcome + "\"");
  return SumSeries(m, "polar_loadd_requests_total", labels);
}

double Completion(const Metrics& m, const std::string& scenario,
                  const std::string& kind, const std::string& suffix) {
  return SumSeries(m, "polar_loadd_completion_seconds_" + suffix,
                   {"scenario=\"" + scenario + "\"", "kind=\"" + kind + "\""});
}

void Stop(Loadd& loadd) {
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(20s), 0) << loadd.process().Stderr();
}

TEST(CheckoutE2E,
     EveryStepSucceedsAgainstPolarSimAndEachCheckoutIsSeenSucceeding) {
  Sim sim = StartSim();
  const double rate = 6 * RateScale();
  Loadd loadd = StartLoadd(Target(sim) + Burst("checkout", "checkout", rate, 2,
                                               fmt::format(R"(product_id = "{}"
think_time = "100ms"
funnel = {{ update = 1.0, status = 1.0, confirm = 1.0 }})",
                                                           sim.free_product())),
                           sim.token());
  Metrics m = WaitUntilIdle(loadd, "checkout");
  const double flows = SumSeries(m, "polar_loadd_arrivals_total");
  ASSERT_GE(flows, 2 * rate);
  for (const char* step : {"create", "update", "status", "confirm", "stream"}) {
    EXPECT_EQ(Requests(m, "checkout", step, "ok"), flows) << step;
    EXPECT_EQ(Requests(m, "checkout", step), flows) << step << ": no failures";
  }
  EXPECT_EQ(Completion(m, "checkout", "checkout_succeeded", "count"), flows);
  EXPECT_EQ(SumSeries(m, "polar_loadd_probes_lost_total"), 0);
  EXPECT_EQ(SumSeries(m, "polar_loadd_flow_duration_seconds_count",
                      {"outcome=\"ok\""}),
            flows);
  // Every flow lasts at least its three think times.
  EXPECT_GE(SumSeries(m, "polar_loadd_flow_duration_seconds_sum"), flows * 0.3);
  // The target agrees: it made as many checkouts succeed.
  Metrics target =
      testing::ParseMetrics(testing::HttpGet(sim.metrics_url()).body);
  EXPECT_EQ(SumSeries(target, "polar_checkout_succeeded_total"), flows);
  EXPECT_EQ(SumSeries(target, "polar_checkout_created_total"), flows);
  Stop(loadd);
}

TEST(CheckoutE2E, PollingUsesGetCheckoutAndTheLocustVariablesChooseTheProduct) {
  Sim sim = StartSim();
  const double rate = 4 * RateScale();
  Loadd loadd =
      StartLoadd(Target(sim) + Burst("checkout", "checkout", rate, 2, R"(
product_id = "00000000-0000-4000-8000-000000000000"
create_form = "product_id"
think_time = "0s"
completion = "poll"
poll_interval = "100ms"
funnel = { update = 1.0, status = 1.0, confirm = 1.0 })"),
                 sim.token(),
                 {{"LOAD_TEST_PRODUCT_ID", sim.free_product()},
                  {"LOAD_TEST_CUSTOMER_EMAIL", "ops+e2e@polar.sh"}});
  Metrics m = WaitUntilIdle(loadd, "checkout");
  const double flows = SumSeries(m, "polar_loadd_arrivals_total");
  ASSERT_GT(flows, 0);
  EXPECT_EQ(Requests(m, "checkout", "create", "ok"), flows)
      << "the env's product in the deprecated product_id form";
  EXPECT_GE(Requests(m, "checkout", "get", "ok"), flows);
  EXPECT_EQ(Requests(m, "checkout", "stream"), 0);
  EXPECT_EQ(Completion(m, "checkout", "checkout_succeeded", "count"), flows);
  EXPECT_NE(loadd.process().Stderr().find(
                "LOAD_TEST_CUSTOMER_EMAIL overrides scenarios.checkout"),
            std::string::npos);
  Stop(loadd);
}

// 200 flows with the default funnel 10/5/3/1: of 10 flows, 5 update, 3 ask
// for the status and 1 confirms. Each flow stops at one depth: after create
// (p = 0.5), after update (0.2), after status (0.2), or it confirms (0.1).
// The test counts the flows at each depth (creates - updates, updates -
// status, status - confirms, confirms) and wants each within 4.5 standard
// deviations of n p, sigma = sqrt(n p (1 - p)). With n = 200: 100 +- 31.8,
// 40 +- 25.5, 40 +- 25.5 and 20 +- 19.1. A funnel of 10/3/3/1 stops no flow
// after its update (as many status checks as updates): depth 1 is 0, below
// 40 - 25.5 = 14.5, so it fails whatever the draws. Counting updates alone
// would not do: 10/3/3/1 gives 60 +- 6.5 updates, inside 100 +- 31.8 (from
// 69) for about one seed in ten. Under ASan n stays 200 (50 flows/s is light
// for the sanitizer build): with 50 flows depth 1 would be 10 +- 12.7, and
// 10/3/3/1 would pass. The draws come from the fixed seed, so the result is
// also reproducible.
TEST(CheckoutE2E, TheDefaultFunnelFollowsTheSeedsWeightsAgainstPolarSim) {
  Sim sim = StartSim();
  const double rate = 50;
  Loadd loadd = StartLoadd(Target(sim) + Burst("checkout", "checkout", rate, 4,
                                               fmt::format(R"(product_id = "{}"
think_time = "0s")",
                                                           sim.free_product())),
                           sim.token());
  Metrics m = WaitUntilIdle(loadd, "checkout");
  const double n = Requests(m, "checkout", "create", "ok");
  ASSERT_GE(n, 4 * rate);
  EXPECT_EQ(Requests(m, "checkout", "create"), n) << "no failures";
  const double update = Requests(m, "checkout", "update", "ok");
  const double status = Requests(m, "checkout", "status", "ok");
  const double confirm = Requests(m, "checkout", "confirm", "ok");
  for (const auto& [depth, count, p] :
       {std::tuple<const char*, double, double>{"create only", n - update, 0.5},
        {"update, no status", update - status, 0.2},
        {"status, no confirm", status - confirm, 0.2},
        {"confirm", confirm, 0.1}}) {
    const double sigma = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(count, n * p, 4.5 * sigma)
        << depth << ": " << count << " of " << n << " flows";
  }
  EXPECT_EQ(Requests(m, "checkout", "update"), update) << "no failures";
  EXPECT_EQ(Requests(m, "checkout", "status"), status) << "no failures";
  EXPECT_EQ(Requests(m, "checkout", "confirm"), confirm) << "no failures";
  EXPECT_EQ(Completion(m, "checkout", "checkout_succeeded", "count"), confirm);
  std::printf(
      "funnel of %.0f flows: %.0f updates, %.0f status, %.0f confirms\n", n,
      update, status, confirm);
  Stop(loadd);
}

// One polar-sim and one polar-loadd per failure, all at once (a few seconds
// in total): each failing step must be counted as its outcome and end its
// flow there.
TEST(CheckoutE2E, EachErrorPathIsCountedAsItsOutcome) {
  struct Case {
    const char* name;
    std::vector<std::string> sim_args;
    std::string token_kind;  // "token", "read_token" or "wrong"
    std::string product;     // "" = the free product
    std::string more;        // extra scenario keys
    std::string target_more;
    const char* step;
    const char* outcome;
    const char* status;  // for the log check
  };
  const std::string all =
      "funnel = { update = 1.0, status = 1.0, confirm = 1.0 }";
  std::vector<Case> cases = {
      {"unauthorized", {}, "wrong", "", all, "", "create", "http_4xx", "401"},
      {"forbidden", {}, "read_token", "", all, "", "create", "http_4xx", "403"},
      {"locked",
       {"--error-ratio", "checkouts:client_confirm=1:409"},
       "token",
       "",
       all,
       "",
       "confirm",
       "http_4xx",
       "409"},
      {"expired",
       {"--checkout-ttl", "200ms"},
       "token",
       "",
       all + "\nthink_time = \"400ms\"",
       "",
       "update",
       "http_4xx",
       "410"},
      {"unknown_product",
       {},
       "token",
       "00000000-0000-4000-8000-000000000000",
       all,
       "",
       "create",
       "http_4xx",
       "422"},
      {"rate_limited",
       {"--rate-limit", "sandbox"},
       "token",
       "",
       all + "\nthink_time = \"0s\"",
       "",
       "confirm",
       "rate_limited",
       "429"},
      {"timeout",
       {"--latency", "checkouts:client_update=3s"},
       "token",
       "",
       all + "\nthink_time = \"0s\"",
       "timeout = \"300ms\"",
       "update",
       "timeout",
       ""},
  };
  std::vector<Sim> sims;
  std::vector<Loadd> loadds;
  for (const Case& c : cases) {
    sims.push_back(StartSim(c.sim_args));
    const Sim& sim = sims.back();
    std::string token = c.token_kind == "token"        ? sim.token()
                        : c.token_kind == "read_token" ? sim.read_token()
                                                       : "polar_oat_wrong";
    // The rate-limit case needs more than 6 confirms within a minute, and
    // arrivals after the 7th (at 1.2 s) to show the Retry-After pause: 5/s
    // for 4 s leaves 2.8 s of arrivals to drop.
    const bool limited = std::string(c.name) == "rate_limited";
    loadds.push_back(StartLoadd(
        Target(sim, c.target_more) +
            Burst(
                "checkout", "checkout", limited ? 5 : 2, limited ? 4 : 2,
                fmt::format("product_id = \"{}\"\n{}",
                            c.product.empty() ? sim.free_product() : c.product,
                            c.more)),
        token));
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(c.name);
    Loadd& loadd = loadds[i];
    Metrics m = WaitFor(loadd, [&](const Metrics& x) {
      return Requests(x, "checkout", c.step, c.outcome) > 0 &&
             SumSeries(x, "polar_loadd_flow_duration_seconds_count",
                       {std::string("outcome=\"") + c.outcome + "\""}) > 0;
    });
    EXPECT_GT(Requests(m, "checkout", c.step, c.outcome), 0)
        << loadd.process().Stderr();
    EXPECT_GT(SumSeries(m, "polar_loadd_flow_duration_seconds_count",
                        {std::string("outcome=\"") + c.outcome + "\""}),
              0);
    if (std::string(c.outcome) != "rate_limited") {
      EXPECT_EQ(Requests(m, "checkout", c.step, "ok"), 0)
          << "every " << c.step << " fails";
      EXPECT_EQ(Completion(m, "checkout", "checkout_succeeded", "count"), 0);
    }
    if (*c.status) {
      // The log names the status (and never the token).
      EXPECT_NE(loadd.process().Stderr().find(std::string("HTTP ") + c.status),
                std::string::npos)
          << loadd.process().Stderr();
    }
  }
  // Sandbox's confirm limit (6/min) answered 429 with Retry-After: the
  // scenario paused and counted what it did not send.
  std::size_t r = 0;
  while (std::string(cases[r].name) != "rate_limited") ++r;
  Metrics limited = WaitUntilIdle(loadds[r], "checkout");
  EXPECT_GT(SumSeries(limited, "polar_loadd_arrivals_dropped_total",
                      {"reason=\"retry_after\""}),
            0);
  for (auto& l : loadds) Stop(l);
}

// polar-sim's success job delayed by 700 ms: confirm -> succeeded must take
// at least that long, and with a 1 s deadline and a 2 s delay every
// checkout is lost and its flow ends as timeout.
TEST(CheckoutE2E,
     ASlowWorkerShowsInTheCompletionHistogramAndLosesPastTheDeadline) {
  Sim slow = StartSim({"--slow-worker", "high_priority=1+700ms"});
  Sim stuck = StartSim({"--slow-worker", "high_priority=1+2s"});
  const std::string flow =
      "think_time = \"0s\"\n"
      "funnel = { update = 1.0, status = 1.0, confirm = 1.0 }\n";
  Loadd a =
      StartLoadd(Target(slow) + Burst("checkout", "checkout", 1, 3,
                                      fmt::format("product_id = \"{}\"\n{}",
                                                  slow.free_product(), flow)),
                 slow.token());
  Loadd b = StartLoadd(
      Target(stuck) +
          Burst(
              "checkout", "checkout", 1, 2,
              fmt::format("product_id = \"{}\"\n{}completion_deadline = \"1s\"",
                          stuck.free_product(), flow)),
      stuck.token());
  Metrics ma = WaitUntilIdle(a, "checkout");
  const double n = Completion(ma, "checkout", "checkout_succeeded", "count");
  ASSERT_GE(n, 3);
  // polar-sim starts the 700 ms job while it handles the confirm, before it
  // answers; the completion counts from the answer's arrival. So each flow's
  // completion is at least 700 ms less that confirm's service time (send to
  // answer): on a quiet machine about 1 ms, on a busy one several, which a
  // bare 0.7 did not allow for (0.698 seen with two cores fully taken).
  ASSERT_EQ(Requests(ma, "checkout", "confirm", "ok"), n);
  const double confirm_service =
      SumSeries(ma, "polar_loadd_request_service_seconds_sum",
                {"scenario=\"checkout\"", "step=\"confirm\""}) /
      n;
  EXPECT_GE(Completion(ma, "checkout", "checkout_succeeded", "sum") / n,
            0.7 - confirm_service)
      << "mean confirm service time " << confirm_service << " s";
  EXPECT_EQ(SumSeries(ma, "polar_loadd_completion_seconds_bucket",
                      {"kind=\"checkout_succeeded\"", "le=\"0.5\""}),
            0)
      << "none faster than the job";
  EXPECT_EQ(SumSeries(ma, "polar_loadd_probes_lost_total"), 0);

  Metrics mb = WaitUntilIdle(b, "checkout");
  const double confirmed = Requests(mb, "checkout", "confirm", "ok");
  ASSERT_GT(confirmed, 0);
  EXPECT_EQ(SumSeries(mb, "polar_loadd_probes_lost_total",
                      {"kind=\"checkout_succeeded\""}),
            confirmed);
  EXPECT_EQ(SumSeries(mb, "polar_loadd_flow_duration_seconds_count",
                      {"outcome=\"timeout\""}),
            confirmed);
  EXPECT_EQ(Completion(mb, "checkout", "checkout_succeeded", "count"), 0);
  Stop(a);
  Stop(b);
}

// Probes against polar-sim with a 200 ms Tinybird delay, and with its
// low-priority worker (event.ingested) slowed by 800 ms: the lag histogram
// moves by that much; with a 1 s deadline and a 3 s delay every probe is lost.
// One probe a second: polar-sim's event.ingested job takes every event that
// arrived while it ran, so probes closer together than the job would share
// one and see less of its time.
TEST(VisibilityE2E, TheVisibilityLagFollowsPolarSimsPipeline) {
  Sim fast = StartSim({"--event-lag", "200ms"});
  Sim slow = StartSim(
      {"--event-lag", "200ms", "--slow-worker", "low_priority=1+800ms"});
  Sim lost = StartSim({"--event-lag", "3s"});
  const std::string probe = "poll_interval = \"50ms\"\n";
  auto start = [&](const Sim& sim, const std::string& more) {
    return StartLoadd(
        Target(sim) + Burst("visible", "event_visibility", 1, 3, probe + more),
        sim.token());
  };
  Loadd a = start(fast, "");
  Loadd b = start(slow, "");
  Loadd c = start(lost, "deadline = \"1s\"");
  Metrics ma = WaitUntilIdle(a, "visible");
  Metrics mb = WaitUntilIdle(b, "visible");
  Metrics mc = WaitUntilIdle(c, "visible");
  const double na = Completion(ma, "visible", "event_visible", "count");
  const double nb = Completion(mb, "visible", "event_visible", "count");
  ASSERT_GE(na, 3);
  ASSERT_EQ(nb, na) << "the same schedule";
  const double mean_a = Completion(ma, "visible", "event_visible", "sum") / na;
  const double mean_b = Completion(mb, "visible", "event_visible", "sum") / nb;
  EXPECT_GE(mean_a, 0.2);
  EXPECT_LT(mean_a, 1.0);
  EXPECT_GE(mean_b - mean_a, 0.7) << "fast " << mean_a << " slow " << mean_b;
  EXPECT_EQ(Requests(ma, "visible", "ingest", "ok"), na);
  EXPECT_EQ(Requests(ma, "visible", "probe"),
            Requests(ma, "visible", "probe", "ok"));
  EXPECT_EQ(SumSeries(ma, "polar_loadd_probes_lost_total"), 0);

  const double probes = Requests(mc, "visible", "ingest", "ok");
  ASSERT_GT(probes, 0);
  EXPECT_EQ(SumSeries(mc, "polar_loadd_probes_lost_total",
                      {"kind=\"event_visible\""}),
            probes);
  EXPECT_EQ(Completion(mc, "visible", "event_visible", "count"), 0);
  Stop(a);
  Stop(b);
  Stop(c);
}

// Backdated timestamps are accepted (polar-sim refuses future ones like
// Polar), every event of every batch is inserted once, none is a duplicate.
TEST(IngestionE2E, BackdatedBatchesAreInsertedWholeWithoutDuplicates) {
  Sim sim = StartSim();
  Loadd loadd = StartLoadd(
      Target(sim) + Burst("ingest", "event_ingestion", 20 * RateScale(), 2,
                          "batch_size = 7\ntimestamp_backdate = \"2s\""),
      sim.token());
  Metrics m = WaitUntilIdle(loadd, "ingest");
  const double batches = Requests(m, "ingest", "ingest", "ok");
  ASSERT_GT(batches, 0);
  EXPECT_EQ(Requests(m, "ingest", "ingest"), batches);
  EXPECT_EQ(SumSeries(m, "polar_loadd_events_total", {"result=\"inserted\""}),
            batches * 7);
  EXPECT_EQ(SumSeries(m, "polar_loadd_events_total", {"result=\"duplicate\""}),
            0);
  Stop(loadd);
}

// The events as polar-sim stored them follow the seed's mix: customers by
// power-law tier, names and meter slugs. 100 batches of 7 (25 under ASan)
// against polar-sim's seeded customers loadtest-customer-0..19 (the default
// list), counted back with GET /v1/events/ filters. Chi-square at p = 0.001
// (the data comes from the fixed seed, so the verdict is reproducible);
// tiers, not customers, because the 11-20 tier expects under 5 events each.
TEST(IngestionE2E, StoredEventsFollowTheSeedsCustomerNameAndMeterMix) {
  Sim sim = StartSim({"--event-lag", "0ms"});
  const double rate = 50 * RateScale();
  Loadd loadd =
      StartLoadd(Target(sim) + Burst("ingest", "event_ingestion", rate, 2, ""),
                 sim.token());
  Metrics m = WaitUntilIdle(loadd, "ingest");
  const double n =
      SumSeries(m, "polar_loadd_events_total", {"result=\"inserted\""});
  ASSERT_GE(n, 2 * rate * 7);
  auto count = [&](const std::string& query) {
    auto r = testing::HttpRequest(
        "GET", sim.base_url() + "/v1/events/?limit=1&" + query, "",
        {"Authorization: Bearer " + sim.token()});
    EXPECT_EQ(r.status, 200) << r.body;
    return nlohmann::json::parse(r.body)["pagination"]["total_count"]
        .get<double>();
  };
  // Visible once polar-sim's worker has run (no Tinybird delay here).
  auto end = std::chrono::steady_clock::now() + 20s;
  while (count("") < n && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(100ms);
  ASSERT_EQ(count(""), n);

  auto chi2 = [](const std::vector<double>& obs,
                 const std::vector<double>& exp) {
    double x = 0;
    for (std::size_t i = 0; i < obs.size(); ++i)
      x += (obs[i] - exp[i]) * (obs[i] - exp[i]) / exp[i];
    return x;
  };
  // Tiers of 20 customers: 1, 4, 5 and 10 of them with 35, 43, 12 and 6
  // percent, normalised over the 96 they add up to.
  const std::vector<std::pair<int, int>> tiers = {
      {0, 1}, {1, 5}, {5, 10}, {10, 20}};
  const std::vector<double> shares = {35, 43, 12, 6};
  std::vector<double> obs, exp;
  for (std::size_t t = 0; t < tiers.size(); ++t) {
    double c = 0;
    for (int i = tiers[t].first; i < tiers[t].second; ++i)
      c += count("external_customer_id=loadtest-customer-" + std::to_string(i));
    obs.push_back(c);
    exp.push_back(n * shares[t] / 96);
  }
  EXPECT_EQ(obs[0] + obs[1] + obs[2] + obs[3], n) << "only those customers";
  EXPECT_LT(chi2(obs, exp), 16.27)
      << "3 degrees of freedom; tiers " << obs[0] << " " << obs[1] << " "
      << obs[2] << " " << obs[3] << " of " << n;
  const double text = count("name=generate.text");
  EXPECT_EQ(text + count("name=generate.image"), n);
  EXPECT_LT(chi2({text, n - text}, {0.7 * n, 0.3 * n}), 10.83)
      << text << " generate.text of " << n;
  const double pack =
      count("metadata%5BselectedMeterSlug%5D=v1%3Ameter%3Apack");
  EXPECT_EQ(pack + count("metadata%5BselectedMeterSlug%5D=v1%3Ameter%3Atier"),
            n);
  EXPECT_LT(chi2({pack, n - pack}, {0.6 * n, 0.4 * n}), 10.83)
      << pack << " v1:meter:pack of " << n;
  Stop(loadd);
}

}  // namespace
}  // namespace polar::scenarios_e2e
