// EventVisibilityScenario on a fake clock: the tagged ingest, the listing
// query, the lag histogram, the deadline, and failures.
#include "scenarios/event_visibility.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/fake_transport.h"
#include "tests/support/process.h"

namespace polar {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class EventVisibilityTest : public ::testing::Test {
 protected:
  EventVisibilityTest()
      : metrics_(registry_), timers_(clock_), transport_(clock_, timers_) {
    // A target where events become listable `lag` after their ingest.
    transport_.handler = [this](const Request& r, Response& out) {
      out.status = 200;
      if (r.path == "/v1/events/ingest") {
        json e = json::parse(r.body)["events"][0];
        ingested_[e["metadata"]["probe_id"]] = clock_.Now();
        out.body = ingest_answer;
        return;
      }
      queries.push_back(r.path);
      const auto pos = r.path.find("metadata%5Bprobe_id%5D=");
      std::string id = r.path.substr(pos + 23);
      id = id.substr(0, id.find('&'));
      auto it = ingested_.find(id);
      bool visible = it != ingested_.end() && clock_.Now() >= it->second + lag;
      out.body =
          visible
              ? json{{"items",
                      {{{"id", "e"},
                        {"metadata",
                         {{"probe_id", listed_id.empty() ? id : listed_id}}}}}},
                     {"pagination", {{"total_count", 1}, {"max_page", 1}}}}
                    .dump()
              : R"({"items":[],"pagination":{"total_count":0,"max_page":0}})";
    };
  }

  std::unique_ptr<EventVisibilityScenario> Make(EventVisibilityOptions o = {}) {
    ScenarioContext context{"visibility", transport_, clock_, metrics_, 3};
    context.timers = &timers_;
    return std::make_unique<EventVisibilityScenario>(std::move(context), o);
  }
  double Sum(const std::string& name, std::vector<std::string> labels = {}) {
    return testing::SumSeries(
        testing::ParseMetrics(SerializeMetrics(registry_)), name, labels);
  }

  prometheus::Registry registry_;
  Metrics metrics_;
  FakeClock clock_;
  FakeTimers timers_;
  testing::FakeTransport transport_;
  std::map<std::string, MonoTime> ingested_;
  Duration lag = 2500ms;
  std::string ingest_answer = R"({"inserted":1,"duplicates":0})";
  std::string listed_id;  // non-empty: the listing shows another probe
  std::vector<std::string> queries;
};

TEST_F(EventVisibilityTest, AProbeIsTimedFromItsIngestToItsListing) {
  auto scenario = Make();
  scenario->Start(Arrival{clock_.Now(), 0});
  EXPECT_EQ(scenario->in_flight(), 1u);
  timers_.AdvanceBy(30s);
  EXPECT_EQ(scenario->in_flight(), 0u);
  EXPECT_EQ(timers_.pending(), 0u);

  const Request& ingest = transport_.requests.at(0);
  EXPECT_EQ(ingest.method, Method::kPost);
  EXPECT_TRUE(ingest.authenticated);
  json e = json::parse(ingest.body)["events"][0];
  EXPECT_EQ(e["name"], "polar_loadd.probe");
  EXPECT_EQ(e["external_customer_id"], "polar-loadd-probe");
  EXPECT_FALSE(e.contains("timestamp"));
  const std::string probe_id = e["metadata"]["probe_id"];
  EXPECT_EQ(e["external_id"], "polar-loadd-probe-" + probe_id);

  // Polled every second after each answer (5 ms): answered at 1.010, 2.015
  // (not yet: visible from 2.505) and 3.020 s after the ingest answer.
  ASSERT_EQ(queries.size(), 3u);
  EXPECT_EQ(queries[0],
            "/v1/events/?external_customer_id=polar-loadd-probe"
            "&metadata%5Bprobe_id%5D=" +
                probe_id +
                "&start_timestamp=2023-11-14T22%3A08%3A20.000Z&limit=1")
      << "start_timestamp is the ingest time minus the 5 min search margin";
  EXPECT_EQ(
      Sum("polar_loadd_requests_total", {"step=\"probe\"", "outcome=\"ok\""}),
      3);
  EXPECT_EQ(
      Sum("polar_loadd_requests_total", {"step=\"ingest\"", "outcome=\"ok\""}),
      1);
  EXPECT_EQ(
      Sum("polar_loadd_completion_seconds_count", {"kind=\"event_visible\""}),
      1);
  EXPECT_NEAR(
      Sum("polar_loadd_completion_seconds_sum", {"kind=\"event_visible\""}),
      3.015, 1e-9);
  EXPECT_EQ(Sum("polar_loadd_probes_lost_total", {"kind=\"event_visible\""}),
            0);
}

TEST_F(EventVisibilityTest, AProbeNotListedByTheDeadlineIsLost) {
  lag = 1h;
  EventVisibilityOptions o;
  o.deadline = 10s;
  o.poll_interval = 2s;
  auto scenario = Make(o);
  scenario->Start(Arrival{clock_.Now(), 0});
  timers_.AdvanceBy(60s);
  EXPECT_EQ(scenario->in_flight(), 0u);
  EXPECT_EQ(Sum("polar_loadd_probes_lost_total", {"kind=\"event_visible\""}),
            1);
  EXPECT_EQ(Sum("polar_loadd_completion_seconds_count"), 0);
  EXPECT_EQ(queries.size(), 4u) << "polls at ~2, 4, 6, 8 s; 10.025 is past";
}

TEST_F(EventVisibilityTest, BackdatedProbesCarryTheirTimestamp) {
  EventVisibilityOptions o;
  o.timestamp_backdate = 2s;
  o.probe_customer_id = "probe & co";
  auto scenario = Make(o);
  scenario->Start(Arrival{clock_.Now(), 0});
  timers_.AdvanceBy(30s);
  json e = json::parse(transport_.requests.at(0).body)["events"][0];
  EXPECT_EQ(e["timestamp"], "2023-11-14T22:13:18.000Z");
  ASSERT_FALSE(queries.empty());
  EXPECT_NE(queries[0].find("external_customer_id=probe%20%26%20co&"),
            std::string::npos)
      << queries[0];
}

TEST_F(EventVisibilityTest, FailuresEndTheProbeWithTheirOutcomeNotAsLost) {
  struct Case {
    std::string ingest;
    long status;
    const char* step;
    const char* outcome;
  };
  const Case cases[] = {
      {R"({"error":"X"})", 422, "ingest", "http_4xx"},
      {R"({"error":"X"})", 401, "ingest", "http_4xx"},
      {"", 429, "ingest", "rate_limited"},
      {R"({"inserted":0,"duplicates":1})", 200, "ingest", "check_failed"},
      {"not json", 200, "ingest", "invalid_response"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.outcome);
    prometheus::Registry registry;
    Metrics metrics(registry);
    FakeClock clock;
    FakeTimers timers(clock);
    testing::FakeTransport transport(clock, timers);
    transport.handler = [&](const Request&, Response& out) {
      out.status = c.status;
      out.body = c.ingest;
    };
    ScenarioContext context{"visibility", transport, clock, metrics, 3};
    context.timers = &timers;
    EventVisibilityScenario scenario(std::move(context), {});
    scenario.Start(Arrival{clock.Now(), 0});
    timers.AdvanceBy(120s);
    EXPECT_EQ(scenario.in_flight(), 0u);
    EXPECT_EQ(transport.requests.size(), 1u) << "no polling after a failure";
    auto m = testing::ParseMetrics(SerializeMetrics(registry));
    EXPECT_EQ(
        testing::SumSeries(m, "polar_loadd_requests_total",
                           {std::string("step=\"") + c.step + "\"",
                            std::string("outcome=\"") + c.outcome + "\""}),
        1);
    EXPECT_EQ(testing::SumSeries(m, "polar_loadd_probes_lost_total"), 0);
  }
}

TEST_F(EventVisibilityTest, AListingOfAnotherEventIsCheckFailed) {
  lag = 0s;
  listed_id = "someone-else";
  auto scenario = Make();
  scenario->Start(Arrival{clock_.Now(), 0});
  timers_.AdvanceBy(30s);
  EXPECT_EQ(Sum("polar_loadd_requests_total",
                {"step=\"probe\"", "outcome=\"check_failed\""}),
            1);
  EXPECT_EQ(Sum("polar_loadd_completion_seconds_count"), 0);
}

TEST_F(EventVisibilityTest, ProbeIdsAreUniquePerProbe) {
  auto scenario = Make();
  scenario->Start(Arrival{clock_.Now(), 0});
  scenario->Start(Arrival{clock_.Now(), 1});
  timers_.AdvanceBy(30s);
  EXPECT_EQ(ingested_.size(), 2u);
  EXPECT_EQ(Sum("polar_loadd_completion_seconds_count"), 2);
}

}  // namespace
}  // namespace polar
