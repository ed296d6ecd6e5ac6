// Webhook label sets: the Polar event types the receiver knows and the
// verdicts it gives each delivery. Both are fixed enumerations because they are
// metric labels (polar_loadd_webhook_deliveries_total{type,verdict}): a type
// outside the set becomes "other", never raw text from a request.
//
// Pure values and functions; any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace polar {

// The event types the receiver correlates with the daemon's own API calls
// (scenarios/webhook_expectations.h has the key of each), plus kOther for
// every other type Polar may send to the endpoint.
enum class WebhookType : uint8_t {
  kCheckoutCreated,
  kCheckoutUpdated,
  kCustomerCreated,
  kOrderCreated,
  kOrderUpdated,
  kOrderPaid,
  kOther,
};
inline constexpr std::size_t kWebhookTypeCount = 7;

// "checkout.created", ..., "other".
std::string_view WebhookTypeName(WebhookType type);
// The type for a Polar event type name; kOther for anything not correlated.
WebhookType ParseWebhookType(std::string_view name);
// The correlated types (every type but kOther), in enum order: what the
// receiver subscribes an endpoint it registers to.
const std::array<WebhookType, kWebhookTypeCount - 1>& CorrelatedWebhookTypes();

// What the receiver made of one delivery (or of one expectation, for kLost).
enum class WebhookVerdict : uint8_t {
  kOk,            // signed, fresh, first delivery, matched one of our calls
  kBadSignature,  // no webhook-signature, no v1 entry matching, or no key
  kStale,         // webhook-timestamp outside the tolerance of our clock
  kReplayed,      // an exact copy (same webhook-id and timestamp) seen before
  kDuplicate,     // the sender's retry of a webhook-id already received
  kUnmatched,     // a correlated type about an object we did not announce
  kIgnored,       // valid, but of a kind that is not timed (type "other",
                  // checkout.updated before "succeeded")
  kMalformed,     // too large, missing headers, or a body that is not
                  // Polar's envelope
  kLost,          // expected, but not received within the deadline
};
inline constexpr std::size_t kWebhookVerdictCount = 9;

std::string_view WebhookVerdictName(WebhookVerdict verdict);

}  // namespace polar
