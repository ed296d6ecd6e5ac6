#include "daemon/net/retry_after.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdint>
#include <string>

namespace polar {

std::optional<Duration> ParseRetryAfter(std::string_view value, WallTime now) {
  auto blank = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
  };
  while (!value.empty() && blank(value.front())) value.remove_prefix(1);
  while (!value.empty() && blank(value.back())) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;

  const int64_t cap_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(kMaxRetryAfter).count();
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    // delay-seconds, saturating: any number of digits is a valid value.
    int64_t seconds = 0;
    for (char c : value) {
      seconds = seconds * 10 + (c - '0');
      if (seconds >= cap_seconds) return kMaxRetryAfter;
    }
    return std::chrono::seconds(seconds);
  }
  // An HTTP-date. curl_getdate wants a C string; -1 means "not a date". The
  // difference is taken in whole seconds: a time_t in year 9999 is fine as
  // seconds but 2.5e20 as the nanoseconds of a system_clock time_point.
  const time_t when = curl_getdate(std::string(value).c_str(), nullptr);
  if (when == -1) return std::nullopt;
  const int64_t now_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch())
          .count();
  if (static_cast<int64_t>(when) - now_seconds >= cap_seconds)
    return kMaxRetryAfter;
  if (static_cast<int64_t>(when) < now_seconds - 1) return Duration::zero();
  // Both within a year of each other now: exact to the nanosecond.
  const Duration wait =
      std::chrono::seconds(static_cast<int64_t>(when)) -
      std::chrono::duration_cast<Duration>(now.time_since_epoch());
  return std::max(Duration::zero(), wait);
}

}  // namespace polar
