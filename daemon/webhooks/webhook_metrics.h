// WebhookMetrics: the webhook receiver's metric families and their cached
// children (polar_loadd_webhook_*; docs/metrics.md lists them).
//
// Built once, with the registry passed in, when a [webhooks] receiver is first
// configured; it lives as long as the registry, so counters carry on across
// reloads. Every (type, verdict) child is created up front (7 x 9), so
// rate() sees a zero before the first delivery and the hot path is one atomic
// add. Loop thread only for updates; scraping may run on any thread.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>

#include "daemon/webhooks/webhook_types.h"

namespace polar {

// Buckets for "API call -> webhook received", seconds: 5 ms (loopback) to
// 30 min. Polar's worker normally delivers within a second; each failed
// attempt adds its retry backoff (2-4 s, 4-8 s, ... up to 20 min), so the
// tail reaches minutes. 0.3 s, 1.2 s, 2.5 s and 5.5 s match the request
// latency buckets (Polar's SLOs) for side-by-side reading.
const prometheus::Histogram::BucketBoundaries& WebhookLatencyBuckets();

class WebhookMetrics {
 public:
  explicit WebhookMetrics(prometheus::Registry& registry);
  WebhookMetrics(const WebhookMetrics&) = delete;
  WebhookMetrics& operator=(const WebhookMetrics&) = delete;

  prometheus::Counter& deliveries(WebhookType type, WebhookVerdict verdict) {
    return *deliveries_[static_cast<std::size_t>(type)]
                       [static_cast<std::size_t>(verdict)];
  }
  prometheus::Histogram& latency(WebhookType type) {
    return *latency_[static_cast<std::size_t>(type)];
  }
  // Expectations dropped, oldest first, because max_expectations was
  // reached: neither ok nor lost, they were never judged.
  prometheus::Counter& evicted(WebhookType type) {
    return *evicted_[static_cast<std::size_t>(type)];
  }
  // Expectations waiting for their webhook now.
  prometheus::Gauge& pending() { return *pending_; }
  // 1 while the endpoint this daemon registered (webhooks.register_url)
  // exists in Polar, 0 while it does not (registering, failed, removed).
  // Created on first use: without register_url the series does not exist.
  prometheus::Gauge& registered();

 private:
  std::array<std::array<prometheus::Counter*, kWebhookVerdictCount>,
             kWebhookTypeCount>
      deliveries_{};
  std::array<prometheus::Histogram*, kWebhookTypeCount> latency_{};
  std::array<prometheus::Counter*, kWebhookTypeCount> evicted_{};
  prometheus::Registry& registry_;
  prometheus::Gauge* pending_ = nullptr;
  prometheus::Gauge* registered_ = nullptr;
};

}  // namespace polar
