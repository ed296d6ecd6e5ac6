// Log hygiene shared by every layer: secret redaction, per-key rate limiting
// of error logs, and structured fields for the journal.
//
// Process-wide by nature (a log line can come from anywhere), so these are the
// one exception to "no globals": the secret set and the error limiter are
// singletons guarded by a mutex, safe from any thread. LogLimiter itself is a
// plain value object with the time passed in, so tests drive it with numbers.
// The sinks that apply all this live in daemon/service/logging.h; this header
// does not depend on spdlog.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace polar {

// ---- Secret redaction -----------------------------------------------------

// What a secret is replaced with in every log line.
inline constexpr std::string_view kRedacted = "[redacted]";

// Remembers `secret` (the API token, the webhook secret) so every later log
// line has it replaced by kRedacted. Secrets shorter than 6 bytes are ignored:
// a real Polar token is ~50 bytes, and scrubbing a 1-byte "secret" from every
// line would make the logs unreadable without protecting anything. At most the
// 16 most recent distinct secrets are kept (a reload may bring a new token; the
// old one may still echo back from requests in flight).
void RegisterSecret(std::string secret);
// `text` with every registered secret replaced by kRedacted.
std::string Redact(std::string_view text);
// True if `text` contains a registered secret (the cheap check before a copy).
bool ContainsSecret(std::string_view text);
// Tests only: forgets every registered secret.
void ClearSecretsForTesting();

// ---- Rate limiting ----------------------------------------------------------

// A token bucket per message key: `burst` messages pass at once, then one per
// `refill`. Keys are built from fixed sets (scenario/step/outcome), never from
// ids or error text; more than `max_keys` distinct keys share one overflow
// bucket, so memory stays bounded whatever the caller passes.
class LogLimiter {
 public:
  using Time = std::chrono::steady_clock::time_point;
  struct Options {
    // 5 at once, then one per 10 s: a storm of 20,000 errors/s becomes
    // 6 lines a minute per key, enough to see what is wrong.
    int burst = 5;
    std::chrono::nanoseconds refill = std::chrono::seconds(10);
    std::size_t max_keys = 1024;
  };

  LogLimiter() : LogLimiter(Options{}) {}
  explicit LogLimiter(Options options) : options_(options) {}

  // True if a message with `key` may be logged at `now`. Then *suppressed is
  // the number of messages of this key dropped since the last one that passed
  // (to print as "suppressed N similar messages"), and the count restarts.
  bool Allow(std::string_view key, Time now, uint64_t* suppressed);

  // For keys that dropped messages and could log again at `now`: calls
  // report(key, suppressed) and consumes a token, so a storm that stopped
  // still ends with a line saying how much was not shown.
  void Flush(Time now, const std::function<void(const std::string& key,
                                                uint64_t suppressed)>& report);

 private:
  struct Bucket {
    double tokens = 0;
    Time updated{};
    uint64_t suppressed = 0;
  };
  Bucket& Find(std::string_view key, Time now);
  void Refill(Bucket& bucket, Time now) const;

  Options options_;
  std::map<std::string, Bucket, std::less<>> buckets_;
};

// The process-wide limiter for error logs that can repeat at request rate
// (failed requests, failed reloads are not among them: each of those is
// logged). Thread-safe wrapper around one LogLimiter.
bool AllowErrorLog(std::string_view key, LogLimiter::Time now,
                   uint64_t* suppressed);
void FlushErrorLogs(LogLimiter::Time now,
                    const std::function<void(const std::string& key,
                                             uint64_t suppressed)>& report);
// " (suppressed N similar messages)" or "" when N is 0.
std::string SuppressedSuffix(uint64_t suppressed);

// ---- Structured fields
// --------------------------------------------------------

// Extra journal fields for the log lines written while an instance is alive
// on this thread, e.g. {"POLAR_SCENARIO", "ingest"}. Names follow journald's
// rules (upper case, digits, underscore; not starting with an underscore).
// The journal sink adds them to each entry; the terminal sink ignores them,
// because the message text already says the same for a human.
class ScopedLogFields {
 public:
  explicit ScopedLogFields(
      std::initializer_list<std::pair<std::string, std::string>> fields);
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

 private:
  std::size_t previous_size_;
};
// The fields in effect on this thread, outermost first.
const std::vector<std::pair<std::string, std::string>>& CurrentLogFields();

}  // namespace polar
