// RateLimiter: Polar's rate limits in the modes off, sandbox and production,
// as Polar configures them (server/polar/rate_limit.py) and as the library it
// pins, asgi-ratelimit 0.10.0 with its Redis backend, applies them
// (docs/polar-api.md §5):
//
// - Zones are tried in Polar's order, the special ones first (login, OTP,
//   customer portal, license keys, seat claims, checkout confirm
//   ^/v1/checkouts/.+/confirm, payout sync, feedback, assistant), then the
//   catch-all ^/v1 "api" zone. The first zone whose pattern matches the path
//   and that has a rule for the request's group wins; a zone without one falls
//   through to the next.
// - A rule has windows (second, minute, hour), each a counter keyed
//   zone:*:user:window that starts at the user's first request and lasts the
//   window's whole period (Redis SET NX EX). A request is refused when any
//   window is spent; only then are none decremented, so refused requests cost
//   nothing. Retry-After is the spent window's whole period (1, 60 or 3600 s),
//   not what is left of it.
// - A rule with a block time (confirm: 1800 s) that refuses a request blocks
//   the USER, not the zone (blocking:{user}): every later request of that
//   identity, in any zone, is refused until the block ends, with Retry-After
//   the block's remaining time (Redis TTL, rounded to the nearest second).
//   For anonymous client routes the user is the client IP, so a confirm block
//   refuses that IP's checkout GETs, PATCHes and streams too.
// - Identities (RateLimitIdentity): a token whose organization authenticated
//   in the last 300 s counts as "organization:<id>" in group default (100/min
//   in sandbox, 500/min in production); any other token as "token:<hash>" in
//   group pending_auth (60/min); no token as the client IP in group default.
//
// Every period and block is multiplied by the TimeScale (--time-scale), so a
// test covers an hour of Polar time in seconds; Retry-After stays in Polar's
// seconds, what Polar would send at that point of Polar time.
//
// Thread-safe (one mutex); off mode takes no lock. Bounded: expired windows
// and blocks are pruned once more than 100k keys exist.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sim/base/clock.h"

namespace polar::sim {

enum class RateLimitMode { kOff, kSandbox, kProduction };
bool ParseRateLimitMode(std::string_view text, RateLimitMode* out);
const char* ToString(RateLimitMode mode);

enum class RateLimitGroup { kDefault, kPendingAuth };

struct RateLimitIdentity {
  std::string user;  // "organization:<id>", "token:<hash>" or the client IP
  RateLimitGroup group = RateLimitGroup::kDefault;
};

// Polar's rl:ident: cache: a token that authenticated maps to its
// organization's identity for 300 s (× the time scale), refreshed by every
// authenticated request and cleared by a refused token. The limiter runs
// before authentication and reads only this. Thread-safe; bounded (cleared
// past 10,000 tokens, which costs only a pending_auth minute for the live
// ones).
class IdentityCache {
 public:
  IdentityCache(const Clock& clock, Duration ttl) : clock_(clock), ttl_(ttl) {}
  std::optional<RateLimitIdentity> Find(std::string_view token) const;
  void Remember(std::string_view token, RateLimitIdentity identity);
  void Forget(std::string_view token);

 private:
  struct Entry {
    RateLimitIdentity identity;
    SteadyTime at;
  };
  const Clock& clock_;
  Duration ttl_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

class RateLimiter {
 public:
  struct Decision {
    bool limited = false;
    int64_t retry_after = 0;  // Polar's seconds
    const char* zone = "";    // the zone that decided ("" when none matched)
    bool blocked = false;     // refused by the identity's block
    bool block_started = false;
  };

  explicit RateLimiter(RateLimitMode mode, TimeScale scale = TimeScale());
  ~RateLimiter();
  RateLimitMode mode() const { return mode_; }

  Decision Decide(std::string_view path, const RateLimitIdentity& who,
                  SteadyTime now);
  // Decide() as asgi-ratelimit's retry_after(): nullopt when the request may
  // pass, else the Retry-After seconds.
  std::optional<int64_t> Check(std::string_view path, const std::string& user,
                               RateLimitGroup group, SteadyTime now);

  // The zone names, for metric labels.
  std::vector<std::string> zone_names() const;

 private:
  struct Rule {
    RateLimitGroup group;
    int64_t second = 0, minute = 0, hour = 0;  // 0: no such window
    int64_t block_seconds = 0;                 // 0: no block
  };
  struct Zone;
  struct Window {
    int64_t remaining = 0;
    SteadyTime expires;
  };
  const Rule* FindRule(std::string_view path, RateLimitGroup group,
                       const Zone** zone) const;
  void PruneLocked(SteadyTime now);

  RateLimitMode mode_;
  TimeScale scale_;
  std::vector<Zone> zones_;
  std::mutex mutex_;
  std::unordered_map<std::string, Window> windows_;
  std::unordered_map<std::string, SteadyTime> blocks_;  // user -> end
};

}  // namespace polar::sim
