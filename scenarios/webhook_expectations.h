// WebhookExpectations: how a scenario tells the webhook receiver which webhook
// its API call should cause, so the receiver can time "API call -> webhook
// received" (polar_loadd_webhook_latency_seconds) and count webhooks that never
// arrive as lost.
//
// Implemented by the webhook receiver's correlator (daemon/webhooks/) and by
// test fakes; the daemon passes it to scenarios through
// ScenarioContext::webhooks, which is null when no [webhooks] receiver is
// configured. Loop thread only.
//
// Keys (what the webhook's `data` is matched on), fixed so the scenario and the
// receiver agree without knowing each other:
//   checkout.created, checkout.updated  -> the checkout id (data.id)
//   order.created, order.updated, order.paid -> the checkout id
//                                          (data.checkout_id of the order)
//   customer.created                    -> the customer's email, lower-cased
//                                          (data.email)
// For checkout.updated, only the update that reports status "succeeded" is
// expected (the one that completes the flow).
#pragma once

#include <string>
#include <string_view>

#include "exporters/clock.h"

namespace polar {

class WebhookExpectations {
 public:
  virtual ~WebhookExpectations() = default;
  // The API call that finished (or was sent) at `caused_at` should cause a
  // webhook of `type` about `key`. Memory is bounded by the implementation;
  // an expectation past its deadline counts as lost.
  virtual void Expect(std::string_view type, std::string key,
                      MonoTime caused_at) = 0;
};

}  // namespace polar
