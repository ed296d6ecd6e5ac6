// Small builders several unit tests share: an environment lookup over a fixed
// map (config and cluster tests never read the process environment), a
// constant-rate runner plan, and a monotonic time point at an offset.
//
// Header-only; any thread. Test support only.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "daemon/config/config.h"
#include "daemon/schedule/scheduler.h"
#include "exporters/clock.h"

namespace polar::testing {

// An EnvLookup that sees `vars` and nothing else.
inline EnvLookup FakeEnv(std::map<std::string, std::string> vars = {}) {
  return
      [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
      };
}

inline RunnerPlan ConstantPlan(double rate) {
  RunnerPlan plan;
  plan.schedule.kind = ScheduleKind::kConstant;
  plan.schedule.rate = rate;
  return plan;
}

// The monotonic time `d` after the clock's zero, for tests on fake clocks.
inline MonoTime MonoAt(Duration d) { return MonoTime{} + d; }

}  // namespace polar::testing
