#include "exporters/log.h"

#include <algorithm>
#include <deque>

namespace polar {
namespace {

constexpr std::size_t kMinSecretBytes = 6;
constexpr std::size_t kMaxSecrets = 16;

struct SecretSet {
  std::mutex mu;
  std::deque<std::string> secrets;  // oldest first
};

SecretSet& Secrets() {
  static SecretSet* set = new SecretSet;  // never destroyed: logging may run
                                          // from static destructors
  return *set;
}

struct SharedLimiter {
  std::mutex mu;
  LogLimiter limiter;
};

SharedLimiter& ErrorLimiter() {
  static SharedLimiter* limiter = new SharedLimiter;
  return *limiter;
}

thread_local std::vector<std::pair<std::string, std::string>> tls_fields;

}  // namespace

void RegisterSecret(std::string secret) {
  if (secret.size() < kMinSecretBytes) return;
  SecretSet& set = Secrets();
  std::lock_guard lock(set.mu);
  auto it = std::find(set.secrets.begin(), set.secrets.end(), secret);
  if (it != set.secrets.end()) set.secrets.erase(it);
  set.secrets.push_back(std::move(secret));
  while (set.secrets.size() > kMaxSecrets) set.secrets.pop_front();
}

bool ContainsSecret(std::string_view text) {
  SecretSet& set = Secrets();
  std::lock_guard lock(set.mu);
  for (const std::string& s : set.secrets) {
    if (text.find(s) != std::string_view::npos) return true;
  }
  return false;
}

std::string Redact(std::string_view text) {
  std::string out(text);
  SecretSet& set = Secrets();
  std::lock_guard lock(set.mu);
  // Longest first, so a secret that contains another is replaced whole.
  std::vector<const std::string*> order;
  for (const std::string& s : set.secrets) order.push_back(&s);
  std::sort(order.begin(), order.end(),
            [](auto* a, auto* b) { return a->size() > b->size(); });
  for (const std::string* s : order) {
    std::size_t pos = 0;
    while ((pos = out.find(*s, pos)) != std::string::npos) {
      out.replace(pos, s->size(), kRedacted);
      pos += kRedacted.size();
    }
  }
  return out;
}

void ClearSecretsForTesting() {
  SecretSet& set = Secrets();
  std::lock_guard lock(set.mu);
  set.secrets.clear();
}

void LogLimiter::Refill(Bucket& bucket, Time now) const {
  if (now <= bucket.updated) return;
  double earned = std::chrono::duration<double>(now - bucket.updated).count() /
                  std::chrono::duration<double>(options_.refill).count();
  bucket.tokens =
      std::min(static_cast<double>(options_.burst), bucket.tokens + earned);
  bucket.updated = now;
}

LogLimiter::Bucket& LogLimiter::Find(std::string_view key, Time now) {
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    std::string name(key);
    if (buckets_.size() >= options_.max_keys) name = "(other)";
    it = buckets_.find(name);
    if (it == buckets_.end()) {
      Bucket fresh;
      fresh.tokens = options_.burst;
      fresh.updated = now;
      it = buckets_.emplace(std::move(name), fresh).first;
    }
  }
  return it->second;
}

bool LogLimiter::Allow(std::string_view key, Time now, uint64_t* suppressed) {
  Bucket& b = Find(key, now);
  Refill(b, now);
  if (b.tokens < 1.0) {
    ++b.suppressed;
    return false;
  }
  b.tokens -= 1.0;
  *suppressed = b.suppressed;
  b.suppressed = 0;
  return true;
}

void LogLimiter::Flush(Time now,
                       const std::function<void(const std::string& key,
                                                uint64_t suppressed)>& report) {
  for (auto& [key, b] : buckets_) {
    if (b.suppressed == 0) continue;
    Refill(b, now);
    if (b.tokens < 1.0) continue;
    b.tokens -= 1.0;
    uint64_t n = b.suppressed;
    b.suppressed = 0;
    report(key, n);
  }
}

bool AllowErrorLog(std::string_view key, LogLimiter::Time now,
                   uint64_t* suppressed) {
  SharedLimiter& l = ErrorLimiter();
  std::lock_guard lock(l.mu);
  return l.limiter.Allow(key, now, suppressed);
}

void FlushErrorLogs(LogLimiter::Time now,
                    const std::function<void(const std::string& key,
                                             uint64_t suppressed)>& report) {
  // Collect under the lock, report outside it: the report logs, and logging
  // must never wait on this mutex while a sink holds its own.
  std::vector<std::pair<std::string, uint64_t>> due;
  {
    SharedLimiter& l = ErrorLimiter();
    std::lock_guard lock(l.mu);
    l.limiter.Flush(now, [&due](const std::string& key, uint64_t n) {
      due.emplace_back(key, n);
    });
  }
  for (const auto& [key, n] : due) report(key, n);
}

std::string SuppressedSuffix(uint64_t suppressed) {
  if (suppressed == 0) return {};
  return " (suppressed " + std::to_string(suppressed) + " similar message" +
         (suppressed == 1 ? "" : "s") + ")";
}

ScopedLogFields::ScopedLogFields(
    std::initializer_list<std::pair<std::string, std::string>> fields)
    : previous_size_(tls_fields.size()) {
  for (const auto& f : fields) tls_fields.push_back(f);
}

ScopedLogFields::~ScopedLogFields() { tls_fields.resize(previous_size_); }

const std::vector<std::pair<std::string, std::string>>& CurrentLogFields() {
  return tls_fields;
}

}  // namespace polar
