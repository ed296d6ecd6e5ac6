// End to end for the webhook receiver: polar-sim delivers Polar's signed
// webhooks to polar-loadd's receiver over loopback, and the histograms of
// "API call -> webhook received" fill; forged, unsigned, stale, replayed and
// oversized deliveries are refused with 4xx and counted; polar-sim's retries
// are duplicates, timed once; a flood of 10,000 deliveries loses none while
// an ingest scenario keeps its schedule; a reload keeps the receiver's state;
// and registration creates (and at stop deletes) the endpoint in polar-sim.
//
// Until a checkout scenario announces expectations itself, the tests create
// checkouts through polar-sim's API and announce them through the receiver's
// test-only route (POLAR_LOADD_TEST_HOOKS=1,
// daemon/webhooks/webhook_service.h), stamping the cause with the wall time
// taken just before their own API call.
//
// Deliveries the test sends itself are signed here with OpenSSL's HMAC, not
// with the daemon's code. Rates scale by POLAR_TEST_RATE_SCALE (asan: 0.25).
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/daemons.h"
#include "tests/support/process.h"

namespace polar::webhooks_e2e {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Process;
using testing::Sim;

// At least 32 characters, as Polar requires of a custom secret.
constexpr const char* kSecret =
    "whsec_ZTJlLXRlc3Qtc2VjcmV0LXBvbGFyLWxvYWRkLXdlYmhvb2tz";

const std::vector<std::string> kCorrelated = {
    "checkout.created", "checkout.updated", "customer.created",
    "order.created",    "order.updated",    "order.paid"};

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t WallSeconds() { return WallMs() / 1000; }

std::string Sign(const std::string& secret, const std::string& id,
                 const std::string& ts, const std::string& body) {
  std::string msg = id + "." + ts + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac,
       &len);
  unsigned char b64[128];
  int n = EVP_EncodeBlock(b64, mac, static_cast<int>(len));
  return "v1," + std::string(reinterpret_cast<char*>(b64), n);
}

std::string Envelope(const std::string& type, const json& data) {
  return json{{"type", type},
              {"timestamp", "2026-08-22T10:00:00.000000Z"},
              {"data", data}}
      .dump();
}

// polar-sim (tests/support/daemons.h) that delivers to loopback URLs: the
// receiver under test.
Sim StartSim(std::vector<std::string> extra = {}) {
  extra.push_back("--allow-loopback-webhooks");
  return testing::StartSim(extra);
}

testing::HttpResult SimApi(const Sim& sim, const std::string& method,
                           const std::string& path,
                           const json& body = nullptr) {
  return testing::HttpRequest(method, sim.base_url() + path,
                              body.is_null() ? "" : body.dump(),
                              {"Authorization: Bearer " + sim.token(),
                               "Content-Type: application/json"},
                              10s);
}

// polar-loadd (tests/support/daemons.h) with its webhook receiver's URL, read
// from its log.
struct Loadd {
  testing::Loadd daemon;
  std::string webhook_url;  // http://127.0.0.1:PORT/webhooks/polar
  Process& process() { return daemon.process(); }
  std::string base() const {
    return webhook_url.substr(0,
                              webhook_url.size() - strlen("/webhooks/polar"));
  }
};

Loadd StartLoadd(const std::string& config, const std::string& token,
                 std::map<std::string, std::string> env = {}) {
  Loadd l{testing::Loadd(config, token, std::move(env)), ""};
  l.daemon.WaitListening(10s);
  auto err = l.process().WaitForStderr("/webhooks/polar", 10s);
  std::smatch m;
  std::regex webhook_re("http://127\\.0\\.0\\.1:[0-9]+/webhooks/polar");
  if (!err || !std::regex_search(*err, m, webhook_re))
    throw std::runtime_error("no webhook URL in: " + l.process().Stderr());
  l.webhook_url = m[0].str();
  return l;
}

std::string LoaddConfig(const std::string& base_url, double rate,
                        const std::string& webhooks) {
  return fmt::format(R"(
[target]
base_url = "{}"

[metrics]
listen = "127.0.0.1:0"

[scenarios.ingest]
type = "event_ingestion"
rate = "{}/s"
batch_size = 1

[webhooks]
{}
)",
                     base_url, rate, webhooks);
}

std::string StaticSecretWebhooks(const std::string& extra = "") {
  return fmt::format("listen = \"127.0.0.1:0\"\nsecret = \"{}\"\n{}", kSecret,
                     extra);
}

std::map<std::string, double> Scrape(const Loadd& l) {
  auto r = testing::HttpGet(l.daemon.MetricsUrl());
  EXPECT_EQ(r.status, 200) << r.error;
  return testing::ParseMetrics(r.body);
}

double Deliveries(const std::map<std::string, double>& m,
                  const std::string& verdict, const std::string& type = "") {
  std::vector<std::string> labels = {"verdict=\"" + verdict + "\""};
  if (!type.empty()) labels.push_back("type=\"" + type + "\"");
  return testing::SumSeries(m, "polar_loadd_webhook_deliveries_total", labels);
}

double Timed(const std::map<std::string, double>& m,
             const std::string& type = "") {
  std::vector<std::string> labels;
  if (!type.empty()) labels.push_back("type=\"" + type + "\"");
  return testing::SumSeries(m, "polar_loadd_webhook_latency_seconds_count",
                            labels);
}

// Polls the metrics until `done` holds or `timeout` passes; returns the last
// scrape.
std::map<std::string, double> WaitFor(
    const Loadd& l,
    const std::function<bool(const std::map<std::string, double>&)>& done,
    std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto m = Scrape(l);
  while (!done(m) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    m = Scrape(l);
  }
  return m;
}

struct Expectation {
  std::string type, key;
  int64_t caused_at_unix_ms;
};

// In chunks of 500: the test route shares the receiver's body size limit.
void Announce(const Loadd& l, const std::vector<Expectation>& list) {
  for (std::size_t start = 0; start < list.size(); start += 500) {
    json body = {{"expectations", json::array()}};
    const std::size_t end = std::min(list.size(), start + 500);
    for (std::size_t i = start; i < end; ++i)
      body["expectations"].push_back(
          {{"type", list[i].type},
           {"key", list[i].key},
           {"caused_at_unix_ms", list[i].caused_at_unix_ms}});
    auto r = testing::HttpRequest("POST", l.base() + "/_test/webhooks/expect",
                                  body.dump(),
                                  {"Content-Type: application/json"}, 30s);
    ASSERT_EQ(r.status, 200) << r.error << r.body;
    ASSERT_EQ(json::parse(r.body)["accepted"], end - start);
  }
}

// An endpoint in polar-sim that delivers `events` to the receiver, signed
// with kSecret (Polar's deprecated but accepted `secret` field).
std::string CreateEndpoint(const Sim& sim, const std::string& url,
                           const std::vector<std::string>& events) {
  auto r = SimApi(sim, "POST", "/v1/webhooks/endpoints",
                  {{"url", url},
                   {"format", "raw"},
                   {"events", events},
                   {"secret", kSecret}});
  EXPECT_EQ(r.status, 201) << r.body;
  return json::parse(r.body)["id"];
}

struct Checkout {
  std::string id, client_secret, email;
};

Checkout CreateCheckout(const Sim& sim, const std::string& email) {
  auto r =
      SimApi(sim, "POST", "/v1/checkouts/",
             {{"products", {sim.free_product()}}, {"customer_email", email}});
  EXPECT_EQ(r.status, 201) << r.body;
  json c = json::parse(r.body);
  return {c["id"], c["client_secret"], email};
}

testing::HttpResult PostDelivery(const std::string& url, const std::string& id,
                                 const std::string& ts, const std::string& body,
                                 const std::string& signature) {
  std::vector<std::string> headers = {"Content-Type: application/json",
                                      "webhook-id: " + id,
                                      "webhook-timestamp: " + ts};
  if (!signature.empty()) headers.push_back("webhook-signature: " + signature);
  return testing::HttpRequest("POST", url, body, headers);
}

std::string RandomSuffix() {
  std::random_device rd;
  return std::to_string(rd());
}

TEST(Webhooks, PolarSimDeliveriesAreVerifiedMatchedAndFillTheHistograms) {
  // Time scale 0.01: polar-sim's per-endpoint FIFO guard (300 ms per older
  // unattempted event) would otherwise space 40 deliveries out over seconds.
  Sim sim = StartSim({"--time-scale", "0.01"});
  Loadd loadd =
      StartLoadd(LoaddConfig(sim.base_url(), 1, StaticSecretWebhooks()),
                 sim.token(), {{"POLAR_LOADD_TEST_HOOKS", "1"}});
  std::vector<std::string> events = kCorrelated;
  events.push_back("checkout.expired");
  CreateEndpoint(sim, loadd.webhook_url, events);

  constexpr int kFlows = 5;
  const std::string run = RandomSuffix();
  for (int i = 0; i < kFlows; ++i) {
    const std::string email = fmt::format("Webhook.E2E.{}.{}@Polar.sh", run, i);
    int64_t created_at = WallMs();
    Checkout c = CreateCheckout(sim, email);
    Announce(loadd, {{"checkout.created", c.id, created_at}});
    int64_t confirmed_at = WallMs();
    auto r = testing::HttpRequest(
        "POST",
        sim.base_url() + "/v1/checkouts/client/" + c.client_secret + "/confirm",
        "{}", {"Content-Type: application/json"});
    ASSERT_EQ(r.status, 200) << r.body;
    std::vector<Expectation> after_confirm;
    for (const char* type :
         {"order.created", "order.updated", "order.paid", "checkout.updated"})
      after_confirm.push_back({type, c.id, confirmed_at});
    // The receiver lower-cases emails: keys are case-insensitive.
    after_confirm.push_back({"customer.created", email, confirmed_at});
    Announce(loadd, after_confirm);
  }

  auto m = WaitFor(
      loadd, [&](const auto& m) { return Deliveries(m, "ok") >= 6 * kFlows; },
      20s);
  for (const std::string& type : kCorrelated) {
    EXPECT_EQ(Deliveries(m, "ok", type), kFlows) << type;
    EXPECT_EQ(Timed(m, type), kFlows) << type;
    EXPECT_GT(testing::SumSeries(m, "polar_loadd_webhook_latency_seconds_sum",
                                 {"type=\"" + type + "\""}),
              0)
        << type;
    // On loopback with an idle worker, well under Polar's 10 s timeout.
    EXPECT_EQ(
        testing::SumSeries(m, "polar_loadd_webhook_latency_seconds_bucket",
                           {"type=\"" + type + "\"", "le=\"10\""}),
        kFlows)
        << type;
  }
  // checkout.updated "confirmed" is ours but not timed.
  EXPECT_EQ(Deliveries(m, "ignored", "checkout.updated"), kFlows);
  for (const char* verdict :
       {"bad_signature", "stale", "replayed", "duplicate", "malformed", "lost"})
    EXPECT_EQ(Deliveries(m, verdict), 0) << verdict;
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_webhook_expectations"), 0);

  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
  EXPECT_EQ(loadd.process().Stderr().find(kSecret), std::string::npos);
}

TEST(Webhooks, ForgedUnsignedStaleReplayedAndOversizedDeliveriesAreRefused) {
  // No API traffic needed: the target is a closed port and the scenario
  // nearly idle.
  Loadd loadd =
      StartLoadd(LoaddConfig("http://127.0.0.1:9", 0.001,
                             StaticSecretWebhooks("max_body_bytes = 4096\n")),
                 "polar_oat_unusedunusedunusedunusedunusedunused0000");
  const std::string url = loadd.webhook_url;
  const std::string body =
      Envelope("checkout.created", {{"id", "c-" + RandomSuffix()}});
  const std::string now = std::to_string(WallSeconds());

  // A genuine delivery, then the same bytes again: a replay.
  const std::string sig = Sign(kSecret, "msg-genuine", now, body);
  EXPECT_EQ(PostDelivery(url, "msg-genuine", now, body, sig).status, 200);
  auto replay = PostDelivery(url, "msg-genuine", now, body, sig);
  EXPECT_EQ(replay.status, 409) << replay.body;
  // Forged: signed with another secret. Unsigned: no signature at all.
  EXPECT_EQ(PostDelivery(url, "msg-forged", now, body,
                         Sign("whsec_notthereceiverssecretnotthereceivers",
                              "msg-forged", now, body))
                .status,
            401);
  EXPECT_EQ(PostDelivery(url, "msg-unsigned", now, body, "").status, 401);
  // Stale: correctly signed, ten minutes old.
  const std::string old = std::to_string(WallSeconds() - 600);
  EXPECT_EQ(PostDelivery(url, "msg-stale", old, body,
                         Sign(kSecret, "msg-stale", old, body))
                .status,
            401);
  // Oversized and malformed bodies.
  const std::string big = Envelope(
      "checkout.created", {{"id", "c-big"}, {"pad", std::string(8192, 'x')}});
  EXPECT_EQ(
      PostDelivery(url, "msg-big", now, big, Sign(kSecret, "msg-big", now, big))
          .status,
      413);
  EXPECT_EQ(PostDelivery(url, "msg-junk", now, "not json",
                         Sign(kSecret, "msg-junk", now, "not json"))
                .status,
            400);
  EXPECT_EQ(PostDelivery(url, "", now, body, sig).status, 400);
  EXPECT_EQ(testing::HttpGet(url).status, 405);

  auto m = Scrape(loadd);
  EXPECT_EQ(Deliveries(m, "replayed", "checkout.created"), 1);
  // Refused before the signature holds: the body is never parsed, so the
  // type is "other".
  EXPECT_EQ(Deliveries(m, "bad_signature", "other"), 2);
  EXPECT_EQ(Deliveries(m, "stale", "other"), 1);
  EXPECT_EQ(Deliveries(m, "malformed"), 3);
  EXPECT_EQ(Deliveries(m, "ok"), 0);
  EXPECT_EQ(Timed(m), 0);

  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
  const std::string err = loadd.process().Stderr();
  EXPECT_NE(err.find("webhook rejected (bad_signature"), std::string::npos)
      << err;
  EXPECT_NE(err.find("webhook rejected (stale"), std::string::npos) << err;
  EXPECT_EQ(err.find(kSecret), std::string::npos);
  EXPECT_EQ(err.find(std::string(kSecret).substr(6)), std::string::npos);
}

// The test-only route (POST /_test/webhooks/expect) and the fail-first hook
// exist only with POLAR_LOADD_TEST_HOOKS=1, exactly: unset, "0", "true" or
// " 1" leave the receiver as production runs it. The route is then an
// unknown path (404) that announces nothing, the variable that would answer
// deliveries 503 does nothing, and nothing in the log says hooks are on.
TEST(Webhooks, TheTestHookRouteIsRefusedUnlessTheTestVariableIsExactlyOne) {
  const std::vector<std::optional<std::string>> values = {std::nullopt, "0",
                                                          "true", " 1"};
  std::vector<Loadd> daemons;
  for (const auto& value : values) {
    std::map<std::string, std::string> env = {
        {"POLAR_LOADD_TEST_WEBHOOK_FAIL_FIRST", "5"}};
    if (value) env["POLAR_LOADD_TEST_HOOKS"] = *value;
    daemons.push_back(StartLoadd(
        LoaddConfig("http://127.0.0.1:9", 0.001, StaticSecretWebhooks()),
        "polar_oat_unusedunusedunusedunusedunusedunused0000", env));
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    SCOPED_TRACE(values[i] ? "POLAR_LOADD_TEST_HOOKS=\"" + *values[i] + "\""
                           : std::string("POLAR_LOADD_TEST_HOOKS unset"));
    Loadd& loadd = daemons[i];
    const json announce = {{"expectations",
                            {{{"type", "checkout.created"},
                              {"key", "c-hook"},
                              {"caused_at_unix_ms", WallMs()}}}}};
    auto r = testing::HttpRequest(
        "POST", loadd.base() + "/_test/webhooks/expect", announce.dump(),
        {"Content-Type: application/json"});
    EXPECT_EQ(r.status, 404) << r.body;
    // A genuine delivery for that key: answered 200 (no 503 hook), and not
    // matched to anything (nothing was announced).
    const std::string body = Envelope("checkout.created", {{"id", "c-hook"}});
    const std::string ts = std::to_string(WallSeconds());
    EXPECT_EQ(PostDelivery(loadd.webhook_url, "msg-hook", ts, body,
                           Sign(kSecret, "msg-hook", ts, body))
                  .status,
              200);
    auto m = Scrape(loadd);
    EXPECT_EQ(testing::SumSeries(m, "polar_loadd_webhook_expectations"), 0);
    EXPECT_EQ(Deliveries(m, "ok"), 0);
    EXPECT_EQ(Timed(m), 0);
    EXPECT_EQ(loadd.process().Stderr().find("test hooks enabled"),
              std::string::npos)
        << loadd.process().Stderr();
  }
  // The same route with the variable set is there (the control that shows
  // the 404s above are the variable's doing, not a wrong path).
  Loadd on = StartLoadd(
      LoaddConfig("http://127.0.0.1:9", 0.001, StaticSecretWebhooks()),
      "polar_oat_unusedunusedunusedunusedunusedunused0000",
      {{"POLAR_LOADD_TEST_HOOKS", "1"}});
  Announce(on, {{"checkout.created", "c-hook", WallMs()}});
  EXPECT_EQ(testing::SumSeries(Scrape(on), "polar_loadd_webhook_expectations"),
            1);
  EXPECT_NE(on.process().Stderr().find("test hooks enabled"),
            std::string::npos);
  for (Loadd* l : {&on, &daemons[0], &daemons[1], &daemons[2], &daemons[3]}) {
    l->process().Signal(SIGTERM);
    EXPECT_EQ(l->process().Wait(15s), 0);
  }
}

TEST(Webhooks, PolarSimRetriesAreCountedAsDuplicatesAndTimedOnce) {
  // Time scale 0.5: polar-sim's first retry comes 1-2 s after the failed
  // attempt (Polar: 2-4 s), so its webhook-timestamp is a new second and the
  // retry is told from a replay.
  Sim sim = StartSim({"--time-scale", "0.5"});
  constexpr int kCheckouts = 3;
  Loadd loadd = StartLoadd(
      LoaddConfig(sim.base_url(), 1, StaticSecretWebhooks()), sim.token(),
      {{"POLAR_LOADD_TEST_HOOKS", "1"},
       {"POLAR_LOADD_TEST_WEBHOOK_FAIL_FIRST", std::to_string(kCheckouts)}});
  std::string endpoint =
      CreateEndpoint(sim, loadd.webhook_url, {"checkout.created"});
  for (int i = 0; i < kCheckouts; ++i) {
    int64_t t = WallMs();
    Checkout c = CreateCheckout(sim, fmt::format("retry-{}@polar.sh", i));
    Announce(loadd, {{"checkout.created", c.id, t}});
  }
  auto m = WaitFor(
      loadd,
      [](const auto& m) { return Deliveries(m, "duplicate") >= kCheckouts; },
      20s);
  EXPECT_EQ(Deliveries(m, "duplicate", "checkout.created"), kCheckouts);
  EXPECT_EQ(Deliveries(m, "ok", "checkout.created"), kCheckouts);
  EXPECT_EQ(Timed(m, "checkout.created"), kCheckouts);
  EXPECT_EQ(Deliveries(m, "replayed"), 0);
  // The latency is the first attempt's: under a second, not the retry's 1-2 s
  // on top.
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_webhook_latency_seconds_bucket",
                               {"le=\"1\"", "type=\"checkout.created\""}),
            kCheckouts);

  // polar-sim saw each first attempt fail (our 503) and its retry succeed.
  auto r =
      SimApi(sim, "GET",
             "/v1/webhooks/deliveries?endpoint_id=" + endpoint + "&limit=100");
  ASSERT_EQ(r.status, 200) << r.body;
  int failed = 0, succeeded = 0;
  const json deliveries = json::parse(r.body);
  for (const auto& d : deliveries["items"]) {
    (d["succeeded"].get<bool>() ? succeeded : failed)++;
    if (!d["succeeded"].get<bool>()) {
      EXPECT_EQ(d["http_code"], 503);
    }
  }
  EXPECT_EQ(failed, kCheckouts);
  EXPECT_EQ(succeeded, kCheckouts);

  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
}

// Histogram bucket counts of polar_loadd_schedule_lag_seconds for the ingest
// scenario: {le -> cumulative count}.
std::map<double, double> LagBuckets(const std::map<std::string, double>& m) {
  std::map<double, double> out;
  std::regex re(R"(le="([^"]+)\")");
  for (const auto& [series, value] : m) {
    if (series.rfind("polar_loadd_schedule_lag_seconds_bucket{", 0) != 0)
      continue;
    std::smatch match;
    if (!std::regex_search(series, match, re)) continue;
    std::string le = match[1];
    out[le == "+Inf" ? 1e9 : std::stod(le)] = value;
  }
  return out;
}

TEST(Webhooks, AFloodOf10000DeliveriesLosesNoneAndTheScheduleStaysOnTime) {
  Sim sim = StartSim();
  const double rate = 200 * testing::RateScale();
  Loadd loadd =
      StartLoadd(LoaddConfig(sim.base_url(), rate, StaticSecretWebhooks()),
                 sim.token(), {{"POLAR_LOADD_TEST_HOOKS", "1"}});
  constexpr int kDeliveries = 10'000;
  constexpr int kSenders = 4;
  const std::string run = RandomSuffix();
  std::vector<Expectation> expected;
  const int64_t now_ms = WallMs();
  for (int i = 0; i < kDeliveries; ++i)
    expected.push_back(
        {"checkout.created", fmt::format("flood-{}-{}", run, i), now_ms});
  Announce(loadd, expected);
  std::this_thread::sleep_for(1s);  // the ingest schedule settles
  auto before = Scrape(loadd);

  // Keep-alive senders, as Polar's worker threads are; each delivery signed.
  // Paced at 2,000/s in all (asan: scaled), far above what Polar sends one
  // load box (its production worker has 16 webhook threads for every
  // merchant together), and long enough (5 s) for the ingest schedule to
  // show whether the loop kept time.
  const double pace = 2000 * testing::RateScale();
  const auto gap = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(kSenders / pace));
  std::atomic<int> ok{0}, other{0};
  const auto start = std::chrono::steady_clock::now();
  auto sender = [&](int first) {
    CURL* curl = curl_easy_init();
    for (int i = first; i < kDeliveries; i += kSenders) {
      std::this_thread::sleep_until(start + gap * (i / kSenders));
      const std::string id = fmt::format("flood-msg-{}-{}", run, i);
      const std::string ts = std::to_string(WallSeconds());
      const std::string body = Envelope(
          "checkout.created",
          {{"id", fmt::format("flood-{}-{}", run, i)}, {"status", "open"}});
      curl_slist* headers = nullptr;
      for (const std::string& h :
           {std::string("Content-Type: application/json"), "webhook-id: " + id,
            "webhook-timestamp: " + ts,
            "webhook-signature: " + Sign(kSecret, id, ts, body)})
        headers = curl_slist_append(headers, h.c_str());
      curl_easy_setopt(curl, CURLOPT_URL, loadd.webhook_url.c_str());
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE,
                       static_cast<long>(body.size()));
      curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10'000L);
      curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(
          curl, CURLOPT_WRITEFUNCTION,
          +[](char*, size_t size, size_t n, void*) { return size * n; });
      long status = 0;
      if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      (status == 200 ? ok : other)++;
      curl_slist_free_all(headers);
    }
    curl_easy_cleanup(curl);
  };
  std::vector<std::thread> threads;
  for (int s = 0; s < kSenders; ++s) threads.emplace_back(sender, s);
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  auto after = Scrape(loadd);
  std::printf("flood: %d deliveries in %.2f s (%.0f/s) by %d senders\n",
              kDeliveries, seconds, kDeliveries / seconds, kSenders);

  EXPECT_EQ(ok.load(), kDeliveries);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(Deliveries(after, "ok", "checkout.created"), kDeliveries);
  EXPECT_EQ(Timed(after, "checkout.created"), kDeliveries);
  for (const char* verdict : {"duplicate", "unmatched", "lost", "replayed",
                              "bad_signature", "stale", "malformed"})
    EXPECT_EQ(Deliveries(after, verdict), 0) << verdict;
  EXPECT_EQ(testing::SumSeries(after, "polar_loadd_webhook_expectations"), 0);

  // The ingest schedule kept time meanwhile: every arrival started, and at
  // least 99% within 50 ms of their intended time (the load-box saturation
  // rule's line: polar_loadd:loop_lag_over_50ms). A receiver that did its
  // work off the loop's budget (a blocking call, a slow parse) would push
  // the arrivals behind it hundreds of ms late.
  auto b0 = LagBuckets(before), b1 = LagBuckets(after);
  const double arrivals = b1[1e9] - b0[1e9];
  const double within_50ms = b1[0.05] - b0[0.05];
  const double within_5ms = b1[0.005] - b0[0.005];
  std::printf(
      "ingest during the flood: %.0f arrivals, %.2f%% within 5 ms, %.2f%% "
      "within 50 ms\n",
      arrivals, 100 * within_5ms / std::max(arrivals, 1.0),
      100 * within_50ms / std::max(arrivals, 1.0));
  EXPECT_GE(arrivals, rate * seconds * 0.9);
  EXPECT_GE(within_50ms, arrivals * 0.99);
  EXPECT_EQ(testing::SumSeries(after, "polar_loadd_arrivals_dropped_total"), 0);

  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
}

TEST(Webhooks, AReloadKeepsTheReceiversStateAndRotatesItsSecret) {
  Loadd loadd = StartLoadd(
      LoaddConfig("http://127.0.0.1:9", 0.001, StaticSecretWebhooks()),
      "polar_oat_unusedunusedunusedunusedunusedunused0000",
      {{"POLAR_LOADD_TEST_HOOKS", "1"}});
  const std::string url = loadd.webhook_url;
  const int64_t t = WallMs();
  Announce(loadd, {{"order.paid", "c-1", t}, {"order.paid", "c-2", t}});
  const std::string b1 =
      Envelope("order.paid", {{"id", "o-1"}, {"checkout_id", "c-1"}});
  const std::string ts1 = std::to_string(WallSeconds());
  const std::string sig1 = Sign(kSecret, "m-1", ts1, b1);
  ASSERT_EQ(PostDelivery(url, "m-1", ts1, b1, sig1).status, 200);

  auto reload = [&](const std::string& webhooks, int n) {
    testing::WriteFile(loadd.daemon.dir() + "/polar-loadd.toml",
                       LoaddConfig("http://127.0.0.1:9", 0.001, webhooks));
    loadd.process().Signal(SIGHUP);
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string err = loadd.process().Stderr();
      int seen = 0;
      for (auto p = err.find("reloaded "); p != std::string::npos;
           p = err.find("reloaded ", p + 1))
        ++seen;
      if (seen >= n) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "reload " << n << " not seen: " << loadd.process().Stderr();
  };

  // Same listener and secret, new limits.
  reload(StaticSecretWebhooks("tolerance = \"1m\"\ndeadline = \"30m\"\n"), 1);
  // The expectation announced before the reload is still there...
  const std::string b2 =
      Envelope("order.paid", {{"id", "o-2"}, {"checkout_id", "c-2"}});
  const std::string ts2 = std::to_string(WallSeconds());
  EXPECT_EQ(
      PostDelivery(url, "m-2", ts2, b2, Sign(kSecret, "m-2", ts2, b2)).status,
      200);
  // ... and so are the ids seen before it: an exact copy is a replay, a
  // re-signed retry a duplicate.
  EXPECT_EQ(PostDelivery(url, "m-1", ts1, b1, sig1).status, 409);
  std::this_thread::sleep_for(1100ms);  // a new second for the retry
  const std::string ts3 = std::to_string(WallSeconds());
  EXPECT_EQ(
      PostDelivery(url, "m-1", ts3, b1, Sign(kSecret, "m-1", ts3, b1)).status,
      200);

  // A rotated secret applies at once.
  const std::string next =
      "whsec_cm90YXRlZC1zZWNyZXQtZm9yLXRoZS1yZWxvYWQtdGVzdA";
  reload(fmt::format("listen = \"127.0.0.1:0\"\nsecret = \"{}\"\n", next), 2);
  const std::string b4 =
      Envelope("order.paid", {{"id", "o-4"}, {"checkout_id", "c-4"}});
  const std::string ts4 = std::to_string(WallSeconds());
  EXPECT_EQ(
      PostDelivery(url, "m-4", ts4, b4, Sign(kSecret, "m-4", ts4, b4)).status,
      401);
  EXPECT_EQ(
      PostDelivery(url, "m-5", ts4, b4, Sign(next, "m-5", ts4, b4)).status,
      200);

  auto m = Scrape(loadd);
  EXPECT_EQ(Deliveries(m, "ok", "order.paid"), 2);
  EXPECT_EQ(Timed(m, "order.paid"), 2);
  EXPECT_EQ(Deliveries(m, "duplicate", "order.paid"), 1);
  EXPECT_EQ(Deliveries(m, "replayed", "order.paid"), 1);
  EXPECT_EQ(Deliveries(m, "bad_signature", "other"), 1);  // never parsed
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
  EXPECT_EQ(loadd.process().Stderr().find(next), std::string::npos);
}

json EndpointsWithUrl(const Sim& sim, const std::string& url) {
  auto r = SimApi(sim, "GET", "/v1/webhooks/endpoints?limit=100");
  EXPECT_EQ(r.status, 200) << r.body;
  json out = json::array();
  const json list = json::parse(r.body);
  for (const auto& e : list["items"])
    if (e["url"] == url) out.push_back(e);
  return out;
}

TEST(Webhooks, RegistrationCreatesTheEndpointUsesItsSecretAndDeletesItAtStop) {
  Sim sim = StartSim();
  const int port = testing::FreeLoopbackPort();
  const std::string url =
      fmt::format("http://127.0.0.1:{}/webhooks/polar", port);
  // An endpoint left behind by an earlier run that crashed.
  std::string stale = CreateEndpoint(sim, url, {"checkout.created"});

  Loadd loadd = StartLoadd(
      LoaddConfig(sim.base_url(), 1,
                  fmt::format("listen = \"127.0.0.1:{}\"\nregister_url = "
                              "\"{}\"\nregister_allow_loopback = true\n",
                              port, url)),
      sim.token(), {{"POLAR_LOADD_TEST_HOOKS", "1"}});
  ASSERT_TRUE(loadd.process().WaitForStderr("registered in Polar", 10s))
      << loadd.process().Stderr();
  json mine = EndpointsWithUrl(sim, url);
  ASSERT_EQ(mine.size(), 1u) << mine.dump() << loadd.process().Stderr();
  EXPECT_NE(mine[0]["id"], stale);
  EXPECT_EQ(mine[0]["format"], "raw");
  std::set<std::string> events(mine[0]["events"].begin(),
                               mine[0]["events"].end());
  EXPECT_EQ(events,
            std::set<std::string>(kCorrelated.begin(), kCorrelated.end()));
  const std::string secret = mine[0]["secret"];

  int64_t t = WallMs();
  Checkout c = CreateCheckout(sim, "registration@polar.sh");
  Announce(loadd, {{"checkout.created", c.id, t}});
  auto m = WaitFor(
      loadd, [](const auto& m) { return Deliveries(m, "ok") >= 1; }, 10s);
  EXPECT_EQ(Deliveries(m, "ok", "checkout.created"), 1);
  EXPECT_EQ(Deliveries(m, "bad_signature"), 0);
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_webhook_endpoint_registered"),
            1);

  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
  EXPECT_EQ(EndpointsWithUrl(sim, url).size(), 0u);
  const std::string err = loadd.process().Stderr();
  EXPECT_NE(err.find("deleted"), std::string::npos) << err;
  EXPECT_EQ(err.find(secret), std::string::npos);
  EXPECT_EQ(err.find(secret.substr(6)), std::string::npos);
}

// Every page of the organization's endpoints, not only the first 100.
json AllEndpointsWithUrl(const Sim& sim, const std::string& url) {
  json out = json::array();
  for (int page = 1; page < 100; ++page) {
    auto r =
        SimApi(sim, "GET",
               fmt::format("/v1/webhooks/endpoints?limit=100&page={}", page));
    EXPECT_EQ(r.status, 200) << r.body;
    const json list = json::parse(r.body);
    for (const auto& e : list["items"])
      if (e["url"] == url) out.push_back(e);
    if (page >= list["pagination"]["max_page"].get<int>()) break;
  }
  return out;
}

TEST(Webhooks, AStaleEndpointPastTheFirstPageIsDeletedToo) {
  // 150 endpoints of other services first: the stale one is on page 2 of
  // Polar's 100-a-page listing.
  Sim sim = StartSim({"--max-webhook-endpoints", "300"});
  for (int i = 0; i < 150; ++i)
    CreateEndpoint(sim, fmt::format("https://hooks.polar.sh/other/{}", i),
                   {"order.paid"});
  const int port = testing::FreeLoopbackPort();
  const std::string url =
      fmt::format("http://127.0.0.1:{}/webhooks/polar", port);
  const std::string stale = CreateEndpoint(sim, url, {"checkout.created"});
  Loadd loadd = StartLoadd(
      LoaddConfig(sim.base_url(), 1,
                  fmt::format("listen = \"127.0.0.1:{}\"\nregister_url = "
                              "\"{}\"\nregister_allow_loopback = true\n",
                              port, url)),
      sim.token());
  ASSERT_TRUE(loadd.process().WaitForStderr("registered in Polar", 10s))
      << loadd.process().Stderr();
  json mine = AllEndpointsWithUrl(sim, url);
  ASSERT_EQ(mine.size(), 1u) << mine.dump();
  EXPECT_NE(mine[0]["id"], stale);
  EXPECT_NE(loadd.process().Stderr().find("deleting webhook endpoint " + stale),
            std::string::npos)
      << loadd.process().Stderr();
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
  EXPECT_EQ(AllEndpointsWithUrl(sim, url).size(), 0u);
}

TEST(Webhooks, ARegistrationPolarRefusesCountsNothingAsLost) {
  // Without --allow-loopback-webhooks polar-sim refuses an http://127.0.0.1
  // URL (422), as Polar refuses every non-public one: the receiver never gets
  // a key, so no delivery can be verified and an expected webhook that does
  // not come says nothing about Polar. It must not turn "lost" (and page
  // PolarLoaddWebhookLoss) after the deadline.
  Sim sim = testing::StartSim();
  const int port = testing::FreeLoopbackPort();
  const std::string url =
      fmt::format("http://127.0.0.1:{}/webhooks/polar", port);
  Loadd loadd = StartLoadd(
      LoaddConfig(sim.base_url(), 1,
                  fmt::format("listen = \"127.0.0.1:{}\"\nregister_url = "
                              "\"{}\"\nregister_allow_loopback = true\n"
                              "deadline = \"1s\"\n",
                              port, url)),
      sim.token(), {{"POLAR_LOADD_TEST_HOOKS", "1"}});
  ASSERT_TRUE(
      loadd.process().WaitForStderr("registering the webhook endpoint", 10s))
      << loadd.process().Stderr();
  EXPECT_EQ(EndpointsWithUrl(sim, url).size(), 0u);
  Announce(loadd, {{"checkout.created", "c-never", WallMs()},
                   {"order.paid", "c-never", WallMs()}});
  // Twice the deadline plus the receiver's 1 s verdict tick.
  std::this_thread::sleep_for(3s);
  auto m = Scrape(loadd);
  EXPECT_EQ(Deliveries(m, "lost"), 0);
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_webhook_expectations"), 0);
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_webhook_endpoint_registered"),
            0);
  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
}

TEST(Webhooks, TheShippedExampleConfigTimesItsOwnCheckoutsWebhooksInPolarSim) {
  Sim sim = StartSim();
  const int port = testing::FreeLoopbackPort();
  const std::string url =
      fmt::format("http://127.0.0.1:{}/webhooks/polar", port);
  // As the demo runs it: the Locust-era variables point it at polar-sim.
  Loadd loadd = StartLoadd(testing::ShippedConfig(port), sim.token(),
                           {{"LOAD_TEST_HOST", sim.base_url()}});
  EXPECT_EQ(loadd.webhook_url, url);
  ASSERT_TRUE(loadd.process().WaitForStderr("registered in Polar", 10s))
      << loadd.process().Stderr();
  ASSERT_EQ(EndpointsWithUrl(sim, url).size(), 1u);

  // Its checkout scenario (1/s) announces what it creates; polar-sim signs
  // with the secret it returned at registration.
  auto m = WaitFor(
      loadd,
      [](const auto& m) {
        return Deliveries(m, "ok", "checkout.created") >= 2;
      },
      10s);
  EXPECT_GE(Deliveries(m, "ok", "checkout.created"), 2);
  EXPECT_EQ(Timed(m, "checkout.created"),
            Deliveries(m, "ok", "checkout.created"));
  EXPECT_EQ(Deliveries(m, "bad_signature"), 0);
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_webhook_endpoint_registered"),
            1);

  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
  EXPECT_EQ(EndpointsWithUrl(sim, url).size(), 0u);
}

// The q-quantile of polar_loadd_webhook_latency_seconds{type} from its
// buckets, interpolated linearly inside the bucket as histogram_quantile does.
double LatencyQuantile(const std::map<std::string, double>& m,
                       const std::string& type, double q) {
  std::map<double, double> buckets;  // le -> cumulative count
  std::regex re(R"(le="([^"]+)\")");
  const std::string prefix = "polar_loadd_webhook_latency_seconds_bucket{";
  for (const auto& [series, value] : m) {
    if (series.rfind(prefix, 0) != 0 ||
        series.find("type=\"" + type + "\"") == std::string::npos)
      continue;
    std::smatch match;
    if (!std::regex_search(series, match, re)) continue;
    const std::string le = match[1];
    buckets[le == "+Inf" ? 1e9 : std::stod(le)] = value;
  }
  if (buckets.empty() || buckets.rbegin()->second == 0) return NAN;
  const double rank = q * buckets.rbegin()->second;
  double lower = 0, below = 0;
  for (const auto& [le, count] : buckets) {
    if (count >= rank)
      return count == below
                 ? le
                 : lower + (le - lower) * (rank - below) / (count - below);
    lower = le;
    below = count;
  }
  return NAN;
}

TEST(Webhooks,
     TheCheckoutFunnelAgainstPolarSimTimesItsWebhooksAndRefusesAForgery) {
  // polar-loadd's own checkout scenario, every flow confirmed, against
  // polar-sim; the receiver registers its loopback URL there. The load waits
  // 2 s (0/s) so that the registration is done before the first checkout: a
  // checkout created while it is in flight could be delivered before its call
  // was announced. Then 3 s of flows, then 0/s.
  // Time scale 0.01: polar-sim's per-endpoint FIFO guard (300 ms per older
  // unattempted event) would otherwise queue the ~9 webhooks of each flow
  // (36/s at 4 flows/s) behind each other for seconds; at 1x this run
  // measured p50 4-6 s, p99 10-15 s, and 45 of them lost past a 10 s deadline.
  Sim sim = StartSim({"--time-scale", "0.01"});
  const int port = testing::FreeLoopbackPort();
  const double rate = 4 * testing::RateScale();
  Loadd loadd =
      StartLoadd(fmt::format(R"(
[target]
base_url = "{0}"

[metrics]
listen = "127.0.0.1:0"

[scenarios.checkout]
type = "checkout"
product_id = "{1}"
think_time = "50ms"
funnel = {{ update = 1.0, status = 1.0, confirm = 1.0 }}
completion_deadline = "10s"

[scenarios.checkout.schedule]
type = "steps"
steps = [{{ rate = "0/s", for = "2s" }}, {{ rate = "{2:.3f}/s", for = "3s" }},
         {{ rate = "0/s", for = "24h" }}]

[webhooks]
listen = "127.0.0.1:{3}"
register_url = "http://127.0.0.1:{3}/webhooks/polar"
register_allow_loopback = true
# Short, so that the test sees every verdict: a webhook not here 10 s after
# its call is lost; a delivery nobody announced is unmatched after 1 s.
deadline = "10s"
unmatched_after = "1s"
)",
                             sim.base_url(), sim.free_product(), rate, port),
                 sim.token());
  ASSERT_TRUE(loadd.process().WaitForStderr("registered in Polar", 10s))
      << loadd.process().Stderr();

  // Every flow finished, then every expected webhook judged (matched or lost),
  // then unmatched_after and the 1 s verdict tick for deliveries held.
  const std::string s = "scenario=\"checkout\"";
  auto m = WaitFor(
      loadd,
      [&](const auto& m) {
        return testing::SumSeries(m, "polar_loadd_arrivals_total", {s}) > 0 &&
               testing::SumSeries(m, "polar_loadd_target_rate", {s}) == 0 &&
               testing::SumSeries(m, "polar_loadd_in_flight", {s}) == 0 &&
               testing::SumSeries(m, "polar_loadd_webhook_expectations") == 0;
      },
      30s);
  std::this_thread::sleep_for(2500ms);
  m = Scrape(loadd);
  auto requests = [&](const std::string& step) {
    return testing::SumSeries(m, "polar_loadd_requests_total",
                              {s, "step=\"" + step + "\"", "outcome=\"ok\""});
  };
  const double created = requests("create"), confirmed = requests("confirm");
  EXPECT_GE(created, std::floor(rate * 3 * 0.9));
  EXPECT_EQ(confirmed, created);
  EXPECT_EQ(testing::SumSeries(m, "polar_loadd_requests_total", {s}),
            testing::SumSeries(m, "polar_loadd_requests_total",
                               {s, "outcome=\"ok\""}));

  // Each call's webhook matched and timed once; checkout.updated only for
  // "succeeded" (its "open" and "confirmed" updates are ignored).
  const std::map<std::string, double> expected = {
      {"checkout.created", created},
      {"checkout.updated", confirmed},
      {"order.created", confirmed},
      {"order.updated", confirmed},
      {"order.paid", confirmed}};
  for (const auto& [type, n] : expected) {
    EXPECT_EQ(Deliveries(m, "ok", type), n) << type;
    EXPECT_EQ(Timed(m, type), n) << type;
  }
  // A customer per new e-mail address of the run's pool.
  EXPECT_GE(Deliveries(m, "ok", "customer.created"), 1);
  EXPECT_LE(Deliveries(m, "ok", "customer.created"), confirmed);
  for (const char* verdict : {"unmatched", "lost", "bad_signature", "stale",
                              "replayed", "duplicate", "malformed"})
    EXPECT_EQ(Deliveries(m, verdict), 0) << verdict;

  std::printf(
      "webhook latency against polar-sim (%.0f flows): p50/p99 ms: "
      "checkout.created %.0f/%.0f, checkout.updated %.0f/%.0f, order.created "
      "%.0f/%.0f, order.paid %.0f/%.0f\n",
      confirmed, 1e3 * LatencyQuantile(m, "checkout.created", 0.5),
      1e3 * LatencyQuantile(m, "checkout.created", 0.99),
      1e3 * LatencyQuantile(m, "checkout.updated", 0.5),
      1e3 * LatencyQuantile(m, "checkout.updated", 0.99),
      1e3 * LatencyQuantile(m, "order.created", 0.5),
      1e3 * LatencyQuantile(m, "order.created", 0.99),
      1e3 * LatencyQuantile(m, "order.paid", 0.5),
      1e3 * LatencyQuantile(m, "order.paid", 0.99));

  // A forged delivery (signed with another secret) about one of our
  // checkouts: refused and counted, never timed.
  const std::string body =
      Envelope("checkout.updated", {{"id", "forged"}, {"status", "succeeded"}});
  const std::string ts = std::to_string(WallSeconds());
  auto forged = PostDelivery(loadd.webhook_url, "msg-forged", ts, body,
                             Sign("whsec_notthereceiverssecretnotthereceivers",
                                  "msg-forged", ts, body));
  EXPECT_EQ(forged.status, 401) << forged.body;
  auto after = Scrape(loadd);
  // Its body is never parsed, so its type is "other".
  EXPECT_EQ(Deliveries(after, "bad_signature", "other"), 1);
  EXPECT_EQ(Timed(after, "checkout.updated"), confirmed);

  loadd.process().Signal(SIGTERM);
  EXPECT_EQ(loadd.process().Wait(15s), 0);
}

// A sharded cluster with the receiver on (README, "The webhook receiver with
// several instances"): three instances read one config (the cluster's rates,
// [cluster] shards = 3) and get their index, receiver port and registration
// URL from the environment, as polar-loadd@.service's .env files give them.
// Each registers its own endpoint in polar-sim, which delivers every webhook
// of the organization to all three. Each instance must time exactly the
// webhooks of its own calls (ok = its own checkouts and confirms, none lost)
// and count the other instances' as unmatched: for every correlated type,
// unmatched on instance i = the sum of ok on the others.
TEST(Webhooks,
     AShardedCheckoutRunTimesEachShardsWebhooksOnTheShardThatCausedThem) {
  constexpr int kShards = 3;
  // Time scale 0.01: polar-sim's per-endpoint FIFO guard would otherwise
  // queue each endpoint's webhooks behind each other for seconds (see the
  // funnel test above).
  Sim sim = StartSim({"--time-scale", "0.01"});
  const double rate = 6 * testing::RateScale();  // the cluster's flows/s
  // 3 s at 0/s first: every instance has registered its endpoint before the
  // first checkout, so each receives every delivery of the run.
  const std::string config =
      fmt::format(R"(
[target]
base_url = "{0}"

[metrics]
listen = "127.0.0.1:0"

[cluster]
shards = {1}

[scenarios.checkout]
type = "checkout"
product_id = "{2}"
think_time = "50ms"
funnel = {{ update = 1.0, status = 1.0, confirm = 1.0 }}
completion_deadline = "10s"

[scenarios.checkout.schedule]
type = "steps"
steps = [{{ rate = "0/s", for = "3s" }}, {{ rate = "{3:.3f}/s", for = "3s" }},
         {{ rate = "0/s", for = "24h" }}]

[webhooks]
listen = "127.0.0.1:0"
register_url = "http://127.0.0.1:9/webhooks/polar"
register_allow_loopback = true
deadline = "10s"
unmatched_after = "1s"
)",
                  sim.base_url(), kShards, sim.free_product(), rate);
  std::vector<Loadd> shards;
  std::vector<std::string> urls;
  for (int i = 0; i < kShards; ++i) {
    const int port = testing::FreeLoopbackPort();
    urls.push_back(fmt::format("http://127.0.0.1:{}/webhooks/polar", port));
    shards.push_back(StartLoadd(
        config, sim.token(),
        {{"POLAR_LOADD_SHARD", std::to_string(i)},
         {"POLAR_LOADD_WEBHOOKS_LISTEN", fmt::format("127.0.0.1:{}", port)},
         {"POLAR_LOADD_WEBHOOKS_REGISTER_URL", urls.back()}}));
    EXPECT_EQ(shards.back().webhook_url, urls.back());
  }
  for (int i = 0; i < kShards; ++i) {
    ASSERT_TRUE(shards[i].process().WaitForStderr("registered in Polar", 10s))
        << shards[i].process().Stderr();
    EXPECT_EQ(EndpointsWithUrl(sim, urls[i]).size(), 1u) << urls[i];
  }

  // Every flow finished and every expected webhook judged on every
  // instance; then unmatched_after and the 1 s verdict tick for the others'.
  const std::string s = "scenario=\"checkout\"";
  std::vector<std::map<std::string, double>> m(kShards);
  for (int i = 0; i < kShards; ++i) {
    m[i] = WaitFor(
        shards[i],
        [&](const auto& x) {
          return testing::SumSeries(x, "polar_loadd_arrivals_total", {s}) > 0 &&
                 testing::SumSeries(x, "polar_loadd_target_rate", {s}) == 0 &&
                 testing::SumSeries(x, "polar_loadd_in_flight", {s}) == 0 &&
                 testing::SumSeries(x, "polar_loadd_webhook_expectations") == 0;
        },
        30s);
  }
  std::this_thread::sleep_for(2500ms);
  for (int i = 0; i < kShards; ++i) m[i] = Scrape(shards[i]);
  // Every shard's schedule is at 0/s now, and says so (shards 1 and 2 sent
  // their last arrival before the step's end: their gauge once stayed at
  // 2/s, and the sum of the cluster's targets with it).
  for (int i = 0; i < kShards; ++i)
    EXPECT_EQ(testing::SumSeries(m[i], "polar_loadd_target_rate", {s}), 0)
        << "shard " << i;

  auto ok_requests = [&](int i, const std::string& step) {
    return testing::SumSeries(m[i], "polar_loadd_requests_total",
                              {s, "step=\"" + step + "\"", "outcome=\"ok\""});
  };
  double all_created = 0;
  for (int i = 0; i < kShards; ++i) {
    SCOPED_TRACE("shard " + std::to_string(i));
    const double created = ok_requests(i, "create");
    const double confirmed = ok_requests(i, "confirm");
    all_created += created;
    // Each shard runs a third of the cluster's flows: 6/s x 3 s / 3.
    EXPECT_NEAR(created, rate * 3 / kShards, 1.5);
    EXPECT_EQ(confirmed, created);
    // Its own webhooks, each matched and timed once, on this instance.
    for (const auto& [type, n] :
         std::map<std::string, double>{{"checkout.created", created},
                                       {"checkout.updated", confirmed},
                                       {"order.created", confirmed},
                                       {"order.updated", confirmed},
                                       {"order.paid", confirmed}}) {
      EXPECT_EQ(Deliveries(m[i], "ok", type), n) << type;
      EXPECT_EQ(Timed(m[i], type), n) << type;
    }
    EXPECT_GE(Deliveries(m[i], "ok", "customer.created"), 1);
    for (const char* verdict : {"lost", "bad_signature", "stale", "replayed",
                                "duplicate", "malformed"})
      EXPECT_EQ(Deliveries(m[i], verdict), 0) << verdict;
    // The others' webhooks came too, and are theirs: unmatched here.
    for (const std::string& type : kCorrelated) {
      double others = 0;
      for (int j = 0; j < kShards; ++j)
        if (j != i) others += Deliveries(m[j], "ok", type);
      EXPECT_EQ(Deliveries(m[i], "unmatched", type), others) << type;
    }
  }
  EXPECT_NEAR(all_created, rate * 3, 1.5);

  for (int i = 0; i < kShards; ++i) {
    shards[i].process().Signal(SIGTERM);
    EXPECT_EQ(shards[i].process().Wait(15s), 0);
    EXPECT_EQ(EndpointsWithUrl(sim, urls[i]).size(), 0u) << urls[i];
  }
}

}  // namespace
}  // namespace polar::webhooks_e2e
