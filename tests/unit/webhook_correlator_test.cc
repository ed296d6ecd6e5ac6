// Correlation of webhooks with the daemon's own calls, on a fake clock:
// latency from the cause, loss after the deadline, early arrivals, unmatched
// deliveries, and the memory bounds.
#include "daemon/webhooks/webhook_correlator.h"

#include <gtest/gtest.h>

#include "exporters/metrics.h"
#include "tests/support/process.h"

namespace polar {
namespace {

using namespace std::chrono_literals;

class WebhookCorrelatorTest : public ::testing::Test {
 protected:
  WebhookCorrelator& Make(WebhookCorrelatorOptions options = {}) {
    correlator_ = std::make_unique<WebhookCorrelator>(metrics_, options);
    return *correlator_;
  }
  MonoTime At(Duration d) const { return MonoTime{} + 1h + d; }

  double Count(std::string_view type, std::string_view verdict) {
    auto m = testing::ParseMetrics(SerializeMetrics(registry_));
    return testing::SumSeries(m, "polar_loadd_webhook_deliveries_total",
                              {"type=\"" + std::string(type) + "\"",
                               "verdict=\"" + std::string(verdict) + "\""});
  }
  double Metric(const std::string& name, std::string_view type = "") {
    auto m = testing::ParseMetrics(SerializeMetrics(registry_));
    if (type.empty()) return testing::SumSeries(m, name);
    return testing::SumSeries(m, name, {"type=\"" + std::string(type) + "\""});
  }

  prometheus::Registry registry_;
  WebhookMetrics metrics_{registry_};
  std::unique_ptr<WebhookCorrelator> correlator_;
};

TEST_F(WebhookCorrelatorTest, AMatchedWebhookIsTimedOnceFromItsCause) {
  auto& c = Make();
  c.Expect("checkout.created", "c-1", At(0s));
  EXPECT_EQ(c.pending(), 1u);
  EXPECT_EQ(Metric("polar_loadd_webhook_expectations"), 1);
  c.Arrived(WebhookType::kCheckoutCreated, "c-1", At(1500ms));
  EXPECT_EQ(c.pending(), 0u);
  EXPECT_EQ(Count("checkout.created", "ok"), 1);
  EXPECT_EQ(
      Metric("polar_loadd_webhook_latency_seconds_count", "checkout.created"),
      1);
  EXPECT_DOUBLE_EQ(
      Metric("polar_loadd_webhook_latency_seconds_sum", "checkout.created"),
      1.5);
  // The same object's webhook again (e.g. a second endpoint) is not timed.
  c.Arrived(WebhookType::kCheckoutCreated, "c-1", At(2s));
  c.Expire(At(2s) + 10s);
  EXPECT_EQ(Count("checkout.created", "ok"), 1);
  EXPECT_EQ(Count("checkout.created", "unmatched"), 1);
  EXPECT_EQ(
      Metric("polar_loadd_webhook_latency_seconds_count", "checkout.created"),
      1);
}

TEST_F(WebhookCorrelatorTest, KeysOfDifferentTypesDoNotMatchEachOther) {
  auto& c = Make();
  c.Expect("order.paid", "c-1", At(0s));
  c.Arrived(WebhookType::kOrderCreated, "c-1", At(1s));
  EXPECT_EQ(c.pending(), 1u);
  EXPECT_EQ(c.held(), 1u);
  c.Arrived(WebhookType::kOrderPaid, "c-1", At(2s));
  EXPECT_EQ(Count("order.paid", "ok"), 1);
  EXPECT_EQ(Count("order.created", "ok"), 0);
}

TEST_F(WebhookCorrelatorTest, AnExpectationPastItsDeadlineIsLost) {
  WebhookCorrelatorOptions o;
  o.deadline = 10min;
  auto& c = Make(o);
  c.Expect("order.paid", "c-1", At(0s));
  c.Expect("order.paid", "c-2", At(5s));
  c.Expire(At(10min - 1ms));
  EXPECT_EQ(Count("order.paid", "lost"), 0);
  EXPECT_EQ(c.pending(), 2u);
  c.Expire(At(10min));
  EXPECT_EQ(Count("order.paid", "lost"), 1);
  EXPECT_EQ(c.pending(), 1u);
  // A webhook after the verdict does not revive it.
  c.Arrived(WebhookType::kOrderPaid, "c-1", At(10min + 1s));
  c.Arrived(WebhookType::kOrderPaid, "c-2", At(10min + 1s));
  c.Expire(At(11min));
  EXPECT_EQ(Count("order.paid", "lost"), 1);
  EXPECT_EQ(Count("order.paid", "ok"), 1);
  EXPECT_EQ(Count("order.paid", "unmatched"), 1);
  EXPECT_EQ(Metric("polar_loadd_webhook_expectations"), 0);
}

TEST_F(WebhookCorrelatorTest, AWebhookThatOvertakesItsResponseIsStillTimed) {
  // The webhook arrives before the scenario has processed the response that
  // announces it; the cause is the request's send time, before both.
  auto& c = Make();
  c.Arrived(WebhookType::kCheckoutCreated, "c-1", At(300ms));
  EXPECT_EQ(c.held(), 1u);
  EXPECT_EQ(Count("checkout.created", "ok"), 0);
  c.Expect("checkout.created", "c-1", At(0s));
  EXPECT_EQ(c.held(), 0u);
  EXPECT_EQ(c.pending(), 0u);
  EXPECT_EQ(Count("checkout.created", "ok"), 1);
  EXPECT_DOUBLE_EQ(
      Metric("polar_loadd_webhook_latency_seconds_sum", "checkout.created"),
      0.3);
  // A cause stamped after the arrival is a zero latency, never negative.
  c.Arrived(WebhookType::kCheckoutCreated, "c-2", At(1s));
  c.Expect("checkout.created", "c-2", At(2s));
  EXPECT_DOUBLE_EQ(
      Metric("polar_loadd_webhook_latency_seconds_sum", "checkout.created"),
      0.3);
  EXPECT_EQ(
      Metric("polar_loadd_webhook_latency_seconds_count", "checkout.created"),
      2);
}

TEST_F(WebhookCorrelatorTest, AWebhookNobodyExpectedIsUnmatchedAfterTheGrace) {
  WebhookCorrelatorOptions o;
  o.unmatched_after = 10s;
  auto& c = Make(o);
  c.Arrived(WebhookType::kCustomerCreated, "someone@else.com", At(0s));
  c.Expire(At(10s - 1ms));
  EXPECT_EQ(Count("customer.created", "unmatched"), 0);
  c.Expire(At(10s));
  EXPECT_EQ(Count("customer.created", "unmatched"), 1);
  EXPECT_EQ(c.held(), 0u);
  // An Expect after the verdict starts a fresh wait (and is lost later).
  c.Expect("customer.created", "someone@else.com", At(11s));
  EXPECT_EQ(c.pending(), 1u);
  EXPECT_EQ(Count("customer.created", "ok"), 0);
}

TEST_F(WebhookCorrelatorTest, CustomerEmailsMatchWhateverTheirCase) {
  auto& c = Make();
  c.Expect("customer.created", "LoadTest@Polar.sh", At(0s));
  c.Arrived(WebhookType::kCustomerCreated, "loadtest@polar.sh", At(1s));
  EXPECT_EQ(Count("customer.created", "ok"), 1);
}

TEST_F(WebhookCorrelatorTest, ASecondExpectForOneKeyKeepsTheEarlierCause) {
  auto& c = Make();
  c.Expect("order.created", "c-1", At(0s));
  c.Expect("order.created", "c-1", At(4s));
  EXPECT_EQ(c.pending(), 1u);
  c.Arrived(WebhookType::kOrderCreated, "c-1", At(5s));
  EXPECT_DOUBLE_EQ(
      Metric("polar_loadd_webhook_latency_seconds_sum", "order.created"), 5);
}

TEST_F(WebhookCorrelatorTest, UnknownTypesAndEmptyKeysAreNotExpected) {
  auto& c = Make();
  c.Expect("subscription.created", "s-1", At(0s));
  c.Expect("other", "x", At(0s));
  c.Expect("checkout.created", "", At(0s));
  EXPECT_EQ(c.pending(), 0u);
}

TEST_F(WebhookCorrelatorTest, TheCapEvictsTheOldestExpectationsAndCountsThem) {
  WebhookCorrelatorOptions o;
  o.max_expectations = 1000;
  auto& c = Make(o);
  for (int i = 0; i < 100'000; ++i)
    c.Expect("checkout.created", "c-" + std::to_string(i), At(i * 1ms));
  EXPECT_EQ(c.pending(), 1000u);
  EXPECT_EQ(Metric("polar_loadd_webhook_expectations"), 1000);
  EXPECT_EQ(Metric("polar_loadd_webhook_expectations_evicted_total",
                   "checkout.created"),
            99'000);
  // The newest are kept: c-99999 matches, c-0 does not.
  c.Arrived(WebhookType::kCheckoutCreated, "c-99999", At(100s));
  c.Arrived(WebhookType::kCheckoutCreated, "c-0", At(100s));
  EXPECT_EQ(Count("checkout.created", "ok"), 1);
  EXPECT_EQ(c.held(), 1u);
  // Evicted expectations are never judged lost.
  c.Expire(At(1h));
  EXPECT_EQ(Count("checkout.created", "lost"), 999);
}

TEST_F(WebhookCorrelatorTest, HeldDeliveriesAreBoundedToo) {
  WebhookCorrelatorOptions o;
  o.max_held = 100;
  auto& c = Make(o);
  for (int i = 0; i < 1000; ++i)
    c.Arrived(WebhookType::kOrderPaid, "c-" + std::to_string(i), At(0s));
  EXPECT_EQ(c.held(), 100u);
  EXPECT_EQ(Count("order.paid", "unmatched"), 900);
  c.Expect("order.paid", "c-999", At(0s));  // the newest is still held
  EXPECT_EQ(Count("order.paid", "ok"), 1);
}

TEST_F(WebhookCorrelatorTest, ShrinkingTheCapOnReloadEvictsAtOnce) {
  auto& c = Make();
  for (int i = 0; i < 50; ++i)
    c.Expect("order.paid", "c-" + std::to_string(i), At(0s));
  WebhookCorrelatorOptions o;
  o.max_expectations = 10;
  c.SetOptions(o);
  EXPECT_EQ(c.pending(), 10u);
  EXPECT_EQ(
      Metric("polar_loadd_webhook_expectations_evicted_total", "order.paid"),
      40);
}

TEST_F(WebhookCorrelatorTest,
       DisablingDropsWhatWasExpectedWithoutCallingItLost) {
  auto& c = Make();
  c.Expect("order.paid", "c-1", At(0s));
  c.Arrived(WebhookType::kOrderPaid, "c-2", At(0s));
  c.Disable();
  EXPECT_EQ(c.pending(), 0u);
  EXPECT_EQ(Count("order.paid", "unmatched"), 1);  // it did arrive
  c.Expect("order.paid", "c-3", At(1s));
  EXPECT_EQ(c.pending(), 0u);
  c.Expire(At(1h));
  EXPECT_EQ(Count("order.paid", "lost"), 0);
  c.Enable();
  c.Expect("order.paid", "c-3", At(1s));
  EXPECT_EQ(c.pending(), 1u);
}

}  // namespace
}  // namespace polar
