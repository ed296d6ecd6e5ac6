// The receiver's verdicts for one delivery at a time, on a fake clock: what is
// accepted, what is refused with which status, replays against retries, size
// limits, labels from a fixed set, and the bounded id memory.
#include "daemon/webhooks/webhook_receiver.h"

#include <gtest/gtest.h>

#include <deque>

#include "daemon/webhooks/webhook_signature.h"
#include "exporters/metrics.h"
#include "tests/support/process.h"

namespace polar {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kSecret =
    "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTIzNDU2";

std::string CheckoutCreated(std::string_view id) {
  return std::string(
             R"({"type":"checkout.created","timestamp":"2026-08-22T10:00:00Z","data":{"id":")") +
         std::string(id) + R"(","status":"open"}})";
}

class WebhookReceiverTest : public ::testing::Test {
 protected:
  WebhookReceiverTest() { receiver_.SetKey(std::string(kSecret)); }

  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(
               clock_.WallNow().time_since_epoch())
        .count();
  }

  // A delivery as Polar signs it; the strings live in the fixture.
  WebhookAnswer Send(const std::string& id, int64_t ts, const std::string& body,
                     std::string_view secret = kSecret) {
    ids_.push_back(id);
    stamps_.push_back(std::to_string(ts));
    bodies_.push_back(body);
    sigs_.push_back(
        SignWebhook(secret, ids_.back(), stamps_.back(), bodies_.back()));
    WebhookDelivery d;
    d.id = ids_.back();
    d.timestamp = stamps_.back();
    d.body = bodies_.back();
    d.signature = sigs_.back();
    d.header_bytes = 300;
    return receiver_.Handle(d);
  }

  double Count(std::string_view type, std::string_view verdict) {
    auto m = testing::ParseMetrics(SerializeMetrics(registry_));
    return testing::SumSeries(m, "polar_loadd_webhook_deliveries_total",
                              {"type=\"" + std::string(type) + "\"",
                               "verdict=\"" + std::string(verdict) + "\""});
  }
  double Timed() {
    auto m = testing::ParseMetrics(SerializeMetrics(registry_));
    return testing::SumSeries(m, "polar_loadd_webhook_latency_seconds_count");
  }

  FakeClock clock_;
  prometheus::Registry registry_;
  WebhookMetrics metrics_{registry_};
  WebhookCorrelator correlator_{metrics_, WebhookCorrelatorOptions{}};
  WebhookReceiver receiver_{clock_, metrics_, correlator_,
                            WebhookReceiverOptions{}};
  std::deque<std::string> ids_, stamps_, bodies_, sigs_;
};

TEST_F(WebhookReceiverTest, ASignedFreshExpectedDeliveryIsOkAndTimed) {
  correlator_.Expect("checkout.created", "c-1", clock_.Now());
  clock_.Advance(250ms);
  WebhookAnswer a = Send("msg-1", Now(), CheckoutCreated("c-1"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.verdict, WebhookVerdict::kOk);
  EXPECT_EQ(Count("checkout.created", "ok"), 1);
  EXPECT_EQ(Timed(), 1);
}

TEST_F(WebhookReceiverTest, ForgedAndUnsignedDeliveriesAre401BadSignature) {
  correlator_.Expect("checkout.created", "c-1", clock_.Now());
  EXPECT_EQ(Send("msg-1", Now(), CheckoutCreated("c-1"),
                 "whsec_someoneelsessecretsomeoneelsessecret")
                .status,
            401);
  WebhookDelivery unsigned_delivery;
  const std::string ts = std::to_string(Now()), body = CheckoutCreated("c-1");
  unsigned_delivery.id = "msg-2";
  unsigned_delivery.timestamp = ts;
  unsigned_delivery.body = body;
  WebhookAnswer a = receiver_.Handle(unsigned_delivery);
  EXPECT_EQ(a.status, 401);
  EXPECT_EQ(a.verdict, WebhookVerdict::kBadSignature);
  // An unauthenticated body is never parsed, so its type is not known.
  EXPECT_EQ(Count("other", "bad_signature"), 2);
  EXPECT_EQ(Count("checkout.created", "bad_signature"), 0);
  EXPECT_EQ(Timed(), 0);
  EXPECT_EQ(correlator_.pending(), 1u);  // still waiting for the real one
}

TEST_F(WebhookReceiverTest, TheHeadIsJudgedBeforeTheBodyIsRead) {
  WebhookDelivery head;
  const std::string ts = std::to_string(Now());
  head.id = "msg-1";
  head.timestamp = ts;
  head.header_bytes = 200;
  // A good head: the body is worth reading; nothing counted yet.
  EXPECT_FALSE(receiver_.HandleHead(head));
  EXPECT_EQ(Count("other", "malformed") + Count("other", "stale"), 0);
  WebhookDelivery declared_too_large = head;
  declared_too_large.body_too_large = true;
  EXPECT_EQ(receiver_.HandleHead(declared_too_large)->status, 413);
  WebhookDelivery no_id = head;
  no_id.id = "";
  EXPECT_EQ(receiver_.HandleHead(no_id)->status, 400);
  const std::string old = std::to_string(Now() - 600);
  WebhookDelivery stale = head;
  stale.timestamp = old;
  EXPECT_EQ(receiver_.HandleHead(stale)->verdict, WebhookVerdict::kStale);
  EXPECT_EQ(Count("other", "malformed"), 2);
  EXPECT_EQ(Count("other", "stale"), 1);
}

TEST_F(WebhookReceiverTest, TimestampsWithinFiveMinutesEitherWayAreFresh) {
  EXPECT_EQ(Send("a", Now() - 300, CheckoutCreated("c-a")).status, 200);
  EXPECT_EQ(Send("b", Now() + 300, CheckoutCreated("c-b")).status, 200);
  WebhookAnswer old = Send("c", Now() - 301, CheckoutCreated("c-c"));
  EXPECT_EQ(old.status, 401);
  EXPECT_EQ(old.verdict, WebhookVerdict::kStale);
  EXPECT_EQ(Send("d", Now() + 301, CheckoutCreated("c-d")).verdict,
            WebhookVerdict::kStale);
  EXPECT_EQ(Count("other", "stale"), 2);
}

TEST_F(WebhookReceiverTest, TheToleranceIsConfigurable) {
  WebhookReceiverOptions o;
  o.tolerance = 30s;
  receiver_.SetOptions(o);
  EXPECT_EQ(Send("a", Now() - 30, CheckoutCreated("c-a")).status, 200);
  EXPECT_EQ(Send("b", Now() - 31, CheckoutCreated("c-b")).verdict,
            WebhookVerdict::kStale);
}

TEST_F(WebhookReceiverTest, AnExactCopyIsAReplayAndRefused409) {
  correlator_.Expect("checkout.created", "c-1", clock_.Now());
  const int64_t ts = Now();
  EXPECT_EQ(Send("msg-1", ts, CheckoutCreated("c-1")).status, 200);
  clock_.Advance(20s);
  WebhookAnswer again = Send("msg-1", ts, CheckoutCreated("c-1"));
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.verdict, WebhookVerdict::kReplayed);
  EXPECT_EQ(Count("checkout.created", "replayed"), 1);
  EXPECT_EQ(Count("checkout.created", "ok"), 1);
  EXPECT_EQ(Timed(), 1);
}

TEST_F(WebhookReceiverTest, TheSendersRetryIsADuplicateAcceptedButNotTimed) {
  correlator_.Expect("checkout.created", "c-1", clock_.Now());
  EXPECT_EQ(Send("msg-1", Now(), CheckoutCreated("c-1")).status, 200);
  // Our 200 got lost; the sender retries 3 s later with a new timestamp and
  // signature, and then once more.
  for (int i = 0; i < 2; ++i) {
    clock_.Advance(3s);
    WebhookAnswer retry = Send("msg-1", Now(), CheckoutCreated("c-1"));
    EXPECT_EQ(retry.status, 200);
    EXPECT_EQ(retry.verdict, WebhookVerdict::kDuplicate);
  }
  EXPECT_EQ(Count("checkout.created", "duplicate"), 2);
  EXPECT_EQ(Count("checkout.created", "ok"), 1);
  EXPECT_EQ(Timed(), 1);
}

TEST_F(WebhookReceiverTest, MalformedDeliveriesAre4xxAndCounted) {
  WebhookDelivery d;
  const std::string ts = std::to_string(Now());
  const std::string body = CheckoutCreated("c-1");
  const std::string sig = SignWebhook(kSecret, "msg-1", ts, body);
  d.id = "msg-1";
  d.timestamp = ts;
  d.body = body;
  d.signature = sig;

  WebhookDelivery no_id = d;
  no_id.id = "";
  EXPECT_EQ(receiver_.Handle(no_id).status, 400);
  WebhookDelivery bad_ts = d;
  bad_ts.timestamp = "yesterday";
  EXPECT_EQ(receiver_.Handle(bad_ts).status, 400);
  const std::string long_id(300, 'x');
  WebhookDelivery huge_id = d;
  huge_id.id = long_id;
  EXPECT_EQ(receiver_.Handle(huge_id).status, 400);
  WebhookDelivery too_large = d;
  too_large.body_too_large = true;
  EXPECT_EQ(receiver_.Handle(too_large).status, 413);
  WebhookDelivery big_headers = d;
  big_headers.header_bytes = 16 * 1024 + 1;
  EXPECT_EQ(receiver_.Handle(big_headers).status, 431);
  EXPECT_EQ(
      Count("checkout.created", "malformed") + Count("other", "malformed"), 5);
  // Signed by the right key but not Polar's envelope.
  WebhookAnswer junk = Send("msg-2", Now(), "{\"hello\":1}");
  EXPECT_EQ(junk.status, 400);
  EXPECT_EQ(junk.verdict, WebhookVerdict::kMalformed);
  EXPECT_EQ(Count("other", "malformed"), 1 + 5);  // + the five above
  // The well-formed original still goes through afterwards.
  EXPECT_EQ(receiver_.Handle(d).status, 200);
}

TEST_F(WebhookReceiverTest,
       BodiesOverTheLimitAreRefusedEvenIfTheHttpLayerMissedIt) {
  WebhookReceiverOptions o;
  o.max_body_bytes = 64;
  receiver_.SetOptions(o);
  WebhookAnswer a = Send("msg-1", Now(), CheckoutCreated(std::string(80, 'c')));
  EXPECT_EQ(a.status, 413);
  EXPECT_EQ(a.verdict, WebhookVerdict::kMalformed);
}

TEST_F(WebhookReceiverTest,
       KindsThatAreNotTimedAreIgnoredAndTypesStayInTheSet) {
  WebhookAnswer confirmed = Send(
      "msg-1", Now(),
      R"({"type":"checkout.updated","timestamp":"t","data":{"id":"c-1","status":"confirmed"}})");
  EXPECT_EQ(confirmed.status, 200);
  EXPECT_EQ(confirmed.verdict, WebhookVerdict::kIgnored);
  EXPECT_EQ(Count("checkout.updated", "ignored"), 1);
  WebhookAnswer other =
      Send("msg-2", Now(),
           R"({"type":"x\"} 1\n# evil{type=\"","timestamp":"t","data":{}})");
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(other.verdict, WebhookVerdict::kIgnored);
  EXPECT_EQ(Count("other", "ignored"), 1);
  // Only the fixed label values ever appear.
  auto m = testing::ParseMetrics(SerializeMetrics(registry_));
  for (const auto& [series, value] : m) {
    if (series.rfind("polar_loadd_webhook", 0) != 0) continue;
    EXPECT_EQ(series.find("evil"), std::string::npos) << series;
  }
}

TEST_F(WebhookReceiverTest, WithoutAKeyEveryDeliveryIsBadSignature) {
  receiver_.SetKey("");
  EXPECT_EQ(Send("msg-1", Now(), CheckoutCreated("c-1"), "").status, 401);
  EXPECT_EQ(Send("msg-2", Now(), CheckoutCreated("c-2")).status, 401);
  EXPECT_EQ(Count("other", "bad_signature"), 2);
}

TEST_F(WebhookReceiverTest, ARotatedKeyTakesEffectAtOnce) {
  const std::string next = "whsec_thenextsecretthenextsecretthenext";
  EXPECT_EQ(Send("msg-1", Now(), CheckoutCreated("c-1"), next).status, 401);
  receiver_.SetKey(next);
  EXPECT_EQ(Send("msg-2", Now(), CheckoutCreated("c-2"), next).status, 200);
  EXPECT_EQ(Send("msg-3", Now(), CheckoutCreated("c-3")).status, 401);
}

TEST(WebhookIdMemory, RemembersAtMostItsCapacityAndForgetsTheOldestFirst) {
  WebhookIdMemory memory(1000);
  for (int i = 0; i < 5000; ++i) memory.Remember("id-" + std::to_string(i), i);
  EXPECT_EQ(memory.ids(), 1000u);
  EXPECT_EQ(memory.Check("id-0", 0), WebhookIdMemory::Seen::kNew);
  EXPECT_EQ(memory.Check("id-3999", 3999), WebhookIdMemory::Seen::kNew);
  EXPECT_EQ(memory.Check("id-4000", 4000), WebhookIdMemory::Seen::kReplay);
  EXPECT_EQ(memory.Check("id-4999", 5), WebhookIdMemory::Seen::kRetry);
  memory.SetCapacity(10);
  EXPECT_EQ(memory.ids(), 10u);
  EXPECT_EQ(memory.Check("id-4989", 4989), WebhookIdMemory::Seen::kNew);
  EXPECT_EQ(memory.Check("id-4990", 4990), WebhookIdMemory::Seen::kReplay);
  memory.SetCapacity(20);
  memory.Remember("new", 1);
  EXPECT_EQ(memory.ids(), 11u);
  EXPECT_EQ(memory.Check("id-4990", 4990), WebhookIdMemory::Seen::kReplay);
}

TEST_F(WebhookReceiverTest, ARetryOfAForgottenIdIsStillNeverTimedTwice) {
  WebhookReceiverOptions o;
  o.remember_ids = 1000;
  receiver_.SetOptions(o);
  correlator_.Expect("checkout.created", "c-first", clock_.Now());
  EXPECT_EQ(Send("first", Now(), CheckoutCreated("c-first")).status, 200);
  for (int i = 0; i < 1500; ++i)
    Send("other-" + std::to_string(i), Now(), CheckoutCreated("x"));
  clock_.Advance(5s);
  // Forgotten: it looks new, but the expectation is used up.
  EXPECT_EQ(Send("first", Now(), CheckoutCreated("c-first")).status, 200);
  correlator_.Expire(clock_.Now() + 1min);
  EXPECT_EQ(Count("checkout.created", "ok"), 1);
  EXPECT_EQ(Timed(), 1);
}

}  // namespace
}  // namespace polar
