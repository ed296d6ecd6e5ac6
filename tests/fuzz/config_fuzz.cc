// Fuzz target: the daemon's config loader on arbitrary text (ParseConfig:
// TOML syntax, every key's validation, schedules, time zones, thresholds,
// environment overrides), then the schedule math a valid config drives: each
// scenario's arrival process is stepped through its first arrivals, whose
// intended times must never go backwards.
//
// Lines "#! NAME=value" at the top set environment variables (LOAD_TEST_*);
// they are TOML comments, so the rest of the file parses unchanged.
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "daemon/config/config.h"
#include "daemon/schedule/arrivals.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/support/unit_fixtures.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> env;
  std::size_t pos = 0;
  while (text.substr(pos, 2) == "#!") {
    const std::size_t end = text.find('\n', pos);
    const std::string_view line = text.substr(
        pos + 2, end == std::string_view::npos ? end : end - pos - 2);
    const std::size_t eq = line.find('=');
    if (eq != std::string_view::npos)
      env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  const polar::EnvLookup lookup = polar::testing::FakeEnv(std::move(env));

  polar::ConfigResult r = polar::ParseConfig(text, "fuzz.toml", lookup);
  if (r.config && !r.errors.empty()) std::abort();  // all or nothing
  if (!r.config && r.errors.empty()) std::abort();
  for (const auto& e : r.errors) (void)e.ToString();
  if (!r.config) return 0;

  const polar::MonoTime origin{std::chrono::hours(1)};
  const polar::WallTime wall{std::chrono::seconds(1'767'225'600)};
  for (const polar::ScenarioConfig& s : r.config->scenarios) {
    (void)s.schedule.PeakRate();
    polar::ArrivalProcess process(s.schedule, s.arrivals, s.seed, origin, wall);
    polar::MonoTime last = origin;
    for (int i = 0; i < 64 && process.next() != polar::MonoTime::max(); ++i) {
      if (process.next() < last) std::abort();  // time went backwards
      last = process.next();
      (void)process.RateAt(last);
      (void)process.RemainingWork(last);
      process.Advance();
    }
  }
  return 0;
}
