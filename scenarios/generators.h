// Data generators for the scenarios: the seed's power-law customer split, ISO
// timestamps, UUIDs, run ids, customer names and e-mail addresses.
//
// Pure functions and small value types; any thread may call them, each
// generator object is used by one scenario on the loop thread. Everything
// random takes an Rng (scenarios/random.h), so a seed reproduces the data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "exporters/clock.h"
#include "scenarios/random.h"

namespace polar {

// Polar's Locust suite (common/distribution.py) spreads events over customers
// "based on observed production patterns": the top customer gets 35%, items
// 2-5 share 43%, 6-10 share 12%, 11-20 share 6%, the rest share 4%. A
// customer's weight is its tier's share over the tier's full size, so a list
// shorter than 20 keeps the per-item weights of the tiers it reaches and the
// whole is normalised (3 customers: 35 : 10.75 : 10.75, i.e. 61.9% / 19.0% /
// 19.0%). Cumulative shares for 21+ customers: top 1 = 35%, top 5 = 78%,
// top 10 = 90%.
class PowerLawPicker {
 public:
  explicit PowerLawPicker(std::size_t n);
  // An index in [0, n); n must be > 0.
  std::size_t Pick(Rng& rng) const;
  // The normalised probability of each index.
  static std::vector<double> Weights(std::size_t n);

 private:
  std::vector<double> cumulative_;  // ends at 1.0
};

// "2026-08-22T10:11:12.345Z": the form Polar accepts for timestamps (timezone
// aware) and for the start_timestamp query parameter (no '+' to escape).
std::string FormatIsoUtc(WallTime t);

// A random version-4 UUID in canonical lower-case form.
std::string RandomUuid(Rng& rng);

// A short hex id that differs between runs (wall clock in microseconds and 16
// bits of the seeded generator), so ids derived from it (external_ids, probe
// ids, e-mail tags) never repeat across restarts of the daemon.
std::string MakeRunId(WallTime now, Rng& rng);

// "First Last" from small fixed lists (~1,000 combinations).
std::string RandomCustomerName(Rng& rng);

// Checks an e-mail address the way Polar's validator would before its DNS
// lookup: one '@', a non-empty local part, a domain with a dot, and not a
// special-use domain (example.com/.net/.org, .example, .test, .invalid,
// .localhost, .local, .onion, .arpa), which Polar refuses (docs/polar-api.md
// §2.2). False with a reason in *why.
bool CheckCustomerEmail(std::string_view email, std::string* why);

// base "loadtest@polar.sh", tag "1a2b-7" -> "loadtest+1a2b-7@polar.sh"; a
// base that already has a +tag gets "-<tag>" appended to it instead
// ("petru+loadtest@polar.sh" -> "petru+loadtest-1a2b-7@polar.sh"). The domain
// stays the configured, deliverable one.
std::string TaggedEmail(std::string_view base, std::string_view tag);

std::string AsciiLower(std::string_view s);

}  // namespace polar
