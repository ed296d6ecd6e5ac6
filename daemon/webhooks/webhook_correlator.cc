#include "daemon/webhooks/webhook_correlator.h"

#include <algorithm>

#include "daemon/webhooks/webhook_envelope.h"

namespace polar {

std::list<WebhookCorrelator::Entry>::iterator WebhookCorrelator::Fifo::Find(
    std::string_view key) {
  auto it = index.find(key);
  return it == index.end() ? order.end() : it->second;
}

void WebhookCorrelator::Fifo::Push(Entry entry) {
  order.push_back(std::move(entry));
  auto it = std::prev(order.end());
  index.emplace(std::string_view(it->key), it);
}

void WebhookCorrelator::Fifo::Erase(std::list<Entry>::iterator it) {
  index.erase(std::string_view(it->key));
  order.erase(it);
}

void WebhookCorrelator::Fifo::Clear() {
  index.clear();
  order.clear();
}

WebhookCorrelator::WebhookCorrelator(WebhookMetrics& metrics,
                                     WebhookCorrelatorOptions options)
    : metrics_(metrics), options_(options) {
  UpdateGauge();
}

std::string WebhookCorrelator::MakeKey(WebhookType type, std::string_view key) {
  std::string out;
  out.reserve(key.size() + 1);
  out += static_cast<char>('0' + static_cast<int>(type));
  out += key;
  return out;
}

void WebhookCorrelator::Count(WebhookType type, WebhookVerdict verdict) {
  metrics_.deliveries(type, verdict).Increment();
}

void WebhookCorrelator::Match(WebhookType type, MonoTime caused_at,
                              MonoTime received_at) {
  // A cause stamped after the arrival (a caller that stamps the response
  // rather than the send) is a zero latency, not a negative one.
  Duration latency = std::max(received_at - caused_at, Duration::zero());
  metrics_.latency(type).Observe(ToSeconds(latency));
  Count(type, WebhookVerdict::kOk);
}

void WebhookCorrelator::Expect(std::string_view type_name, std::string key,
                               MonoTime caused_at) {
  WebhookType type = ParseWebhookType(type_name);
  if (!enabled_ || type == WebhookType::kOther || key.empty()) return;
  if (type == WebhookType::kCustomerCreated) key = LowerAscii(key);
  std::string full = MakeKey(type, key);
  if (auto held = held_.Find(full); held != held_.order.end()) {
    Match(type, caused_at, held->at);
    held_.Erase(held);
    return;
  }
  if (expected_.Find(full) != expected_.order.end()) return;
  expected_.Push(Entry{std::move(full), type, caused_at});
  Trim();
  UpdateGauge();
}

void WebhookCorrelator::Arrived(WebhookType type, std::string key,
                                MonoTime received_at) {
  std::string full = MakeKey(type, key);
  if (auto it = expected_.Find(full); it != expected_.order.end()) {
    Match(type, it->at, received_at);
    expected_.Erase(it);
    UpdateGauge();
    return;
  }
  if (!enabled_ || held_.Find(full) != held_.order.end()) {
    // The same object's webhook is already waiting (a second endpoint, or a
    // sender that re-sent under a new webhook-id): only one can match.
    Count(type, WebhookVerdict::kUnmatched);
    return;
  }
  held_.Push(Entry{std::move(full), type, received_at});
  Trim();
}

void WebhookCorrelator::Expire(MonoTime now) {
  while (!expected_.order.empty() &&
         expected_.order.front().at + options_.deadline <= now) {
    Count(expected_.order.front().type, WebhookVerdict::kLost);
    expected_.Erase(expected_.order.begin());
  }
  while (!held_.order.empty() &&
         held_.order.front().at + options_.unmatched_after <= now) {
    Count(held_.order.front().type, WebhookVerdict::kUnmatched);
    held_.Erase(held_.order.begin());
  }
  UpdateGauge();
}

void WebhookCorrelator::SetOptions(WebhookCorrelatorOptions options) {
  options_ = options;
  Trim();
  UpdateGauge();
}

void WebhookCorrelator::Disable() {
  enabled_ = false;
  expected_.Clear();
  // Held deliveries did arrive: judge them now rather than forget them.
  for (const Entry& e : held_.order) Count(e.type, WebhookVerdict::kUnmatched);
  held_.Clear();
  UpdateGauge();
}

void WebhookCorrelator::Trim() {
  while (expected_.size() > options_.max_expectations) {
    metrics_.evicted(expected_.order.front().type).Increment();
    expected_.Erase(expected_.order.begin());
  }
  while (held_.size() > options_.max_held) {
    Count(held_.order.front().type, WebhookVerdict::kUnmatched);
    held_.Erase(held_.order.begin());
  }
}

void WebhookCorrelator::UpdateGauge() {
  metrics_.pending().Set(static_cast<double>(expected_.size()));
}

}  // namespace polar
