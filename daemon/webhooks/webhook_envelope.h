// The webhook envelope parser: Polar's raw payload
// `{"type":"<event type>","timestamp":"<ISO-8601>","data":{...}}`
// (docs/polar-api.md §4.3) reduced to what the receiver needs: the event type
// (a fixed label) and the correlation key of scenarios/webhook_expectations.h.
//
// A pure function of the bytes (no state, any thread), so a fuzzer can call it
// directly. It never throws: anything that is not the envelope is nullopt.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "daemon/webhooks/webhook_types.h"

namespace polar {

struct WebhookEnvelope {
  WebhookType type = WebhookType::kOther;
  // The correlation key (WebhookExpectations' keys: the checkout id for
  // checkout.* and order.*, the lower-cased email for customer.created).
  // Empty when the delivery is not one that is timed: type kOther, or a
  // checkout.updated whose status is not "succeeded".
  std::string key;
};

// nullopt (malformed) when `body` is not a JSON object with a string "type"
// and an object "data", or when a correlated type lacks its key field as a
// non-empty string (data.id; data.checkout_id for order.*; data.email for
// customer.created; data.status for checkout.updated). Other fields, and
// every field of other types, are not looked at.
std::optional<WebhookEnvelope> ParseWebhookEnvelope(std::string_view body);

// ASCII lower case: how customer.created keys are compared (an email's
// domain is case-insensitive, and Polar stores the address as given).
std::string LowerAscii(std::string_view text);

}  // namespace polar
