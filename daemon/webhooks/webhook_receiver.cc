#include "daemon/webhooks/webhook_receiver.h"

#include <functional>

#include "daemon/webhooks/webhook_envelope.h"
#include "daemon/webhooks/webhook_signature.h"

namespace polar {
namespace {

// A webhook-id is Polar's WebhookEvent UUID (36 bytes); Standard Webhooks
// allows any short string. 256 bounds what a hash and a log need to look at.
constexpr std::size_t kMaxIdBytes = 256;

}  // namespace

// ---- WebhookIdMemory --------------------------------------------------------

WebhookIdMemory::WebhookIdMemory(std::size_t capacity) : capacity_(capacity) {}

uint64_t WebhookIdMemory::IdHash(std::string_view id) {
  return std::hash<std::string_view>{}(id);
}

uint64_t WebhookIdMemory::AttemptHash(std::string_view id, int64_t timestamp) {
  // splitmix64 of the timestamp, mixed into the id's hash: (id, t) and
  // (id, t') differ in every bit position with probability 1/2.
  uint64_t z = static_cast<uint64_t>(timestamp) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return IdHash(id) ^ z;
}

void WebhookIdMemory::Set::Insert(uint64_t h, std::size_t capacity) {
  if (capacity == 0 || !set.insert(h).second) return;
  if (ring.size() < capacity) {
    ring.push_back(h);
    return;
  }
  set.erase(ring[next]);
  ring[next] = h;
  next = (next + 1) % capacity;
}

void WebhookIdMemory::Set::Resize(std::size_t capacity) {
  // Oldest first: ring[next..] then ring[..next).
  std::vector<uint64_t> ordered;
  ordered.reserve(ring.size());
  for (std::size_t i = 0; i < ring.size(); ++i)
    ordered.push_back(ring[(next + i) % ring.size()]);
  std::size_t drop = ordered.size() > capacity ? ordered.size() - capacity : 0;
  for (std::size_t i = 0; i < drop; ++i) set.erase(ordered[i]);
  ring.assign(ordered.begin() + static_cast<std::ptrdiff_t>(drop),
              ordered.end());
  next = 0;
}

WebhookIdMemory::Seen WebhookIdMemory::Check(std::string_view id,
                                             int64_t timestamp) const {
  if (attempts_.Contains(AttemptHash(id, timestamp))) return Seen::kReplay;
  if (ids_.Contains(IdHash(id))) return Seen::kRetry;
  return Seen::kNew;
}

void WebhookIdMemory::Remember(std::string_view id, int64_t timestamp) {
  ids_.Insert(IdHash(id), capacity_);
  attempts_.Insert(AttemptHash(id, timestamp), capacity_);
}

void WebhookIdMemory::SetCapacity(std::size_t capacity) {
  capacity_ = capacity;
  ids_.Resize(capacity);
  attempts_.Resize(capacity);
}

// ---- WebhookReceiver --------------------------------------------------------

WebhookReceiver::WebhookReceiver(const Clock& clock, WebhookMetrics& metrics,
                                 WebhookCorrelator& correlator,
                                 WebhookReceiverOptions options)
    : clock_(clock),
      metrics_(metrics),
      correlator_(correlator),
      options_(options),
      memory_(options.remember_ids) {}

void WebhookReceiver::SetOptions(WebhookReceiverOptions options) {
  if (options.remember_ids != options_.remember_ids)
    memory_.SetCapacity(options.remember_ids);
  options_ = options;
}

WebhookAnswer WebhookReceiver::Handle(const WebhookDelivery& delivery) {
  WebhookAnswer answer = Judge(delivery);
  // The correlator counts ok and unmatched itself (possibly later, for a
  // held delivery); everything else is counted here, once.
  if (answer.verdict != WebhookVerdict::kOk)
    metrics_.deliveries(answer.type, answer.verdict).Increment();
  return answer;
}

std::optional<WebhookAnswer> WebhookReceiver::HandleHead(
    const WebhookDelivery& delivery) {
  std::optional<WebhookAnswer> answer = JudgeHead(delivery);
  if (answer) metrics_.deliveries(answer->type, answer->verdict).Increment();
  return answer;
}

std::optional<WebhookAnswer> WebhookReceiver::JudgeHead(
    const WebhookDelivery& d) {
  // Before the signature holds, the type is not known: "other".
  auto reject = [](WebhookVerdict verdict, int status) {
    WebhookAnswer a;
    a.verdict = verdict;
    a.status = status;
    return a;
  };
  if (d.body_too_large || d.body.size() > options_.max_body_bytes)
    return reject(WebhookVerdict::kMalformed, 413);
  if (d.header_bytes > options_.max_header_bytes)
    return reject(WebhookVerdict::kMalformed, 431);
  std::optional<int64_t> ts = ParseWebhookTimestamp(d.timestamp);
  if (d.id.empty() || d.id.size() > kMaxIdBytes || !ts)
    return reject(WebhookVerdict::kMalformed, 400);
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          clock_.WallNow().time_since_epoch())
                          .count();
  const int64_t tolerance =
      std::chrono::duration_cast<std::chrono::seconds>(options_.tolerance)
          .count();
  if (*ts < now - tolerance || *ts > now + tolerance)
    return reject(WebhookVerdict::kStale, 401);
  return std::nullopt;
}

WebhookAnswer WebhookReceiver::Judge(const WebhookDelivery& d) {
  if (std::optional<WebhookAnswer> refused = JudgeHead(d)) return *refused;
  WebhookAnswer a;
  auto reject = [&a](WebhookVerdict verdict, int status) {
    a.verdict = verdict;
    a.status = status;
    return a;
  };
  // The HMAC over the raw body first; only a signed body is parsed.
  if (!VerifyWebhookSignature(key_, d.id, d.timestamp, d.body, d.signature))
    return reject(WebhookVerdict::kBadSignature, 401);
  std::optional<WebhookEnvelope> envelope = ParseWebhookEnvelope(d.body);
  if (!envelope) return reject(WebhookVerdict::kMalformed, 400);
  a.type = envelope->type;
  const int64_t ts = *ParseWebhookTimestamp(d.timestamp);
  switch (memory_.Check(d.id, ts)) {
    case WebhookIdMemory::Seen::kReplay:
      return reject(WebhookVerdict::kReplayed, 409);
    case WebhookIdMemory::Seen::kRetry:
      memory_.Remember(d.id, ts);
      return reject(WebhookVerdict::kDuplicate, 200);
    case WebhookIdMemory::Seen::kNew:
      memory_.Remember(d.id, ts);
      break;
  }
  if (envelope->key.empty()) return reject(WebhookVerdict::kIgnored, 200);
  correlator_.Arrived(envelope->type, std::move(envelope->key), clock_.Now());
  return a;
}

}  // namespace polar
