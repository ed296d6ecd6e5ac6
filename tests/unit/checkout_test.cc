// CheckoutScenario against a fake Polar (checkouts, the SSE stream and a
// worker that makes confirmed checkouts succeed) on a fake clock: the steps
// and their bodies, the funnel, completion by stream and by polling, deadlines,
// failures and their outcomes, webhook expectations.
#include "scenarios/checkout.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/support/fake_transport.h"
#include "tests/support/process.h"

namespace polar {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr char kProduct[] = "77d5072c-f7be-48fd-8bd4-abf9451d0bf0";

// Records webhook expectations as (type, key).
class RecordingWebhooks final : public WebhookExpectations {
 public:
  void Expect(std::string_view type, std::string key, MonoTime at) override {
    expected.emplace_back(std::string(type), std::move(key));
    times.push_back(at);
  }
  std::vector<std::pair<std::string, std::string>> expected;
  std::vector<MonoTime> times;
};

// Polar's checkout routes as the scenario sees them, on a FakeTransport.
// `fail[step]` replaces the answer of that step ("create", "update",
// "status", "confirm", "get") with a status and body, or a transport outcome.
class FakePolar {
 public:
  struct Failure {
    long status = 0;
    std::string body;
    Outcome transport = Outcome::kOk;
  };
  struct Checkout {
    std::string id, secret, status = "open", email;
    std::vector<std::pair<MonoTime, std::string>> history;  // status changes
  };

  FakePolar(testing::FakeTransport& transport, FakeTimers& timers,
            FakeClock& clock)
      : transport_(transport), timers_(timers), clock_(clock) {
    transport_.handler = [this](const Request& r, Response& out) {
      Handle(r, out);
    };
  }

  Duration worker_delay = 300ms;  // confirm -> succeeded
  bool worker_runs = true;
  // GET /v1/checkouts/{id} reads a replica this far behind: it answers the
  // status the checkout had that long ago (docs/polar-api.md §2.3).
  Duration replica_lag = 0ms;
  // Create answers for a product that needs a payment.
  bool paid_product = false;
  // Succeed() tells the open streams (false: a stream that missed it).
  bool publish = true;
  // Succeed inside the confirm handler, before its answer is delivered.
  bool succeed_before_answer = false;
  std::map<std::string, Failure> fail;
  std::map<std::string, Checkout> by_secret;
  int created = 0;

  static std::string StepOf(const Request& r) {
    if (r.method == Method::kPost && r.path == "/v1/checkouts/")
      return "create";
    if (r.path.rfind("/v1/checkouts/client/", 0) == 0) {
      if (r.method == Method::kPatch) return "update";
      if (r.method == Method::kPost) return "confirm";
      return "status";
    }
    return "get";
  }

  void Handle(const Request& r, Response& out) {
    const std::string step = StepOf(r);
    if (auto f = fail.find(step); f != fail.end()) {
      out.transport = f->second.transport;
      out.status = f->second.status;
      out.body = f->second.body;
      return;
    }
    if (step == "create") {
      Checkout c;
      c.id =
          "00000000-0000-4000-8000-" + std::to_string(100000000000 + created);
      c.secret = "polar_c_secret" + std::to_string(created++);
      c.history.emplace_back(clock_.Now(), "open");
      by_secret[c.secret] = c;
      out.status = 201;
      out.body = json{{"id", c.id},
                      {"client_secret", c.secret},
                      {"status", "open"},
                      {"product_id", kProduct},
                      {"is_payment_form_required", paid_product}}
                     .dump();
      return;
    }
    Checkout* c = nullptr;
    if (step == "get") {
      std::string id = r.path.substr(std::string("/v1/checkouts/").size());
      for (auto& [s, ch] : by_secret)
        if (ch.id == id) c = &ch;
    } else {
      std::string rest =
          r.path.substr(std::string("/v1/checkouts/client/").size());
      c = &by_secret.at(rest.substr(0, rest.find('/')));
    }
    if (step == "update" || step == "confirm") {
      json body = json::parse(r.body);
      c->email = body.value("customer_email", c->email);
    }
    if (step == "confirm") {
      c->status = "confirmed";
      c->history.emplace_back(clock_.Now(), "confirmed");
      std::string secret = c->secret;
      if (worker_runs && !succeed_before_answer) {
        timers_.At(clock_.Now() + worker_delay,
                   [this, secret] { Succeed(secret); });
      }
    }
    std::string status = c->status;
    if (step == "get") {
      // The replica shows the newest status older than the lag.
      for (const auto& [at, s] : c->history)
        if (at + replica_lag <= clock_.Now()) status = s;
    }
    out.status = 200;
    out.body = json{{"id", c->id},
                    {"status", status},
                    {"customer_email",
                     c->email.empty() ? json(nullptr) : json(c->email)}}
                   .dump();
    if (step == "confirm" && succeed_before_answer) Succeed(c->secret);
  }

  void Succeed(const std::string& secret) {
    by_secret[secret].status = "succeeded";
    by_secret[secret].history.emplace_back(clock_.Now(), "succeeded");
    if (!publish) return;
    for (StreamId id : transport_.OpenStreams(secret)) {
      transport_.StreamData(
          id, R"(data: {"id":"e1","key":"checkout.order_created","payload":{}})"
              "\r\n\r\n: ping\r\n\r\n");
      transport_.StreamData(id, R"(data: {"id":"e2","key":"checkout.updated",)"
                                R"("payload":{"status":"succeeded"}})"
                                "\r\n\r\n");
    }
  }

 private:
  testing::FakeTransport& transport_;
  FakeTimers& timers_;
  FakeClock& clock_;
};

class CheckoutTest : public ::testing::Test {
 protected:
  CheckoutTest()
      : metrics_(registry_),
        timers_(clock_),
        transport_(clock_, timers_),
        polar_(transport_, timers_, clock_) {}

  CheckoutOptions AllSteps() {
    CheckoutOptions o;
    o.product_id = kProduct;
    o.update_ratio = o.status_ratio = o.confirm_ratio = 1.0;
    o.think_time = 1s;
    return o;
  }

  std::unique_ptr<CheckoutScenario> Make(CheckoutOptions o, uint64_t seed = 7) {
    ScenarioContext context{"checkout", transport_, clock_, metrics_, seed};
    context.webhooks = &webhooks_;
    context.timers = &timers_;
    return std::make_unique<CheckoutScenario>(std::move(context), std::move(o));
  }

  std::map<std::string, double> Scrape() {
    return testing::ParseMetrics(SerializeMetrics(registry_));
  }
  double Requests(const std::string& step, const std::string& outcome = "") {
    std::vector<std::string> labels = {"step=\"" + step + "\""};
    if (!outcome.empty()) labels.push_back("outcome=\"" + outcome + "\"");
    return testing::SumSeries(Scrape(), "polar_loadd_requests_total", labels);
  }
  double Flows(const std::string& outcome) {
    return testing::SumSeries(Scrape(),
                              "polar_loadd_flow_duration_seconds_count",
                              {"outcome=\"" + outcome + "\""});
  }
  double Completions() {
    return testing::SumSeries(Scrape(), "polar_loadd_completion_seconds_count",
                              {"kind=\"checkout_succeeded\""});
  }
  double CompletionSum() {
    return testing::SumSeries(Scrape(), "polar_loadd_completion_seconds_sum",
                              {"kind=\"checkout_succeeded\""});
  }
  double Lost() {
    return testing::SumSeries(Scrape(), "polar_loadd_probes_lost_total",
                              {"kind=\"checkout_succeeded\""});
  }
  void RunFor(Duration d) { timers_.AdvanceBy(d); }

  prometheus::Registry registry_;
  Metrics metrics_;
  FakeClock clock_;
  FakeTimers timers_;
  testing::FakeTransport transport_;
  FakePolar polar_;
  RecordingWebhooks webhooks_;
};

TEST_F(CheckoutTest,
       AFlowCreatesUpdatesPollsConfirmsAndSeesSucceededOnTheStream) {
  auto scenario = Make(AllSteps());
  const MonoTime t0 = clock_.Now();
  scenario->Start(Arrival{t0, 0});
  EXPECT_EQ(scenario->in_flight(), 1u);
  RunFor(30s);
  EXPECT_EQ(scenario->in_flight(), 0u);
  EXPECT_EQ(timers_.pending(), 0u) << "a finished flow leaves no timer behind";

  ASSERT_EQ(transport_.requests.size(), 4u);
  const Request& create = transport_.requests[0];
  EXPECT_EQ(create.method, Method::kPost);
  EXPECT_EQ(create.path, "/v1/checkouts/");
  EXPECT_TRUE(create.authenticated);
  json cb = json::parse(create.body);
  EXPECT_EQ(cb["products"], json::array({kProduct}));
  EXPECT_FALSE(cb.contains("product_id"));

  const Request& update = transport_.requests[1];
  EXPECT_EQ(update.method, Method::kPatch);
  EXPECT_EQ(update.path, "/v1/checkouts/client/polar_c_secret0");
  EXPECT_FALSE(update.authenticated) << "the checkout page has no token";
  json ub = json::parse(update.body);
  std::string email = ub["customer_email"];
  EXPECT_EQ(email.substr(0, 9), "loadtest+");
  EXPECT_EQ(email.substr(email.size() - 9), "@polar.sh");
  EXPECT_FALSE(ub["customer_name"].get<std::string>().empty());
  EXPECT_EQ(ub["customer_billing_address"]["country"], "SE");
  EXPECT_FALSE(ub.contains("customer")) << "the Locust suite's ignored key";

  EXPECT_EQ(transport_.requests[2].method, Method::kGet);
  EXPECT_EQ(transport_.requests[2].path,
            "/v1/checkouts/client/polar_c_secret0");
  const Request& confirm = transport_.requests[3];
  EXPECT_EQ(confirm.method, Method::kPost);
  EXPECT_EQ(confirm.path, "/v1/checkouts/client/polar_c_secret0/confirm");
  EXPECT_EQ(json::parse(confirm.body)["customer_email"], email);

  // Each step starts a think time (1 s) after the previous one ended; the
  // fake answers in 5 ms.
  EXPECT_EQ(create.intended, t0);
  EXPECT_EQ(update.intended, t0 + 5ms + 1s);
  EXPECT_EQ(transport_.requests[2].intended, t0 + 2 * 5ms + 2s);
  EXPECT_EQ(confirm.intended, t0 + 3 * 5ms + 3s);

  // The stream was opened right after create, anonymous, and is closed now.
  ASSERT_EQ(transport_.streams.size(), 1u);
  const auto& stream = transport_.streams.begin()->second;
  EXPECT_EQ(stream.request.path, "/v1/checkouts/client/polar_c_secret0/stream");
  EXPECT_FALSE(stream.request.authenticated);
  EXPECT_EQ(stream.request.intended, t0 + 5ms);
  EXPECT_TRUE(stream.cancelled);

  for (const char* step : {"create", "update", "status", "confirm", "stream"})
    EXPECT_EQ(Requests(step, "ok"), 1) << step;
  EXPECT_EQ(Completions(), 1);
  EXPECT_NEAR(CompletionSum(), 0.300, 1e-9) << "confirm answered -> succeeded";
  EXPECT_EQ(Lost(), 0);
  EXPECT_EQ(Flows("ok"), 1);
  // Intended start to the succeeded event: 4 answers, 3 think times, 300 ms.
  EXPECT_NEAR(
      testing::SumSeries(Scrape(), "polar_loadd_flow_duration_seconds_sum"),
      0.020 + 3 + 0.300, 1e-9);
}

TEST_F(CheckoutTest, EachStepsLatencyRunsFromItsOwnIntendedStart) {
  auto o = AllSteps();
  o.think_time = 2s;
  auto scenario = Make(o);
  transport_.latency = 100ms;
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(30s);
  auto m = Scrape();
  // Every step: intended -> answer is the 100 ms latency; think time is not
  // counted in a step, and the flow's first intended start is not either.
  for (const char* step : {"create", "update", "status", "confirm"}) {
    EXPECT_NEAR(testing::SumSeries(m, "polar_loadd_request_latency_seconds_sum",
                                   {std::string("step=\"") + step + "\""}),
                0.100, 1e-9)
        << step;
  }
}

TEST_F(CheckoutTest, OlderServersGetTheProductIdForm) {
  auto o = AllSteps();
  o.create_form = CreateForm::kProductId;
  auto scenario = Make(o);
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(30s);
  json cb = json::parse(transport_.requests.at(0).body);
  EXPECT_EQ(cb["product_id"], kProduct);
  EXPECT_FALSE(cb.contains("products"));
  EXPECT_EQ(Flows("ok"), 1);
}

TEST_F(CheckoutTest, WebhookExpectationsFollowTheDocumentedKeys) {
  auto o = AllSteps();
  o.customer_pool = 1;  // every flow uses the same address
  auto scenario = Make(o);
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(30s);
  scenario->Start(Arrival{clock_.Now(), 1});
  RunFor(30s);
  const std::string id0 = polar_.by_secret.at("polar_c_secret0").id;
  const std::string id1 = polar_.by_secret.at("polar_c_secret1").id;
  const std::string email =
      json::parse(transport_.requests.at(1).body)["customer_email"];
  std::vector<std::pair<std::string, std::string>> want = {
      {"checkout.created", id0},
      {"order.created", id0},
      {"order.updated", id0},
      {"order.paid", id0},
      {"checkout.updated", id0},
      {"customer.created", email},
      // The second confirm reuses the address: Polar matches the customer
      // by e-mail, so no customer.created.
      {"checkout.created", id1},
      {"order.created", id1},
      {"order.updated", id1},
      {"order.paid", id1},
      {"checkout.updated", id1}};
  EXPECT_EQ(webhooks_.expected, want);
  EXPECT_EQ(email, AsciiLower(email)) << "keyed by the lower-cased address";
}

TEST_F(CheckoutTest, NoReceiverNoExpectations) {
  ScenarioContext context{"checkout", transport_, clock_, metrics_, 1};
  context.timers = &timers_;
  CheckoutScenario scenario(std::move(context), AllSteps());
  scenario.Start(Arrival{clock_.Now(), 0});
  RunFor(30s);
  EXPECT_EQ(Flows("ok"), 1);
}

// 4,000 flows with the default funnel: how far each got must follow the
// seed's weights 10/5/3/1 (abandoned after create 50%, after update 20%, after
// status 20%, confirmed 10%). Chi-square with 3 degrees of freedom; 16.27 is
// the p = 0.001 critical value, and the seed is fixed, so the verdict is
// reproducible.
TEST_F(CheckoutTest, TheDefaultFunnelFollowsTheSeedsWeights) {
  CheckoutOptions o;
  o.product_id = kProduct;
  o.think_time = 0s;
  auto scenario = Make(o, 2024);
  constexpr int kFlows = 4000;
  for (int i = 0; i < kFlows; ++i) {
    scenario->Start(Arrival{clock_.Now(), static_cast<uint64_t>(i)});
    RunFor(10ms);
  }
  RunFor(120s);
  EXPECT_EQ(scenario->in_flight(), 0u);
  const double created = Requests("create");
  const double updated = Requests("update");
  const double polled = Requests("status");
  const double confirmed = Requests("confirm");
  ASSERT_EQ(created, kFlows);
  const double observed[4] = {created - updated, updated - polled,
                              polled - confirmed, confirmed};
  const double expected[4] = {0.5 * kFlows, 0.2 * kFlows, 0.2 * kFlows,
                              0.1 * kFlows};
  double chi2 = 0;
  for (int i = 0; i < 4; ++i)
    chi2 += std::pow(observed[i] - expected[i], 2) / expected[i];
  EXPECT_LT(chi2, 16.27) << "create " << created << " update " << updated
                         << " status " << polled << " confirm " << confirmed;
  EXPECT_EQ(Completions(), confirmed);
  EXPECT_EQ(Flows("ok"), kFlows) << "abandoned carts are ok flows";
}

TEST_F(CheckoutTest, ConfiguredRatiosChangeTheFunnel) {
  CheckoutOptions o;
  o.product_id = kProduct;
  o.think_time = 0s;
  o.update_ratio = 1.0;
  o.status_ratio = 0.0;
  o.confirm_ratio = 0.0;
  auto scenario = Make(o);
  for (int i = 0; i < 50; ++i) {
    scenario->Start(Arrival{clock_.Now(), static_cast<uint64_t>(i)});
    RunFor(10ms);
  }
  RunFor(10s);
  EXPECT_EQ(Requests("create"), 50);
  EXPECT_EQ(Requests("update"), 50);
  EXPECT_EQ(Requests("status"), 0);
  EXPECT_EQ(Requests("confirm"), 0);
  EXPECT_TRUE(transport_.streams.empty()) << "streams only for confirmations";
}

TEST_F(CheckoutTest, TheSameSeedDrawsTheSameFunnelNamesAndAddressIndexes) {
  auto run = [&](uint64_t seed) {
    prometheus::Registry registry;
    Metrics metrics(registry);
    FakeClock clock;
    FakeTimers timers(clock);
    testing::FakeTransport transport(clock, timers);
    FakePolar polar(transport, timers, clock);
    ScenarioContext context{"checkout", transport, clock, metrics, seed};
    context.timers = &timers;
    CheckoutOptions o;
    o.product_id = kProduct;
    o.think_time = 0s;
    CheckoutScenario scenario(std::move(context), o);
    for (int i = 0; i < 100; ++i) {
      scenario.Start(Arrival{clock.Now(), static_cast<uint64_t>(i)});
      timers.AdvanceBy(10ms);
    }
    timers.AdvanceBy(60s);
    std::vector<std::string> out;
    for (const Request& r : transport.requests) {
      std::string line = std::string(MethodName(r.method)) + " " + r.path;
      if (r.method == Method::kPatch) {
        json b = json::parse(r.body);
        std::string e = b["customer_email"];
        // The tag is <run id>-<index>; the run id differs per run.
        line += " " + b["customer_name"].get<std::string>() + " " +
                e.substr(e.rfind('-'));
      }
      out.push_back(line);
    }
    return out;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST_F(CheckoutTest, PollModeAsksGetCheckoutUntilSucceeded) {
  auto o = AllSteps();
  o.completion = CompletionMode::kPoll;
  o.poll_interval = 100ms;
  polar_.worker_delay = 450ms;
  auto scenario = Make(o);
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(30s);
  EXPECT_TRUE(transport_.streams.empty());
  const std::string id = polar_.by_secret.at("polar_c_secret0").id;
  // A poll 100 ms after each answer (5 ms): answered 105, 210, 315 and 420
  // ms after confirm the checkout is still confirmed (the worker takes 450);
  // at 525 ms it has succeeded.
  EXPECT_EQ(transport_.Count(Method::kGet, "/v1/checkouts/" + id), 5u);
  for (const auto& r : transport_.requests) {
    if (r.path == "/v1/checkouts/" + id) {
      EXPECT_TRUE(r.authenticated);
    }
  }
  EXPECT_EQ(Requests("get", "ok"), 5);
  EXPECT_EQ(Completions(), 1);
  EXPECT_NEAR(CompletionSum(), 0.525, 1e-9);
  EXPECT_EQ(Flows("ok"), 1);
}

TEST_F(CheckoutTest, PollModeWaitsOutAReplicaThatStillSaysOpen) {
  auto o = AllSteps();
  o.completion = CompletionMode::kPoll;
  o.poll_interval = 100ms;
  polar_.worker_delay = 100ms;
  // Create is replicated 2 s later, long before confirm (3 s in); confirm
  // and success (3.12 s) only at 5.02 and 5.12 s: 19 polls see open.
  polar_.replica_lag = 2s;
  auto scenario = Make(o);
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(30s);
  // Polls during the lag see "open" after the confirm: not yet, not wrong.
  EXPECT_EQ(Requests("get", "check_failed"), 0);
  EXPECT_GE(Requests("get", "ok"), 19);
  EXPECT_EQ(Completions(), 1);
  EXPECT_EQ(Flows("ok"), 1);
  EXPECT_EQ(Flows("check_failed"), 0);
}

TEST_F(CheckoutTest, APaidProductIsOneClearErrorAndNoConfirmIsSent) {
  polar_.paid_product = true;
  auto scenario = Make(AllSteps());
  for (int i = 0; i < 3; ++i) scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(30s);
  EXPECT_EQ(Requests("create", "check_failed"), 3);
  EXPECT_EQ(transport_.Count(Method::kPost, "/confirm"), 0u);
  EXPECT_EQ(transport_.Count(Method::kPatch, "/v1/checkouts/client/"), 0u);
  EXPECT_EQ(Flows("check_failed"), 3);
}

TEST_F(CheckoutTest, AReconnectFrameOpensANewStreamAndTheFlowCompletes) {
  polar_.worker_delay = 2s;
  auto scenario = Make(AllSteps());
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(3500ms);  // confirmed at 3.02 s; succeeded at 5.02 s
  auto open = transport_.OpenStreams("/stream");
  ASSERT_EQ(open.size(), 1u);
  // Polar's MAX_SSE_CONNECTION_LIFETIME: the frame, then the end.
  transport_.StreamData(open[0], "data: {\"type\": \"reconnect\"}\r\n\r\n");
  transport_.StreamEnd(open[0], Outcome::kOk);
  RunFor(30s);
  EXPECT_EQ(transport_.streams.size(), 2u);
  EXPECT_EQ(Requests("stream", "ok"), 2);
  EXPECT_EQ(Requests("stream", "check_failed"), 0);
  EXPECT_EQ(Completions(), 1);
  EXPECT_EQ(Flows("ok"), 1);
}

TEST_F(CheckoutTest, ASuccessBetweenTwoStreamsIsFoundByOneCheck) {
  polar_.worker_delay = 1s;
  transport_.auto_head = false;  // the new stream's head comes late
  auto scenario = Make(AllSteps());
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(100ms);
  auto first = transport_.OpenStreams("/stream");
  ASSERT_EQ(first.size(), 1u);
  transport_.StreamHead(first[0], 200, "text/event-stream");
  RunFor(3400ms);  // confirmed at 3.02 s
  transport_.StreamData(first[0], "data: {\"type\": \"reconnect\"}\r\n\r\n");
  transport_.StreamEnd(first[0], Outcome::kOk);
  polar_.publish = false;  // published before the new stream subscribed
  RunFor(2s);  // it succeeds at 4.02 s while the new stream has no head
  auto second = transport_.OpenStreams("/stream");
  ASSERT_EQ(second.size(), 1u);
  transport_.StreamHead(second[0], 200, "text/event-stream");
  RunFor(1s);
  EXPECT_EQ(Requests("get", "ok"), 1) << "one check once the new one is live";
  EXPECT_EQ(Completions(), 1);
  EXPECT_EQ(Flows("ok"), 1);
}

TEST_F(CheckoutTest, ARefusedConfirmLeavesTheAddressNewForTheNextOne) {
  auto o = AllSteps();
  o.customer_pool = 1;
  auto scenario = Make(o);
  polar_.fail["confirm"] = {429, ""};
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(30s);
  polar_.fail.clear();
  scenario->Start(Arrival{clock_.Now(), 1});
  RunFor(30s);
  // The refused confirm created no customer: the next confirm with the same
  // address must expect customer.created.
  int created = 0;
  for (const auto& [type, key] : webhooks_.expected)
    created += type == "customer.created";
  EXPECT_EQ(created, 1);
}

TEST_F(CheckoutTest, ACheckoutThatNeverSucceedsIsLostAtTheDeadline) {
  for (CompletionMode mode : {CompletionMode::kStream, CompletionMode::kPoll}) {
    SCOPED_TRACE(mode == CompletionMode::kStream ? "stream" : "poll");
    const double lost_before = Lost();
    const double timeouts_before = Flows("timeout");
    auto o = AllSteps();
    o.completion = mode;
    o.completion_deadline = 5s;
    polar_.worker_runs = false;
    auto scenario = Make(o);
    scenario->Start(Arrival{clock_.Now(), 0});
    RunFor(60s);
    EXPECT_EQ(scenario->in_flight(), 0u);
    EXPECT_EQ(Lost() - lost_before, 1);
    EXPECT_EQ(Flows("timeout") - timeouts_before, 1);
    EXPECT_EQ(Completions(), 0);
    EXPECT_EQ(timers_.pending(), 0u);
    for (const auto& [id, s] : transport_.streams) EXPECT_FALSE(s.open);
  }
}

TEST_F(CheckoutTest, AStreamTheServerClosesEarlyFallsBackToPolling) {
  auto o = AllSteps();
  o.poll_interval = 100ms;
  polar_.worker_delay = 1s;
  auto scenario = Make(o);
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(3500ms);  // confirmed at 3.02 s; the worker needs until 4.02 s
  auto open = transport_.OpenStreams("/stream");
  ASSERT_EQ(open.size(), 1u);
  transport_.StreamEnd(open[0], Outcome::kOk);  // the server hangs up
  RunFor(30s);
  EXPECT_EQ(Requests("stream", "ok"), 1) << "a stream that ended cleanly";
  EXPECT_GT(Requests("get", "ok"), 0) << "polled instead";
  EXPECT_EQ(Completions(), 1);
  EXPECT_EQ(Flows("ok"), 1);
}

TEST_F(CheckoutTest, ATransportThatCannotStreamIsPolled) {
  transport_.supports_streams = false;
  auto scenario = Make(AllSteps());
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(30s);
  EXPECT_GT(Requests("get", "ok"), 0);
  EXPECT_EQ(Completions(), 1);
}

TEST_F(CheckoutTest, SucceededBeforeTheConfirmAnswerIsNoTimeAtAll) {
  polar_.succeed_before_answer = true;  // the event beats the answer
  auto scenario = Make(AllSteps());
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(30s);
  EXPECT_EQ(Completions(), 1);
  EXPECT_EQ(CompletionSum(), 0);
  EXPECT_EQ(Flows("ok"), 1);
}

struct FailureCase {
  const char* step;
  long status;
  Outcome transport;
  const char* outcome;
};

// Polar's answers for a failed step (docs/polar-api.md §1, §2.5, §2.6, §5, §6)
// and the outcome each must be counted as. The flow ends there: no later step
// is sent, and the flow's duration is recorded under the same outcome.
TEST_F(CheckoutTest, AFailedStepEndsTheFlowWithItsOutcome) {
  const FailureCase cases[] = {
      {"create", 401, Outcome::kOk, "http_4xx"},
      {"create", 403, Outcome::kOk, "http_4xx"},
      {"create", 422, Outcome::kOk, "http_4xx"},
      {"create", 429, Outcome::kOk, "rate_limited"},
      {"create", 500, Outcome::kOk, "http_5xx"},
      {"create", 0, Outcome::kTimeout, "timeout"},
      {"create", 0, Outcome::kConnectError, "connect_error"},
      {"update", 409, Outcome::kOk, "http_4xx"},
      {"update", 410, Outcome::kOk, "http_4xx"},
      {"update", 403, Outcome::kOk, "http_4xx"},
      {"status", 410, Outcome::kOk, "http_4xx"},
      {"status", 0, Outcome::kTimeout, "timeout"},
      {"confirm", 409, Outcome::kOk, "http_4xx"},
      {"confirm", 403, Outcome::kOk, "http_4xx"},
      {"confirm", 422, Outcome::kOk, "http_4xx"},
      {"confirm", 429, Outcome::kOk, "rate_limited"},
      {"confirm", 502, Outcome::kOk, "http_5xx"},
      {"confirm", 0, Outcome::kTimeout, "timeout"},
  };
  const std::vector<std::string> order = {"create", "update", "status",
                                          "confirm"};
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.step) + " " + std::to_string(c.status) + " " +
                 c.outcome);
    prometheus::Registry registry;
    Metrics metrics(registry);
    FakeClock clock;
    FakeTimers timers(clock);
    testing::FakeTransport transport(clock, timers);
    FakePolar polar(transport, timers, clock);
    polar.fail[c.step] = {c.status, R"({"error":"X","detail":"x"})",
                          c.transport};
    ScenarioContext context{"checkout", transport, clock, metrics, 1};
    context.timers = &timers;
    CheckoutScenario scenario(std::move(context), AllSteps());
    scenario.Start(Arrival{clock.Now(), 0});
    timers.AdvanceBy(120s);
    EXPECT_EQ(scenario.in_flight(), 0u);
    EXPECT_EQ(timers.pending(), 0u);
    auto m = testing::ParseMetrics(SerializeMetrics(registry));
    EXPECT_EQ(
        testing::SumSeries(m, "polar_loadd_requests_total",
                           {std::string("step=\"") + c.step + "\"",
                            std::string("outcome=\"") + c.outcome + "\""}),
        1);
    const auto at = std::find(order.begin(), order.end(), c.step);
    for (auto later = at + 1; later != order.end(); ++later) {
      EXPECT_EQ(testing::SumSeries(m, "polar_loadd_requests_total",
                                   {"step=\"" + *later + "\""}),
                0)
          << *later << " must not be sent after a failed " << c.step;
    }
    EXPECT_EQ(
        testing::SumSeries(m, "polar_loadd_flow_duration_seconds_count",
                           {std::string("outcome=\"") + c.outcome + "\""}),
        1);
    EXPECT_EQ(testing::SumSeries(m, "polar_loadd_completion_seconds_count"), 0);
    for (const auto& [id, s] : transport.streams)
      EXPECT_FALSE(s.open) << "the flow's stream is closed with it";
  }
}

// 2xx answers that are wrong are check_failed (or invalid_response when not
// JSON), never ok.
TEST_F(CheckoutTest, WrongBodiesAreCheckFailedNotSuccess) {
  struct Case {
    const char* step;
    long status;
    const char* body;
    const char* outcome;
  };
  const Case cases[] = {
      {"create", 200, R"({"id":"a","client_secret":"s","status":"open"})",
       "check_failed"},  // create answers 201
      {"create", 201, R"({"id":"a","status":"open"})", "check_failed"},
      {"create", 201, R"({"id":"a","client_secret":"s","status":"confirmed"})",
       "check_failed"},
      {"create", 201,
       R"({"id":"a","client_secret":"s","status":"open","product_id":"other"})",
       "check_failed"},
      {"create", 201, "{not json", "invalid_response"},
      // A PATCH the server did not apply (Polar ignores unknown keys).
      {"update", 200, R"({"id":"ID","status":"open","customer_email":null})",
       "check_failed"},
      {"update", 200, R"({"id":"other","status":"open"})", "check_failed"},
      {"status", 200, R"({"id":"ID","status":"expired"})", "check_failed"},
      {"confirm", 200, R"({"id":"ID","status":"open"})", "check_failed"},
      {"confirm", 201, R"({"id":"ID","status":"confirmed"})", "check_failed"},
      {"confirm", 200, "", "invalid_response"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.step) + " " + c.body);
    prometheus::Registry registry;
    Metrics metrics(registry);
    FakeClock clock;
    FakeTimers timers(clock);
    testing::FakeTransport transport(clock, timers);
    FakePolar polar(transport, timers, clock);
    // "ID" stands for the id the fake gave the checkout.
    auto base = transport.handler;
    transport.handler = [&, base](const Request& r, Response& out) {
      base(r, out);
      if (FakePolar::StepOf(r) != c.step) return;
      out.status = c.status;
      out.body = c.body;
      const std::string id = polar.by_secret.begin()->second.id;
      for (auto p = out.body.find("\"ID\""); p != std::string::npos;
           p = out.body.find("\"ID\""))
        out.body.replace(p, 4, "\"" + id + "\"");
    };
    ScenarioContext context{"checkout", transport, clock, metrics, 1};
    context.timers = &timers;
    CheckoutScenario scenario(std::move(context), AllSteps());
    scenario.Start(Arrival{clock.Now(), 0});
    timers.AdvanceBy(120s);
    auto m = testing::ParseMetrics(SerializeMetrics(registry));
    EXPECT_EQ(
        testing::SumSeries(m, "polar_loadd_requests_total",
                           {std::string("step=\"") + c.step + "\"",
                            std::string("outcome=\"") + c.outcome + "\""}),
        1);
    EXPECT_EQ(testing::SumSeries(
                  m, "polar_loadd_requests_total",
                  {std::string("step=\"") + c.step + "\"", "outcome=\"ok\""}),
              0);
    EXPECT_EQ(scenario.in_flight(), 0u);
  }
}

TEST_F(CheckoutTest, AStreamThatFailsEndsTheFlowBeforeConfirm) {
  transport_.auto_head_status = 503;
  transport_.auto_head_type = "application/json";
  auto scenario = Make(AllSteps());
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(60s);
  EXPECT_EQ(Requests("stream", "http_5xx"), 1);
  EXPECT_EQ(Requests("confirm"), 0) << "no confirm without a live stream";
  EXPECT_EQ(Requests("status", "ok"), 1) << "the steps before it still ran";
  EXPECT_EQ(Flows("http_5xx"), 1);
  EXPECT_EQ(scenario->in_flight(), 0u);
}

TEST_F(CheckoutTest, AStreamWithTheWrongContentTypeIsCheckFailed) {
  transport_.auto_head_type = "application/json";
  auto scenario = Make(AllSteps());
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(60s);
  EXPECT_EQ(Requests("stream", "check_failed"), 1);
  EXPECT_EQ(Flows("check_failed"), 1);
}

TEST_F(CheckoutTest, AGarbledStreamFrameIsInvalidResponse) {
  auto scenario = Make(AllSteps());
  scenario->Start(Arrival{clock_.Now(), 0});
  polar_.worker_delay = 10s;
  RunFor(3200ms);  // confirmed at 3.02 s, waiting for succeeded
  auto open = transport_.OpenStreams("/stream");
  ASSERT_EQ(open.size(), 1u);
  transport_.StreamData(open[0], "data: {broken\r\n\r\n");
  EXPECT_EQ(Requests("stream", "invalid_response"), 1);
  EXPECT_EQ(Flows("invalid_response"), 1);
  EXPECT_EQ(scenario->in_flight(), 0u);
}

TEST_F(CheckoutTest, ConfirmWaitsForTheStreamToBeLive) {
  transport_.auto_head = false;
  auto o = AllSteps();
  auto scenario = Make(o);
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(10s);
  EXPECT_EQ(Requests("status", "ok"), 1);
  EXPECT_EQ(transport_.Count(Method::kPost, "/confirm"), 0u)
      << "the stream has no head yet";
  auto open = transport_.OpenStreams("/stream");
  ASSERT_EQ(open.size(), 1u);
  const MonoTime head_at = clock_.Now();
  transport_.StreamHead(open[0], 200, "text/event-stream");
  RunFor(30s);
  ASSERT_EQ(transport_.Count(Method::kPost, "/confirm"), 1u);
  EXPECT_EQ(transport_.requests.back().intended, head_at)
      << "confirm's intended start is when it could go";
  EXPECT_EQ(Completions(), 1);
}

TEST_F(CheckoutTest, InFlightCountsFlowsWaitingOnTheirThinkTime) {
  auto scenario = Make(AllSteps());
  scenario->Start(Arrival{clock_.Now(), 0});
  RunFor(500ms);  // created; thinking before update
  EXPECT_EQ(transport_.requests.size(), 1u);
  EXPECT_EQ(scenario->in_flight(), 1u);
  EXPECT_EQ(testing::SumSeries(Scrape(), "polar_loadd_in_flight"), 1);
  RunFor(30s);
  EXPECT_EQ(scenario->in_flight(), 0u);
  EXPECT_EQ(testing::SumSeries(Scrape(), "polar_loadd_in_flight"), 0);
}

TEST_F(CheckoutTest, DestroyingTheScenarioCancelsItsTimers) {
  {
    auto scenario = Make(AllSteps());
    scenario->Start(Arrival{clock_.Now(), 0});
    RunFor(500ms);
    EXPECT_GT(timers_.pending(), 0u);
  }
  EXPECT_EQ(timers_.pending(), 0u);
}

}  // namespace
}  // namespace polar
