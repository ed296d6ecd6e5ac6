// ParseRetryAfter: the value of an HTTP Retry-After header (RFC 9110 §10.2.3)
// as a wait from `now`.
//
// Pure function, any thread; the HttpEngine calls it from its header callback
// on the loop thread. The value comes from the target, so it is untrusted
// input: it is parsed without exceptions and without overflow, whatever it is.
#pragma once

#include <optional>
#include <string_view>

#include "exporters/clock.h"

namespace polar {

// Waits longer than this saturate here. The scheduler clamps further to
// max_retry_after (30 min by default, at most 24 h), so the only job of this
// cap is to keep the arithmetic in range: a Duration counts nanoseconds in an
// int64, which holds 292 years, and "Retry-After: 99999999999" (3,000 years)
// would otherwise wrap around to a negative wait, i.e. no pause at all.
inline constexpr Duration kMaxRetryAfter = std::chrono::hours(24 * 365);

// Either delay-seconds ("120") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00
// GMT"; the obsolete RFC 850 and asctime forms too). Surrounding blanks and a
// trailing CR LF are ignored. A date in the past is a wait of zero. Returns
// nullopt when the value is neither.
std::optional<Duration> ParseRetryAfter(std::string_view value, WallTime now);

}  // namespace polar
