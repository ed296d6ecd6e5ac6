#include "daemon/webhooks/webhook_types.h"

namespace polar {
namespace {

constexpr std::array<std::string_view, kWebhookTypeCount> kTypeNames = {
    "checkout.created",
    "checkout.updated",
    "customer.created",
    "order.created",
    "order.updated",
    "order.paid",
    "other"};

constexpr std::array<std::string_view, kWebhookVerdictCount> kVerdictNames = {
    "ok",        "bad_signature", "stale",     "replayed", "duplicate",
    "unmatched", "ignored",       "malformed", "lost"};

}  // namespace

std::string_view WebhookTypeName(WebhookType type) {
  return kTypeNames[static_cast<std::size_t>(type)];
}

WebhookType ParseWebhookType(std::string_view name) {
  for (std::size_t i = 0; i + 1 < kWebhookTypeCount; ++i) {
    if (kTypeNames[i] == name) return static_cast<WebhookType>(i);
  }
  return WebhookType::kOther;
}

const std::array<WebhookType, kWebhookTypeCount - 1>& CorrelatedWebhookTypes() {
  static const std::array<WebhookType, kWebhookTypeCount - 1> kTypes = {
      WebhookType::kCheckoutCreated, WebhookType::kCheckoutUpdated,
      WebhookType::kCustomerCreated, WebhookType::kOrderCreated,
      WebhookType::kOrderUpdated,    WebhookType::kOrderPaid};
  return kTypes;
}

std::string_view WebhookVerdictName(WebhookVerdict verdict) {
  return kVerdictNames[static_cast<std::size_t>(verdict)];
}

}  // namespace polar
