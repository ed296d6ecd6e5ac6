// What a configuration asks of Polar's rate limits (docs/polar-api.md §5):
// per bucket (an identity in a zone), how many requests the scenarios send
// per minute and per hour at their peak rates, against the limits of the
// target's host.
//
// Buckets, as Polar counts them: the organization (every request with the
// token: creates, polls, ingests, webhook registration), the load box's IP in
// the catch-all zone (the checkout page's steps without a token: update,
// status, stream) and in the confirm zone (6/min and 20/h, then 30 minutes in
// which every request of that IP is refused), and a token's pending_auth
// minute. The counts are random where the funnel is: besides the mean, each
// line gives the most a window almost ever sees (mean + 4 standard deviations
// of the funnel's draws), and a limit "would trip" when that exceeds it.
//
// Pure functions of an immutable Config; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/config/config.h"

namespace polar {

enum class PolarHost { kProduction, kSandbox, kOther };
// From target.base_url: https://api.polar.sh, https://sandbox-api.polar.sh,
// anything else (a local Polar, a staging stack, polar-sim).
PolarHost HostOf(std::string_view base_url);

struct LimitReport {
  // One line per bucket and window: what is sent against what is allowed.
  std::vector<std::string> lines;
  // A sentence per limit the config would trip, naming the limit.
  std::vector<std::string> trips;
};

// Against `host`'s limits (kOther: sandbox's, as a reference).
LimitReport CheckPolarLimits(const Config& config, PolarHost host);

}  // namespace polar
