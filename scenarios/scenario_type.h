// ScenarioType: one kind of scenario, described once next to its code: the
// keys of its [scenarios.NAME] table with their defaults, how they are read
// and validated, the steps it records, what one arrival asks of Polar, its
// factory and its one-line description. scenarios/registry.h lists the types;
// adding one is its own files plus one line there (docs/architecture.md).
//
// The descriptions are static data, read from any thread. Parse() runs where
// the config is loaded (main at start, the loop thread on SIGHUP) with a
// ScenarioConfigReader that the config library (daemon/config) implements
// over the TOML table, so this layer never sees TOML and every problem still
// comes out as file:line:col plus key path, all at once. Make() runs on the
// loop thread.
#pragma once

#include <algorithm>
#include <any>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exporters/clock.h"
#include "scenarios/scenario.h"
#include "scenarios/shard.h"

namespace polar {

// One key of a scenario type's table. `name` is relative to the table;
// a dot means a sub-table ("funnel.update"), whose other keys are then
// refused like any unknown key. `default_value` is how TOML would write the
// default ("7", "\"1s\""): a unit test parses each one back and compares it
// with the default-constructed options, so the two cannot drift. Empty: no
// default (required, or unset means "off").
struct ConfigKey {
  std::string_view name;
  std::string_view kind;  // for people: "integer", "duration", "share", ...
  std::string_view default_value;
};

// How a scenario type reads its own keys. Keys are relative to the scenario
// table, dotted for sub-tables. Every getter returns nullopt when the key is
// absent, and also (after recording a located error) when the value has the
// wrong type or is out of range, so a parser simply keeps its default and
// carries on: all problems are reported in one pass. Asking for a key the
// type did not declare is an error too (a test reads every declared key).
class ScenarioConfigReader {
 public:
  virtual ~ScenarioConfigReader() = default;

  // "scenarios.NAME": the prefix of every key path in messages.
  virtual const std::string& path() const = 0;
  // This instance's share of the cluster ([cluster] is read first).
  virtual Shard shard() const = 0;

  virtual bool Has(std::string_view key) const = 0;
  virtual std::optional<std::string> String(std::string_view key) = 0;
  virtual std::optional<bool> Bool(std::string_view key) = 0;
  virtual std::optional<int64_t> Int(std::string_view key, int64_t min,
                                     int64_t max) = 0;
  // A duration string ("250ms", "1m") in [min, max].
  virtual std::optional<Duration> DurationIn(std::string_view key, Duration min,
                                             Duration max) = 0;
  // A number in [0, 1].
  virtual std::optional<double> Share(std::string_view key) = 0;
  // An array of non-empty strings.
  virtual std::optional<std::vector<std::string>> Strings(
      std::string_view key) = 0;
  // True when the key holds a table / the boolean false (no error either way).
  virtual bool IsTable(std::string_view key) const = 0;
  virtual bool IsFalse(std::string_view key) const = 0;

  // A problem with `key`: placed at its value, or at the nearest enclosing
  // table that is present when the key itself is missing.
  virtual void Error(std::string_view key, std::string message) = 0;

  // The environment (LOAD_TEST_* overrides of the type's keys).
  virtual std::optional<std::string> Env(const char* name) = 0;
  // An integer variable in [min, max]; a bad value is an error keyed
  // "env NAME".
  virtual std::optional<int64_t> EnvInt(const char* name, int64_t min,
                                        int64_t max) = 0;
  virtual void EnvError(const char* name, std::string message) = 0;
  // "LOAD_TEST_X overrides scenarios.NAME.key": logged at start.
  virtual void Note(std::string note) = 0;
};

// The rate-limit buckets Polar counts a request in (docs/polar-api.md §5):
// the organization (every request with the token), the client IP in the
// catch-all zone (the checkout page's steps, which carry no token) and the
// client IP in the confirm zone (6/min and 20/h, then a 30-minute block).
enum class PolarBucket { kOrganization, kClientIp, kConfirm };

// Per arrival: `requests` requests in `bucket`, sent with probability `share`
// (drawn independently of the arrival's other parts).
struct PolarRequests {
  PolarBucket bucket = PolarBucket::kOrganization;
  double share = 1;
  double requests = 1;
};

// What one arrival of a scenario asks of Polar's rate limits, for
// --check-config (daemon/config/polar_limits.h, docs/sandbox.md). Polls count
// for a typical wait (`wait_note` says how long), not for the deadline.
struct PolarLoad {
  std::vector<PolarRequests> parts;
  std::string wait_note;  // "" or e.g. "2 s of polling per checkout"
};

// Polls of an interval within a deadline in a wait of `wait_seconds`: the
// first at once, then one per interval, never more than the deadline allows.
inline double PollsForWait(Duration interval, Duration deadline,
                           double wait_seconds) {
  const double step = ToSeconds(interval);
  const double most = std::max(1.0, ToSeconds(deadline) / step);
  return std::min(most, 1 + std::ceil(wait_seconds / step));
}

struct ScenarioType {
  std::string_view name;           // the `type` value, e.g. "checkout"
  std::string_view summary;        // one line: what an arrival sends
  std::vector<ConfigKey> keys;     // its own keys; the common ones are config's
  std::vector<std::string> steps;  // the `step` label values it records
  // The keys a table of this type cannot do without, as TOML lines (besides
  // `type` and `rate`): e.g. checkout's product_id. Tests start from it.
  std::string_view required_example;
  // Reads and validates the type's keys into its options struct (returned in
  // the std::any, which the functions below receive back).
  std::any (*parse)(ScenarioConfigReader& reader);
  std::unique_ptr<Scenario> (*make)(ScenarioContext context,
                                    const std::any& options);
  PolarLoad (*load)(const std::any& options);
  // Whether two parsed option sets are the same (SameOptions<T> below).
  bool (*same)(const std::any& a, const std::any& b);
};

// ScenarioType::same for an options struct with operator==.
template <typename Options>
bool SameOptions(const std::any& a, const std::any& b) {
  return std::any_cast<const Options&>(a) == std::any_cast<const Options&>(b);
}

}  // namespace polar
