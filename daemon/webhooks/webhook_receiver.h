// WebhookReceiver: judges one webhook delivery (Polar's Standard Webhooks
// headers and raw envelope, docs/polar-api.md §4.3) and answers it, without any
// HTTP of its own: the daemon's HTTP server hands it the headers and body
// and sends back the status it returns.
//
// Owned by the daemon's webhook service; loop thread only. Every delivery
// gets exactly one verdict in polar_loadd_webhook_deliveries_total (ok and
// unmatched may come from the correlator a little later, see
// webhook_correlator.h). The checks, in order; the first four need only the
// headers and the declared Content-Length, so the HTTP server asks
// HandleHead() before it reads a byte of the body, and nothing is parsed as
// JSON before the signature holds:
//   body over max_body_bytes                       -> malformed, 413
//   headers over max_header_bytes                  -> malformed, 431
//   webhook-id (1-256 bytes) or webhook-timestamp
//     missing or not Unix seconds                  -> malformed, 400
//   timestamp more than `tolerance` from our clock -> stale, 401
//   no key, no webhook-signature, or no v1 entry
//     matching HMAC-SHA256(key, id.ts.body)        -> bad_signature, 401
//   body not Polar's envelope (signed, but broken) -> malformed, 400
//   same webhook-id and timestamp seen before      -> replayed, 409
//     (a captured message sent again: the sender's own retries always carry
//     a new timestamp and signature)
//   same webhook-id, new timestamp                 -> duplicate, 200
//     (the sender retrying because our answer did not reach it: accepted so
//     it stops, never timed twice)
//   not a timed kind (type "other", checkout.updated before succeeded)
//                                                  -> ignored, 200
//   otherwise handed to the correlator             -> ok / unmatched, 200
// `type` on a verdict comes from the body, mapped onto the fixed set, once the
// signature holds; "other" for every verdict before that (an unauthenticated
// body is never parsed: a 250 KB body of nested brackets cost ~12 ms of loop
// time to parse, its HMAC ~0.2 ms). Nothing from a request reaches a label or
// a log line as raw text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "daemon/webhooks/webhook_correlator.h"
#include "daemon/webhooks/webhook_metrics.h"
#include "daemon/webhooks/webhook_types.h"
#include "exporters/clock.h"

namespace polar {

// Remembers which webhook-ids, and which (webhook-id, timestamp) attempts,
// were accepted, in bounded memory: `capacity` entries per set, the oldest
// forgotten first. Entries are 64-bit hashes (std::hash; a collision among
// 100,000 ids has a chance of ~3e-10), ~48 bytes each with the ring slot, so
// 100,000 cost ~10 MiB for both sets. Only signed deliveries are remembered,
// so nobody without the key can fill it. A forgotten id makes a late retry
// look new: it then finds no expectation (the first delivery used it up) and
// is counted unmatched, still never timed twice.
class WebhookIdMemory {
 public:
  explicit WebhookIdMemory(std::size_t capacity);
  enum class Seen { kNew, kRetry, kReplay };
  Seen Check(std::string_view id, int64_t timestamp) const;
  void Remember(std::string_view id, int64_t timestamp);
  // Shrinking forgets the oldest at once.
  void SetCapacity(std::size_t capacity);
  std::size_t ids() const { return ids_.set.size(); }

 private:
  struct Set {
    std::unordered_set<uint64_t> set;
    std::vector<uint64_t> ring;  // insertion order, `capacity` slots
    std::size_t next = 0;        // the oldest slot once the ring is full
    bool Contains(uint64_t h) const { return set.count(h) != 0; }
    void Insert(uint64_t h, std::size_t capacity);
    void Resize(std::size_t capacity);
  };
  static uint64_t IdHash(std::string_view id);
  static uint64_t AttemptHash(std::string_view id, int64_t timestamp);

  std::size_t capacity_;
  Set ids_;
  Set attempts_;
};

struct WebhookReceiverOptions {
  // Standard Webhooks' tolerance (the library's default): a timestamp more
  // than 5 min from our clock, either way, is refused as stale. With NTP on
  // both sides, clocks differ by milliseconds.
  Duration tolerance = std::chrono::minutes(5);
  // Polar's largest payloads (an order with its checkout, products and
  // metadata) are a few tens of KiB.
  std::size_t max_body_bytes = 256 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  // Webhook-ids remembered for replay and duplicate detection. To catch every
  // replay the memory must hold what arrives within the tolerance window on
  // both sides (rate x 10 min), and to spot every retry as a duplicate, what
  // arrives while Polar still retries (up to ~34 min): 100,000 covers 50
  // webhooks/s.
  std::size_t remember_ids = 100'000;
};

// What the HTTP layer passes in. Header values are "" when absent.
struct WebhookDelivery {
  std::string_view id;
  std::string_view timestamp;
  std::string_view signature;
  std::string_view body;  // empty for HandleHead()
  // The declared (Content-Length) or actual body is over max_body_bytes.
  bool body_too_large = false;
  std::size_t header_bytes = 0;  // names + values of every header
};

struct WebhookAnswer {
  int status = 200;
  WebhookVerdict verdict = WebhookVerdict::kOk;  // kOk also for "held"
  WebhookType type = WebhookType::kOther;
};

class WebhookReceiver {
 public:
  WebhookReceiver(const Clock& clock, WebhookMetrics& metrics,
                  WebhookCorrelator& correlator,
                  WebhookReceiverOptions options);
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  // The HMAC key (webhook_signature.h). Empty until one is known (an endpoint
  // still being registered): every delivery is then bad_signature.
  void SetKey(std::string key) { key_ = std::move(key); }
  bool has_key() const { return !key_.empty(); }
  void SetOptions(WebhookReceiverOptions options);
  const WebhookReceiverOptions& options() const { return options_; }

  WebhookAnswer Handle(const WebhookDelivery& delivery);
  // The checks that need no body (size, header bytes, id, timestamp), on a
  // delivery whose body has not been read: the answer, counted, if it is
  // refused; nullopt if the body is worth reading.
  std::optional<WebhookAnswer> HandleHead(const WebhookDelivery& delivery);

 private:
  std::optional<WebhookAnswer> JudgeHead(const WebhookDelivery& delivery);
  WebhookAnswer Judge(const WebhookDelivery& delivery);

  const Clock& clock_;
  WebhookMetrics& metrics_;
  WebhookCorrelator& correlator_;
  WebhookReceiverOptions options_;
  std::string key_;
  WebhookIdMemory memory_;
};

}  // namespace polar
