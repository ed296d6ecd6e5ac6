// The scenario types polar-loadd knows (scenarios/scenario_type.h), in the
// order the docs and error messages list them. Static data; any thread.
#pragma once

#include <string_view>
#include <vector>

#include "scenarios/scenario_type.h"

namespace polar {

const std::vector<const ScenarioType*>& ScenarioTypes();
// The type whose `type` value is `name`, or null.
const ScenarioType* FindScenarioType(std::string_view name);

}  // namespace polar
