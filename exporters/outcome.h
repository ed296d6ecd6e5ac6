// Outcome: the fixed set of ways a request can end, used as the `outcome`
// label.
//
// Owned by nobody (value type). Any thread may call these functions; they are
// pure. The set is closed on purpose: labels come from fixed sets so the series
// count is bounded by construction (docs/metrics.md), and error detail goes to
// the rate-limited log, never to a label.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace polar {

enum class Outcome : unsigned char {
  kOk,
  kHttp4xx,
  kHttp5xx,
  kRateLimited,
  kTimeout,
  kConnectError,
  kTlsError,
  kInvalidResponse,
  kCheckFailed,
};

inline constexpr std::size_t kOutcomeCount = 9;

// The label value, e.g. "http_5xx".
std::string_view OutcomeName(Outcome outcome);

// Every outcome in label order; handy for pre-creating label children.
const std::array<Outcome, kOutcomeCount>& AllOutcomes();

// Maps an HTTP status to an outcome before any body check: 2xx is kOk, 429 is
// kRateLimited, other 4xx kHttp4xx, 5xx kHttp5xx, anything else (1xx, 3xx, 0)
// kInvalidResponse.
Outcome OutcomeFromStatus(long status);

}  // namespace polar
