// RateLimiter: Polar's rate limits (docs/polar-api.md §5) in the modes
// off, sandbox and production. Zones are checked in Polar's order: the confirm
// zone
// (^/v1/checkouts/.+/confirm: 6/min and 20/h, then a 30-minute block, for the
// default and pending_auth groups), then the catch-all ^/v1 zone (default
// group 500/min in production, 100/min in sandbox; pending_auth 60/min).
// Windows are fixed and start at a key's first request, as with
// asgi-ratelimit's Redis counters. Blocked requests get 429 with an empty
// body and Retry-After.
//
// Thread-safe (one mutex); off mode takes no lock. Bounded: expired windows are
// pruned once more than 100k keys exist. `now` is passed in so tests can use
// a fake clock.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sim/base/clock.h"

namespace polar::sim {

enum class RateLimitMode { kOff, kSandbox, kProduction };
bool ParseRateLimitMode(std::string_view text, RateLimitMode* out);
const char* ToString(RateLimitMode mode);

enum class RateLimitGroup { kDefault, kPendingAuth };

// Polar's rl:ident: cache (server/polar/rate_limit.py): a token that
// authenticated maps to its rate-limit user ("organization:<id>") for 300 s,
// refreshed by every authenticated request. The limiter runs before
// authentication and reads only this. Thread-safe; bounded (cleared past
// 10,000 tokens, which costs only a pending_auth minute for the live ones).
class IdentityCache {
 public:
  explicit IdentityCache(const Clock& clock,
                         Duration ttl = std::chrono::seconds(300))
      : clock_(clock), ttl_(ttl) {}
  std::optional<std::string> Find(std::string_view token) const;
  void Remember(std::string_view token, std::string user);

 private:
  struct Entry {
    std::string user;
    SteadyTime at;
  };
  const Clock& clock_;
  Duration ttl_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimitMode mode) : mode_(mode) {}
  RateLimitMode mode() const { return mode_; }

  // nullopt when allowed; otherwise the Retry-After seconds.
  std::optional<int64_t> Check(std::string_view path,
                               const std::string& identity,
                               RateLimitGroup group,
                               SteadyClock::time_point now);

 private:
  struct Window {
    SteadyClock::time_point start;
    int64_t count = 0;
  };
  std::optional<int64_t> Hit(const std::string& key, int64_t limit,
                             Duration period, SteadyClock::time_point now);
  void PruneLocked(SteadyClock::time_point now);

  RateLimitMode mode_;
  std::mutex mutex_;
  std::unordered_map<std::string, Window> windows_;
  std::unordered_map<std::string, SteadyClock::time_point> blocked_;
};

}  // namespace polar::sim
