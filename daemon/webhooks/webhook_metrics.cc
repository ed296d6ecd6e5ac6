#include "daemon/webhooks/webhook_metrics.h"

#include <prometheus/family.h>

#include <string>

namespace polar {

const prometheus::Histogram::BucketBoundaries& WebhookLatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5,  0.75, 1.0,
      1.2,   1.5,  2.0,   2.5,  3.0, 4.0, 5.0, 5.5,  7.5,  10,
      15,    30,   60,    120,  300, 600, 900, 1200, 1800};
  return kBuckets;
}

WebhookMetrics::WebhookMetrics(prometheus::Registry& registry)
    : registry_(registry) {
  auto& deliveries =
      prometheus::BuildCounter()
          .Name("polar_loadd_webhook_deliveries_total")
          .Help(
              "Webhooks received (or given up on: verdict lost) by Polar "
              "event type and verdict.")
          .Register(registry);
  auto& latency =
      prometheus::BuildHistogram()
          .Name("polar_loadd_webhook_latency_seconds")
          .Help("From the API call that caused a webhook to its arrival.")
          .Register(registry);
  auto& evicted =
      prometheus::BuildCounter()
          .Name("polar_loadd_webhook_expectations_evicted_total")
          .Help(
              "Expected webhooks no longer tracked because "
              "webhooks.max_expectations was reached (oldest first).")
          .Register(registry);
  pending_ = &prometheus::BuildGauge()
                  .Name("polar_loadd_webhook_expectations")
                  .Help(
                      "Expected webhooks not yet received and not yet past "
                      "their deadline.")
                  .Register(registry)
                  .Add({});
  for (std::size_t t = 0; t < kWebhookTypeCount; ++t) {
    const std::string type(WebhookTypeName(static_cast<WebhookType>(t)));
    for (std::size_t v = 0; v < kWebhookVerdictCount; ++v) {
      deliveries_[t][v] = &deliveries.Add(
          {{"type", type},
           {"verdict",
            std::string(WebhookVerdictName(static_cast<WebhookVerdict>(v)))}});
    }
    latency_[t] = &latency.Add({{"type", type}}, WebhookLatencyBuckets());
    evicted_[t] = &evicted.Add({{"type", type}});
  }
}

prometheus::Gauge& WebhookMetrics::registered() {
  if (!registered_) {
    registered_ = &prometheus::BuildGauge()
                       .Name("polar_loadd_webhook_endpoint_registered")
                       .Help(
                           "1 while the webhook endpoint this daemon "
                           "registered in Polar exists, else 0.")
                       .Register(registry_)
                       .Add({});
  }
  return *registered_;
}

}  // namespace polar
