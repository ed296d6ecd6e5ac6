// WebhookCorrelator: matches webhooks received with the API calls this daemon
// made (announced through WebhookExpectations), times "API call -> webhook
// received" and counts what never came.
//
// Owned by the daemon's webhook service and shared, as WebhookExpectations*,
// with the scenarios. Loop thread only. Time comes in as arguments (the
// caller's Clock), so tests drive deadlines with plain numbers.
//
// Verdicts it counts in polar_loadd_webhook_deliveries_total:
//   ok         a delivery matched an expectation; its latency is observed once
//   lost       an expectation passed its deadline without a delivery
//   unmatched  a delivery that matched no expectation within unmatched_after
//              (an object this daemon did not create); ignored otherwise
// A delivery may arrive before the Expect() of the call that caused it (the
// webhook can overtake the HTTP response on the way back to us), so an
// unmatched delivery is held for unmatched_after before it is judged.
//
// Bounded memory: at most max_expectations expectations and max_held held
// deliveries, each ~150 bytes (a key of ~36 bytes stored once, a list node and
// a hash node): 100,000 expectations are ~15 MiB. When full, the oldest is
// dropped first: an expectation is counted in
// polar_loadd_webhook_expectations_evicted_total (never judged), a held
// delivery as unmatched. One (type, key) is pending at most once; a second
// Expect() for it keeps the first (earlier) cause.
#pragma once

#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/webhooks/webhook_metrics.h"
#include "daemon/webhooks/webhook_types.h"
#include "exporters/clock.h"
#include "scenarios/webhook_expectations.h"

namespace polar {

struct WebhookCorrelatorOptions {
  // An expectation not met this long after its cause counts as lost. 10 min
  // covers Polar's first seven attempts (retry backoffs add up to at most
  // 4+8+16+32+64+128+256 s = 8.5 min), so a receiver outage of a few minutes
  // shows as latency, not loss.
  Duration deadline = std::chrono::minutes(10);
  std::size_t max_expectations = 100'000;
  // How long a delivery that matches nothing waits for the Expect() of the
  // call that caused it. 10 s: longer than Polar's slowest SLO (confirm p99
  // 5.5 s), the longest a response can trail its own webhook.
  Duration unmatched_after = std::chrono::seconds(10);
  std::size_t max_held = 10'000;
};

class WebhookCorrelator final : public WebhookExpectations {
 public:
  WebhookCorrelator(WebhookMetrics& metrics, WebhookCorrelatorOptions options);
  WebhookCorrelator(const WebhookCorrelator&) = delete;
  WebhookCorrelator& operator=(const WebhookCorrelator&) = delete;

  // WebhookExpectations. A type outside the correlated set is ignored.
  void Expect(std::string_view type, std::string key,
              MonoTime caused_at) override;

  // A verified first delivery of a timed webhook (a correlated type with a
  // non-empty key), received at `received_at`.
  void Arrived(WebhookType type, std::string key, MonoTime received_at);

  // Judges everything whose time is up at `now`: expectations past their
  // deadline (lost), held deliveries past unmatched_after (unmatched). The
  // daemon calls it every second. Entries are judged in the order they came,
  // so one whose cause was stamped earlier than a predecessor's waits for it:
  // a verdict may be late by the spread of causes (a request's latency), and
  // is never missed.
  void Expire(MonoTime now);

  // New limits (a reload): apply to what comes next; the caps are enforced at
  // once, oldest first, counted as above.
  void SetOptions(WebhookCorrelatorOptions options);
  // Drops everything pending without a verdict (the receiver went away, so a
  // missing webhook says nothing about Polar) and ignores Expect() until
  // Enable().
  void Disable();
  void Enable() { enabled_ = true; }

  std::size_t pending() const { return expected_.size(); }
  std::size_t held() const { return held_.size(); }

 private:
  // Insertion-ordered entries with O(1) lookup by key; the map's string_view
  // points into the list node, which never moves.
  struct Entry {
    std::string key;  // the type's index as one char, then the key
    WebhookType type;
    MonoTime at;  // the cause (expectations) or the arrival (held)
  };
  struct Fifo {
    std::list<Entry> order;
    std::unordered_map<std::string_view, std::list<Entry>::iterator> index;
    std::size_t size() const { return order.size(); }
    std::list<Entry>::iterator Find(std::string_view key);
    void Push(Entry entry);
    void Erase(std::list<Entry>::iterator it);
    void Clear();
  };

  static std::string MakeKey(WebhookType type, std::string_view key);
  void Match(WebhookType type, MonoTime caused_at, MonoTime received_at);
  void Count(WebhookType type, WebhookVerdict verdict);
  void Trim();
  void UpdateGauge();

  WebhookMetrics& metrics_;
  WebhookCorrelatorOptions options_;
  bool enabled_ = true;
  Fifo expected_;
  Fifo held_;
};

}  // namespace polar
