#include "sim/middleware/rate_limit.h"

#include <cmath>

namespace polar::sim {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

int64_t CeilSeconds(Duration d) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(Seconds(d))));
}

bool IsConfirmPath(std::string_view path) {
  // ^/v1/checkouts/.+/confirm
  constexpr std::string_view prefix = "/v1/checkouts/";
  if (path.substr(0, prefix.size()) != prefix) return false;
  auto pos = path.find("/confirm", prefix.size() + 1);
  return pos != std::string_view::npos;
}

}  // namespace

std::optional<std::string> IdentityCache::Find(std::string_view token) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(std::string(token));
  if (it == entries_.end() || clock_.Now() - it->second.at >= ttl_)
    return std::nullopt;
  return it->second.user;
}

void IdentityCache::Remember(std::string_view token, std::string user) {
  std::lock_guard lock(mutex_);
  if (entries_.size() > 10'000) entries_.clear();
  entries_[std::string(token)] = Entry{std::move(user), clock_.Now()};
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

std::optional<int64_t> RateLimiter::Hit(const std::string& key, int64_t limit,
                                        Duration period,
                                        SteadyClock::time_point now) {
  Window& w = windows_[key];
  if (w.count == 0 || now >= w.start + period) {
    w.start = now;
    w.count = 0;
  }
  ++w.count;
  if (w.count > limit) return CeilSeconds(w.start + period - now);
  return std::nullopt;
}

void RateLimiter::PruneLocked(SteadyClock::time_point now) {
  if (windows_.size() < 100'000) return;
  for (auto it = windows_.begin(); it != windows_.end();) {
    // No window is longer than an hour.
    if (now >= it->second.start + hours(1)) {
      it = windows_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = blocked_.begin(); it != blocked_.end();) {
    if (now >= it->second) {
      it = blocked_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<int64_t> RateLimiter::Check(std::string_view path,
                                          const std::string& identity,
                                          RateLimitGroup group,
                                          SteadyClock::time_point now) {
  if (mode_ == RateLimitMode::kOff) return std::nullopt;
  if (path.substr(0, 4) != "/v1/" && path != "/v1") return std::nullopt;
  std::lock_guard lock(mutex_);
  PruneLocked(now);
  const std::string who =
      (group == RateLimitGroup::kPendingAuth ? "pending_auth|" : "default|") +
      identity;
  if (IsConfirmPath(path)) {
    const std::string zone = "confirm|" + who;
    if (auto b = blocked_.find(zone); b != blocked_.end()) {
      if (now < b->second) return CeilSeconds(b->second - now);
      blocked_.erase(b);
    }
    auto per_minute = Hit(zone + "|m", 6, minutes(1), now);
    auto per_hour = Hit(zone + "|h", 20, hours(1), now);
    if (per_minute || per_hour) {
      // block_time=1800: the whole zone is closed for 30 minutes.
      auto until = now + minutes(30);
      blocked_[zone] = until;
      return CeilSeconds(until - now);
    }
    return std::nullopt;
  }
  int64_t limit = group == RateLimitGroup::kPendingAuth ? 60
                  : mode_ == RateLimitMode::kProduction ? 500
                                                        : 100;
  return Hit("api|" + who, limit, minutes(1), now);
}

}  // namespace polar::sim
