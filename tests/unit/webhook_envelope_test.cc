// The envelope parser: Polar's raw payload reduced to a fixed type label and
// the correlation key of scenarios/webhook_expectations.h.
#include "daemon/webhooks/webhook_envelope.h"

#include <gtest/gtest.h>

#include <string>

namespace polar {
namespace {

std::string Envelope(std::string_view type, std::string_view data) {
  return std::string(R"({"type":")") + std::string(type) +
         R"(","timestamp":"2026-08-22T10:00:00.000000Z","data":)" +
         std::string(data) + "}";
}

TEST(WebhookEnvelope, EachCorrelatedTypeYieldsItsKey) {
  struct Case {
    std::string type, data, key;
    WebhookType parsed;
  } cases[] = {
      {"checkout.created", R"({"id":"c-1","status":"open"})", "c-1",
       WebhookType::kCheckoutCreated},
      {"checkout.updated", R"({"id":"c-1","status":"succeeded"})", "c-1",
       WebhookType::kCheckoutUpdated},
      {"order.created", R"({"id":"o-1","checkout_id":"c-1"})", "c-1",
       WebhookType::kOrderCreated},
      {"order.updated", R"({"id":"o-1","checkout_id":"c-1"})", "c-1",
       WebhookType::kOrderUpdated},
      {"order.paid", R"({"id":"o-1","checkout_id":"c-1"})", "c-1",
       WebhookType::kOrderPaid},
      {"customer.created", R"({"id":"u-1","email":"LoadTest+7@Polar.SH"})",
       "loadtest+7@polar.sh", WebhookType::kCustomerCreated},
  };
  for (const Case& c : cases) {
    auto env = ParseWebhookEnvelope(Envelope(c.type, c.data));
    ASSERT_TRUE(env) << c.type;
    EXPECT_EQ(env->type, c.parsed) << c.type;
    EXPECT_EQ(WebhookTypeName(env->type), c.type);
    EXPECT_EQ(env->key, c.key) << c.type;
  }
}

TEST(WebhookEnvelope, OnlyTheSucceededCheckoutUpdateIsTimed) {
  for (const char* status : {"open", "confirmed", "expired"}) {
    auto env = ParseWebhookEnvelope(
        Envelope("checkout.updated",
                 std::string(R"({"id":"c-1","status":")") + status + R"("})"));
    ASSERT_TRUE(env) << status;
    EXPECT_EQ(env->type, WebhookType::kCheckoutUpdated);
    EXPECT_EQ(env->key, "") << status;
  }
}

TEST(WebhookEnvelope, OtherTypesAreOtherWhateverTheirName) {
  for (const char* type :
       {"customer.state_changed", "subscription.created", "benefit_grant.x",
        "checkout.created\\u0000", "evil\\\"label"}) {
    auto env = ParseWebhookEnvelope(Envelope(type, R"({"id":"x"})"));
    ASSERT_TRUE(env) << type;
    EXPECT_EQ(env->type, WebhookType::kOther) << type;
    EXPECT_EQ(WebhookTypeName(env->type), "other");
    EXPECT_EQ(env->key, "");
  }
}

TEST(WebhookEnvelope, AnythingButTheEnvelopeIsMalformed) {
  for (const std::string& body : {
           std::string(""),
           std::string("not json"),
           std::string("[1,2]"),
           std::string(R"({"type":"checkout.created"})"),  // no data
           std::string(R"({"data":{"id":"c-1"}})"),        // no type
           std::string(R"({"type":7,"data":{"id":"c-1"}})"),
           std::string(R"({"type":"","data":{"id":"c-1"}})"),
           std::string(R"({"type":"checkout.created","data":[]})"),
           Envelope("checkout.created", R"({"status":"open"})"),  // no id
           Envelope("checkout.created", R"({"id":""})"),
           Envelope("checkout.created", R"({"id":42})"),
           Envelope("checkout.updated", R"({"id":"c-1"})"),  // no status
           Envelope("order.paid", R"({"id":"o-1"})"),        // no checkout_id
           Envelope("customer.created", R"({"id":"u-1"})"),  // no email
           Envelope("checkout.created", R"({"id":"c-1"})") + "trailing",
           std::string(R"({"type":"checkout.created","data":{"id":"c-1")"),
       }) {
    EXPECT_FALSE(ParseWebhookEnvelope(body)) << body;
  }
}

TEST(WebhookEnvelope, DeepNestingAndBinaryBytesDoNotCrash) {
  std::string deep =
      Envelope("other.type", "{\"x\":" + std::string(100'000, '[') +
                                 std::string(100'000, ']') + "}");
  auto env = ParseWebhookEnvelope(deep);
  ASSERT_TRUE(env);
  EXPECT_EQ(env->type, WebhookType::kOther);
  std::string binary(4096, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i)
    binary[i] = static_cast<char>(i * 131);
  EXPECT_FALSE(ParseWebhookEnvelope(binary));
}

}  // namespace
}  // namespace polar
