#include "sim/middleware/rate_limit.h"

#include <regex>

namespace polar::sim {

struct RateLimiter::Zone {
  const char* name;
  // Every path the pattern matches starts with `prefix`; the regex (anchored
  // at the start, as Python's re.match) runs only then.
  std::string prefix;
  std::optional<std::regex> pattern;
  std::vector<Rule> rules;

  bool Matches(std::string_view path) const {
    if (path.substr(0, prefix.size()) != prefix) return false;
    if (!pattern) return true;
    return std::regex_search(path.begin(), path.end(), *pattern,
                             std::regex_constants::match_continuous);
  }
};

namespace {

constexpr auto kDefault = RateLimitGroup::kDefault;
constexpr auto kPending = RateLimitGroup::kPendingAuth;

// asgi-ratelimit's Rule.ruleset order: second, minute, hour.
struct WindowSpec {
  const char* name;
  int64_t period_seconds;
};
constexpr WindowSpec kWindows[] = {
    {"second", 1}, {"minute", 60}, {"hour", 3600}};

}  // namespace

std::optional<RateLimitIdentity> IdentityCache::Find(
    std::string_view token) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(std::string(token));
  if (it == entries_.end() || clock_.Now() - it->second.at >= ttl_)
    return std::nullopt;
  return it->second.identity;
}

void IdentityCache::Remember(std::string_view token,
                             RateLimitIdentity identity) {
  std::lock_guard lock(mutex_);
  if (entries_.size() > 10'000) entries_.clear();
  entries_[std::string(token)] = Entry{std::move(identity), clock_.Now()};
}

void IdentityCache::Forget(std::string_view token) {
  std::lock_guard lock(mutex_);
  entries_.erase(std::string(token));
}

bool ParseRateLimitMode(std::string_view text, RateLimitMode* out) {
  if (text == "off") {
    *out = RateLimitMode::kOff;
  } else if (text == "sandbox") {
    *out = RateLimitMode::kSandbox;
  } else if (text == "production") {
    *out = RateLimitMode::kProduction;
  } else {
    return false;
  }
  return true;
}

const char* ToString(RateLimitMode mode) {
  switch (mode) {
    case RateLimitMode::kOff:
      return "off";
    case RateLimitMode::kSandbox:
      return "sandbox";
    case RateLimitMode::kProduction:
      return "production";
  }
  return "off";
}

RateLimiter::RateLimiter(RateLimitMode mode, TimeScale scale)
    : mode_(mode), scale_(scale) {
  if (mode_ == RateLimitMode::kOff) return;
  auto zone = [&](const char* name, std::string prefix, const char* regex,
                  std::vector<Rule> rules) {
    Zone z{name, std::move(prefix), std::nullopt, std::move(rules)};
    if (regex) z.pattern.emplace(regex, std::regex::optimize);
    zones_.push_back(std::move(z));
  };
  // _BASE_RULES: the rules of groups default and pending_auth, the only ones
  // polar-sim's identities have (web, elevated and restricted need sessions or
  // a back-office setting).
  auto both = [](int64_t second, int64_t minute, int64_t hour, int64_t block) {
    return std::vector<Rule>{{kDefault, second, minute, hour, block},
                             {kPending, second, minute, hour, block}};
  };
  zone("login-code", "/v1/login-code", nullptr, both(0, 6, 12, 900));
  zone("auth-email-otp", "/v1/auth/email-otp", nullptr, both(0, 6, 12, 900));
  zone("auth-totp", "/v1/auth/totp", nullptr, both(0, 6, 12, 900));
  zone("auth-backup-codes", "/v1/auth/backup-codes", nullptr,
       both(0, 6, 12, 900));
  // Its second rule is for group web: pending_auth falls through to "api".
  zone("email-update", "/v1/email-update/",
       "^/v1/email-update/(request|verify)", {{kDefault, 0, 6, 12, 900}});
  zone("customer-session-login", "/v1/customer-portal/customer-session/",
       "^/v1/customer-portal/customer-session/(request|authenticate)",
       both(0, 6, 12, 900));
  zone("customer-email-update",
       "/v1/customer-portal/customers/me/email-update/",
       "^/v1/customer-portal/customers/me/email-update/(request|check|verify)",
       both(0, 6, 12, 900));
  zone("customer-license-key", "/v1/customer-portal/license-keys/",
       "^/v1/customer-portal/license-keys/(validate|activate|deactivate)",
       both(3, 0, 0, 60));
  zone("seat-claim-stream", "/v1/customer-seats/claim/",
       "^/v1/customer-seats/claim/.+/stream", both(0, 10, 0, 300));
  zone("checkout-confirm", "/v1/checkouts/", "^/v1/checkouts/.+/confirm",
       both(0, 6, 20, 1800));
  zone("payout-account-sync", "/v1/payout-accounts/",
       "^/v1/payout-accounts/[^/]+/sync", both(0, 10, 60, 0));
  zone("feedback-submit", "/v1/feedbacks/", nullptr, both(0, 0, 5, 3600));
  zone("compass-assistant", "/v1/compass/assistant", nullptr,
       both(0, 60, 500, 0));
  // The catch-all ^/v1 zone (_SANDBOX_RULES, _PRODUCTION_RULES).
  const int64_t per_minute = mode_ == RateLimitMode::kProduction ? 500 : 100;
  zone("api", "/v1", nullptr,
       {{kDefault, 0, per_minute, 0, 0}, {kPending, 0, 60, 0, 0}});
}

RateLimiter::~RateLimiter() = default;

std::vector<std::string> RateLimiter::zone_names() const {
  std::vector<std::string> out;
  for (const Zone& z : zones_) out.emplace_back(z.name);
  return out;
}

const RateLimiter::Rule* RateLimiter::FindRule(std::string_view path,
                                               RateLimitGroup group,
                                               const Zone** zone) const {
  for (const Zone& z : zones_) {
    if (!z.Matches(path)) continue;
    for (const Rule& r : z.rules) {
      if (r.group == group) {
        *zone = &z;
        return &r;
      }
    }
  }
  return nullptr;
}

void RateLimiter::PruneLocked(SteadyTime now) {
  if (windows_.size() + blocks_.size() < 100'000) return;
  std::erase_if(windows_,
                [&](const auto& kv) { return now >= kv.second.expires; });
  std::erase_if(blocks_, [&](const auto& kv) { return now >= kv.second; });
}

RateLimiter::Decision RateLimiter::Decide(std::string_view path,
                                          const RateLimitIdentity& who,
                                          SteadyTime now) {
  Decision d;
  if (mode_ == RateLimitMode::kOff) return d;
  const Zone* zone = nullptr;
  const Rule* rule = FindRule(path, who.group, &zone);
  if (!rule) return d;
  d.zone = zone->name;
  std::lock_guard lock(mutex_);
  PruneLocked(now);
  // is_blocking(): Redis TTL of blocking:{user}, in Polar's seconds rounded
  // to the nearest, as TTL reports it.
  if (auto b = blocks_.find(who.user); b != blocks_.end()) {
    if (now < b->second) {
      const double polar_ms =
          std::chrono::duration<double, std::milli>(b->second - now).count() /
          scale_.factor();
      const auto ttl = static_cast<int64_t>((polar_ms + 500) / 1000);
      if (ttl > 0) {
        d.limited = true;
        d.blocked = true;
        d.retry_after = ttl;
        return d;
      }
    } else {
      blocks_.erase(b);
    }
  }
  // The Lua script: create missing windows at the full limit, refuse if any
  // is spent (answering its period), else spend one of each.
  Window* windows[std::size(kWindows)] = {};
  const int64_t limits[] = {rule->second, rule->minute, rule->hour};
  for (std::size_t i = 0; i < std::size(kWindows); ++i) {
    if (limits[i] <= 0) continue;
    std::string key =
        std::string(zone->name) + ":*:" + who.user + ":" + kWindows[i].name;
    Window& w = windows_[key];
    if (now >= w.expires) {
      w.remaining = limits[i];
      w.expires =
          now + scale_(std::chrono::seconds(kWindows[i].period_seconds));
    }
    windows[i] = &w;
  }
  for (std::size_t i = 0; i < std::size(kWindows); ++i) {
    if (windows[i] && windows[i]->remaining < 1) {
      d.limited = true;
      d.retry_after = kWindows[i].period_seconds;
      break;
    }
  }
  if (!d.limited) {
    for (Window* w : windows)
      if (w) --w->remaining;
    return d;
  }
  if (rule->block_seconds > 0) {
    blocks_[who.user] = now + scale_(std::chrono::seconds(rule->block_seconds));
    d.retry_after = rule->block_seconds;
    d.block_started = true;
  }
  return d;
}

std::optional<int64_t> RateLimiter::Check(std::string_view path,
                                          const std::string& user,
                                          RateLimitGroup group,
                                          SteadyTime now) {
  Decision d = Decide(path, RateLimitIdentity{user, group}, now);
  if (!d.limited) return std::nullopt;
  return d.retry_after;
}

}  // namespace polar::sim
