// Operator control at the unit level: ScenarioRunner's pause, resume, rate
// overrides and bursts on FakeTimers (exact counts and times); the ControlApi's
// routing, auth and validation without a process; the [control] config table;
// the token comparison.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/schedule/scheduler.h"
#include "daemon/status/control_api.h"
#include "tests/support/process.h"
#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using testing::FakeEnv;

using namespace std::chrono_literals;
using nlohmann::json;

// A scenario whose flows finish on the next dispatch, or never while `hold`.
class LoopScenario final : public Scenario {
 public:
  LoopScenario(Timers& timers, const Clock& clock)
      : timers_(timers), clock_(clock) {}
  const std::string& name() const override { return name_; }
  void Start(const Arrival& arrival) override {
    starts.push_back(arrival.intended);
    started_at.push_back(clock_.Now());
    ++in_flight_;
    if (!hold) timers_.At(clock_.Now(), [this] { --in_flight_; });
  }
  std::size_t in_flight() const override { return in_flight_; }
  bool hold = false;
  std::vector<MonoTime> starts;
  std::vector<MonoTime> started_at;

 private:
  Timers& timers_;
  const Clock& clock_;
  std::string name_ = "ingest";
  std::size_t in_flight_ = 0;
};

struct ControlRig {
  prometheus::Registry registry;
  Metrics metrics{registry};
  FakeClock clock;
  FakeTimers timers{clock};
  LoopScenario scenario{timers, clock};
  ScenarioSeries& series = metrics.Scenario("ingest");

  // Runs every timer due up to now + d, inclusive.
  void RunFor(Duration d) { timers.AdvanceBy(d); }
  std::size_t StartsBetween(MonoTime from, MonoTime to) const {
    return static_cast<std::size_t>(
        std::count_if(scenario.started_at.begin(), scenario.started_at.end(),
                      [&](MonoTime t) { return t >= from && t < to; }));
  }
};

using testing::ConstantPlan;

TEST(RunnerControl, APausedScenarioProducesNoArrivalsAndResumesWithoutABurst) {
  ControlRig rig;
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(100), RunnerLimits{});
  runner.Start(rig.clock.Now());
  rig.RunFor(200ms);
  ASSERT_EQ(rig.scenario.starts.size(), 21u);  // 0, 10, ..., 200 ms
  EXPECT_TRUE(runner.Pause());
  EXPECT_FALSE(runner.Pause());  // already paused: nothing changes
  EXPECT_EQ(rig.series.target_rate->Value(), 0);
  EXPECT_EQ(rig.series.paused->Value(), 1);
  const double arrivals = rig.series.arrivals->Value();
  const std::size_t starts = rig.scenario.starts.size();
  rig.RunFor(300ms);
  // Paused: no arrival produced, none dropped, none started.
  EXPECT_EQ(rig.series.arrivals->Value(), arrivals);
  EXPECT_EQ(rig.scenario.starts.size(), starts);
  for (double d :
       {rig.series.dropped[0]->Value(), rig.series.dropped[1]->Value(),
        rig.series.dropped[2]->Value()})
    EXPECT_EQ(d, 0);

  const MonoTime resumed = rig.clock.Now();
  EXPECT_TRUE(runner.Resume());
  EXPECT_EQ(rig.series.paused->Value(), 0);
  EXPECT_EQ(rig.series.target_rate->Value(), 100);
  rig.RunFor(300ms);
  runner.Stop();
  // No burst: the 300 ms of pause are not made up (a burst would start 30
  // more at once). No stall: the gap left when it paused (a whole one, 10 ms)
  // runs from the resume, so 10, 20, ..., 300 ms after it: 30.
  EXPECT_EQ(rig.scenario.starts.size() - starts, 30u);
  EXPECT_EQ(rig.scenario.started_at[starts] - resumed, 10ms);
  EXPECT_EQ(rig.StartsBetween(resumed, resumed + 10ms), 0u);
}

TEST(RunnerControl, ARateOverrideForAWhileEndsBackOnTheSchedule) {
  ControlRig rig;
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(20), RunnerLimits{});
  runner.Start(rig.clock.Now());
  rig.RunFor(100ms);
  ASSERT_EQ(rig.scenario.starts.size(), 3u);  // 0, 50, 100 ms
  const MonoTime from = rig.clock.Now();
  runner.OverrideRate(200, from + 400ms);
  EXPECT_EQ(rig.series.target_rate->Value(), 200);
  EXPECT_EQ(rig.series.rate_overridden->Value(), 1);
  ASSERT_TRUE(runner.rate_override());
  EXPECT_EQ(runner.ScheduledRate(from), 20);  // the schedule is still known
  rig.RunFor(400ms);
  EXPECT_FALSE(runner.rate_override());
  EXPECT_EQ(rig.series.rate_overridden->Value(), 0);
  EXPECT_EQ(rig.series.target_rate->Value(), 20);
  // 200/s from the switch: the gap left then (a whole one) is 5 ms at the new
  // rate, so 105, 110, ..., 495 ms: 79. The arrival due at 500 ms, when the
  // override ends, is the schedule's first.
  const auto& starts = rig.scenario.starts;
  ASSERT_EQ(starts.size(), 3u + 79u + 1u);
  EXPECT_EQ(starts[3], from + 5ms);
  EXPECT_EQ(starts[81], from + 395ms);
  EXPECT_EQ(starts[82], from + 400ms);
  rig.RunFor(500ms);
  runner.Stop();
  // Then 20/s on the schedule: 550, 600, ..., 1000 ms.
  ASSERT_EQ(starts.size(), 83u + 10u);
  EXPECT_EQ(starts[83], from + 450ms);
  EXPECT_EQ(starts.back(), from + 900ms);
}

TEST(RunnerControl, AnOverrideWithoutADurationLastsUntilCleared) {
  ControlRig rig;
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(10), RunnerLimits{});
  const MonoTime start = rig.clock.Now();
  runner.Start(start);
  runner.OverrideRate(0, MonoTime::max());  // before the first arrival went
  rig.RunFor(320ms);
  EXPECT_TRUE(rig.scenario.starts.empty());  // 0/s: nothing
  EXPECT_TRUE(runner.ClearOverride());
  EXPECT_FALSE(runner.ClearOverride());
  rig.RunFor(350ms);
  runner.Stop();
  // Back to 10/s without waiting out anything (0/s left no gap to finish):
  // at once, then every 100 ms: 320, 420, 520, 620 ms.
  ASSERT_EQ(rig.scenario.starts.size(), 4u);
  EXPECT_EQ(rig.scenario.starts[0], start + 320ms);
  EXPECT_EQ(rig.scenario.starts[3], start + 620ms);
}

TEST(RunnerControl, AnOverrideSetWhilePausedTakesEffectOnResume) {
  ControlRig rig;
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(10), RunnerLimits{});
  runner.Start(rig.clock.Now());
  runner.Pause();
  runner.OverrideRate(100, MonoTime::max());
  EXPECT_EQ(rig.series.target_rate->Value(), 0);  // still paused
  rig.RunFor(100ms);
  EXPECT_TRUE(rig.scenario.starts.empty());  // paused before the first
  runner.Resume();
  EXPECT_EQ(rig.series.target_rate->Value(), 100);
  rig.RunFor(300ms);
  runner.Stop();
  // The override's 100/s from the resume, the first at once (nothing was
  // left of a gap): 100, 110, ..., 400 ms.
  EXPECT_EQ(rig.scenario.starts.size(), 31u);
}

TEST(RunnerControl, ABurstRespectsTheInFlightCapAndCountsTheRestAsDropped) {
  ControlRig rig;
  rig.scenario.hold = true;  // nothing finishes
  RunnerLimits limits;
  limits.max_in_flight = 50;
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(0), limits);
  runner.Start(rig.clock.Now());
  ASSERT_TRUE(runner.Burst(1200));
  EXPECT_EQ(runner.burst_pending(), 1200u);
  rig.RunFor(100ms);
  runner.Stop();
  EXPECT_EQ(runner.burst_pending(), 0u);
  EXPECT_EQ(rig.scenario.starts.size(), 50u);
  EXPECT_EQ(rig.series.arrivals->Value(), 1200);
  EXPECT_EQ(
      rig.series.dropped[static_cast<std::size_t>(DropReason::kInFlightCap)]
          ->Value(),
      1150);
}

TEST(RunnerControl, ABurstIsBoundedAndStartsInSlicesNotAllAtOnce) {
  ControlRig rig;
  ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                        ConstantPlan(0), RunnerLimits{});
  runner.Start(rig.clock.Now());
  EXPECT_FALSE(runner.Burst(ScenarioRunner::kMaxBurst + 1));
  EXPECT_EQ(runner.burst_pending(), 0u);
  ASSERT_TRUE(runner.Burst(ScenarioRunner::kMaxBurst));
  EXPECT_FALSE(runner.Burst(1));  // would leave more than the cap waiting
  // One dispatch starts 512; the rest wait for the next ones, so sockets are
  // served in between.
  rig.timers.Dispatch();
  EXPECT_EQ(rig.scenario.starts.size(), 512u);
  EXPECT_EQ(runner.burst_pending(), ScenarioRunner::kMaxBurst - 512);
  rig.timers.Dispatch();
  EXPECT_EQ(rig.scenario.starts.size(), 1024u);
  rig.RunFor(300ms);
  runner.Stop();
  EXPECT_EQ(rig.series.arrivals->Value(),
            static_cast<double>(ScenarioRunner::kMaxBurst));
  // Every burst arrival carries the burst's intended time, so the time it
  // waited to start shows up as schedule lag.
  EXPECT_EQ(rig.scenario.starts.front(), rig.scenario.starts.back());
}

TEST(RunnerControl, ARemovedRunnerDoesNotLeaveTheScenarioLookingPaused) {
  ControlRig rig;
  {
    ScenarioRunner runner(rig.timers, rig.clock, rig.scenario, rig.series,
                          ConstantPlan(1), RunnerLimits{});
    runner.Start(rig.clock.Now());
    runner.Pause();
    runner.OverrideRate(5, MonoTime::max());
    EXPECT_EQ(rig.series.paused->Value(), 1);
  }
  EXPECT_EQ(rig.series.paused->Value(), 0);
  EXPECT_EQ(rig.series.rate_overridden->Value(), 0);
}

// ---- Token ------------------------------------------------------------------

TEST(ControlToken, OnlyTheExactTokenMatches) {
  const std::string token = "0123456789abcdef0123";
  EXPECT_TRUE(TokenMatches(token, token));
  EXPECT_FALSE(TokenMatches("0123456789abcdef012", token));    // prefix
  EXPECT_FALSE(TokenMatches("0123456789abcdef01234", token));  // longer
  EXPECT_FALSE(TokenMatches("1123456789abcdef0123", token));
  EXPECT_FALSE(TokenMatches("", token));
  EXPECT_FALSE(TokenMatches("", ""));  // no token configured never matches
}

// ---- ControlApi without a process
// ---------------------------------------------

struct ApiRig : ControlRig {
  ScenarioRunner runner{timers,           clock,         scenario, series,
                        ConstantPlan(10), RunnerLimits{}};
  ControlApi api{clock, metrics, [this](std::string_view name) {
                   return name == "ingest" ? &runner : nullptr;
                 }};
  ApiRig() { runner.Start(clock.Now()); }
  ~ApiRig() { runner.Stop(); }

  HttpServerResponse Call(const std::string& method, const std::string& path,
                          const std::string& body = "",
                          const std::string& token = "0123456789abcdef0123") {
    HttpServerRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    r.remote = "127.0.0.1";
    if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
    return api.Handle(r);
  }
  double Counted(const std::string& action, const std::string& result) {
    return metrics.ControlAction(action, result).Value();
  }
};

TEST(ControlApi, WithoutAConfiguredTokenEveryRouteIsForbidden) {
  ApiRig rig;
  auto r = rig.Call("POST", "/api/scenarios/ingest/pause");
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(json::parse(r.body)["error"].get<std::string>().find("token"),
            std::string::npos);
  EXPECT_FALSE(rig.runner.paused());
  EXPECT_EQ(rig.Counted("pause", "no_token_configured"), 1);
}

TEST(ControlApi, AMissingOrWrongTokenIsUnauthorizedAndChangesNothing) {
  ApiRig rig;
  rig.api.SetToken("0123456789abcdef0123");
  auto missing = rig.Call("POST", "/api/scenarios/ingest/pause", "", "");
  EXPECT_EQ(missing.status, 401);
  auto wrong = rig.Call("POST", "/api/scenarios/ingest/pause", "",
                        "0123456789abcdef0124");
  EXPECT_EQ(wrong.status, 401);
  bool challenge = false;
  for (const auto& [k, v] : wrong.headers)
    challenge = challenge || (k == "WWW-Authenticate" && v.find("Bearer") == 0);
  EXPECT_TRUE(challenge);
  EXPECT_FALSE(rig.runner.paused());
  EXPECT_EQ(rig.Counted("pause", "unauthorized"), 2);
  // The answer never echoes what was presented.
  EXPECT_EQ(wrong.body.find("0124"), std::string::npos);
}

TEST(ControlApi, PreflightRefusesOnTheHeadAndCountsLikeHandle) {
  ApiRig rig;
  rig.api.SetToken("0123456789abcdef0123");
  HttpServerRequest head;
  head.method = "POST";
  head.path = "/api/scenarios/ingest/burst";
  head.content_length = 2u << 20;  // declared, never read
  std::optional<HttpServerResponse> refused = rig.api.Preflight(head);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_EQ(rig.Counted("burst", "unauthorized"), 1);
  head.path = "/api/scenarios/ingest/nope";
  EXPECT_EQ(rig.api.Preflight(head)->status, 404);
  head.path = "/api/scenarios/ingest/burst";
  head.method = "GET";
  EXPECT_EQ(rig.api.Preflight(head)->status, 405);
  // With the token, the body is worth reading; nothing is counted yet.
  head.method = "POST";
  head.headers["authorization"] = "Bearer 0123456789abcdef0123";
  EXPECT_FALSE(rig.api.Preflight(head));
  EXPECT_EQ(rig.Counted("burst", "ok"), 0);
  EXPECT_EQ(rig.Counted("burst", "unauthorized"), 1);
}

TEST(ControlApi, EachActionChangesTheRunnerAndAnswersItsState) {
  ApiRig rig;
  rig.api.SetToken("0123456789abcdef0123");
  auto r = rig.Call("POST", "/api/scenarios/ingest/pause");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(json::parse(r.body)["state"]["paused"].get<bool>());
  EXPECT_TRUE(rig.runner.paused());
  r = rig.Call("POST", "/api/scenarios/ingest/pause");
  EXPECT_FALSE(json::parse(r.body)["changed"].get<bool>());
  r = rig.Call("POST", "/api/scenarios/ingest/resume");
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(rig.runner.paused());

  r = rig.Call("PUT", "/api/scenarios/ingest/rate",
               R"({"rate": "5/s", "for": "10m"})");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(rig.runner.rate_override());
  EXPECT_EQ(rig.runner.rate_override()->rate, 5);
  json state = json::parse(r.body)["state"];
  EXPECT_DOUBLE_EQ(state["override"]["remaining_seconds"].get<double>(), 600);
  r = rig.Call("PUT", "/api/scenarios/ingest/rate", R"({"rate": "120/min"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(rig.runner.rate_override()->rate, 2);
  EXPECT_TRUE(json::parse(r.body)["state"]["override"]["remaining_seconds"]
                  .is_null());  // until the next reload
  r = rig.Call("DELETE", "/api/scenarios/ingest/rate");
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(rig.runner.rate_override());

  r = rig.Call("POST", "/api/scenarios/ingest/burst", R"({"count": 100})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(rig.runner.burst_pending(), 100u);
  for (const char* action : {"pause", "resume", "rate", "clear_rate", "burst"})
    EXPECT_GE(rig.Counted(action, "ok"), 1) << action;
}

TEST(ControlApi, BadRequestsAreRefusedWithAReasonAndCounted) {
  ApiRig rig;
  rig.api.SetToken("0123456789abcdef0123");
  struct Case {
    const char* method;
    const char* path;
    const char* body;
    int status;
  };
  const Case cases[] = {
      {"PUT", "/api/scenarios/ingest/rate", R"({"rate": "fast"})", 400},
      {"PUT", "/api/scenarios/ingest/rate", R"({"rate": "5/s", "for": "0s"})",
       400},
      {"PUT", "/api/scenarios/ingest/rate", R"({"rate": "200000/s"})", 400},
      {"PUT", "/api/scenarios/ingest/rate", R"({"speed": "5/s"})", 400},
      {"PUT", "/api/scenarios/ingest/rate", "not json", 400},
      {"POST", "/api/scenarios/ingest/burst", R"({"count": 0})", 400},
      {"POST", "/api/scenarios/ingest/burst", R"({"count": 10001})", 400},
      {"POST", "/api/scenarios/ingest/burst", R"({"count": "100"})", 400},
      {"POST", "/api/scenarios/nope/pause", "", 404},
      {"GET", "/api/scenarios/ingest/pause", "", 405},
      {"POST", "/api/scenarios/ingest/explode", "", 404},
  };
  for (const Case& c : cases) {
    auto r = rig.Call(c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body;
    EXPECT_TRUE(json::parse(r.body).contains("error")) << r.body;
  }
  EXPECT_FALSE(rig.runner.rate_override());
  EXPECT_EQ(rig.runner.burst_pending(), 0u);
  EXPECT_EQ(rig.Counted("rate", "invalid"), 5);
  EXPECT_EQ(rig.Counted("burst", "invalid"), 3);
  EXPECT_EQ(rig.Counted("pause", "unknown_scenario"), 1);
}

// polar_loadd_control_actions_total's series as exported: "action/result" ->
// value.
std::map<std::string, double> ControlSeries(prometheus::Registry& registry) {
  std::map<std::string, double> out;
  for (const auto& family : registry.Collect()) {
    if (family.name != "polar_loadd_control_actions_total") continue;
    for (const auto& m : family.metric) {
      std::string action, result;
      for (const auto& l : m.label) {
        if (l.name == "action") action = l.value;
        if (l.name == "result") result = l.value;
      }
      out[action + "/" + result] = m.counter.value;
    }
  }
  return out;
}

// increase() and rate() cannot see a series born at 1: the first pause of a
// box's life would be missing from the dashboards' "Control actions".
TEST(ControlApi, EveryActionAndResultIsExportedAtZeroBeforeTheFirstRequest) {
  ApiRig rig;
  auto before = ControlSeries(rig.registry);
  EXPECT_EQ(before.size(), kControlActions.size() * kControlResults.size());
  for (auto action : kControlActions) {
    for (auto result : kControlResults) {
      const std::string key = std::string(action) + "/" + std::string(result);
      ASSERT_TRUE(before.contains(key)) << key;
      EXPECT_EQ(before[key], 0) << key;
    }
  }
  // Every route, good and bad, counts into one of those series: none is
  // added on the way (a result outside the fixed sets would be).
  rig.Call("POST", "/api/scenarios/ingest/pause");  // no token configured
  rig.api.SetToken("0123456789abcdef0123");
  rig.Call("POST", "/api/scenarios/ingest/pause", "", "");  // unauthorized
  rig.Call("POST", "/api/scenarios/ingest/pause");
  rig.Call("POST", "/api/scenarios/ingest/pause");  // ok, changed nothing
  rig.Call("POST", "/api/scenarios/ingest/resume");
  rig.Call("PUT", "/api/scenarios/ingest/rate", R"({"rate": "5/s"})");
  rig.Call("DELETE", "/api/scenarios/ingest/rate");
  rig.Call("POST", "/api/scenarios/ingest/burst", R"({"count": 0})");
  rig.Call("POST", "/api/scenarios/nope/burst", R"({"count": 1})");
  auto after = ControlSeries(rig.registry);
  EXPECT_EQ(after.size(), before.size());
  double total = 0;
  for (const auto& [key, value] : after) total += value;
  EXPECT_EQ(total, 9);
  EXPECT_EQ(after["pause/no_token_configured"], 1);
  EXPECT_EQ(after["pause/unauthorized"], 1);
  EXPECT_EQ(after["pause/ok"], 2);
  EXPECT_EQ(after["resume/ok"], 1);
  EXPECT_EQ(after["rate/ok"], 1);
  EXPECT_EQ(after["clear_rate/ok"], 1);
  EXPECT_EQ(after["burst/invalid"], 1);
  EXPECT_EQ(after["burst/unknown_scenario"], 1);
}

// ---- [control] in the config
// --------------------------------------------------

constexpr const char* kBase = R"(
[target]
token = "polar_oat_secret"
[scenarios.ingest]
type = "event_ingestion"
rate = "1/s"
)";

TEST(ControlConfig, TheTokenComesFromTheFileAndJoinsTheSecrets) {
  std::string dir = testing::TempDir();
  testing::WriteFile(dir + "/control", "0123456789abcdef0123\n");
  ConfigResult r = ParseConfig(
      std::string(kBase) + "[control]\ntoken_file = \"" + dir + "/control\"\n",
      "t.toml", FakeEnv());
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  EXPECT_EQ(r.config->control.token, "0123456789abcdef0123");
  EXPECT_NE(
      std::find(r.secrets.begin(), r.secrets.end(), "0123456789abcdef0123"),
      r.secrets.end());
}

TEST(ControlConfig, NoControlTableMeansNoToken) {
  ConfigResult r = ParseConfig(kBase, "t.toml", FakeEnv());
  ASSERT_TRUE(r.config);
  EXPECT_TRUE(r.config->control.token.empty());
}

TEST(ControlConfig, AShortTokenBothKeysOrAnUnknownKeyAreErrors) {
  for (const char* table : {
           "[control]\ntoken = \"short\"\n",
           "[control]\ntoken = \"0123456789abcdef0123\"\ntoken_file = \"/x\"\n",
           "[control]\ntokens = \"0123456789abcdef0123\"\n",
           "[control]\ntoken_file = \"/nonexistent/control-token\"\n",
       }) {
    ConfigResult r =
        ParseConfig(std::string(kBase) + table, "t.toml", FakeEnv());
    EXPECT_FALSE(r.config) << table;
    ASSERT_FALSE(r.errors.empty());
    EXPECT_EQ(r.errors[0].key.rfind("control.", 0), 0u)
        << r.errors[0].ToString();
    // The message never contains the token itself.
    for (const auto& e : r.errors)
      EXPECT_EQ(e.ToString().find("0123456789abcdef0123"), std::string::npos);
  }
}

}  // namespace
}  // namespace polar
