#include "scenarios/registry.h"

namespace polar {

// The registry: one line per scenario type, naming the function its
// NAME_type.cc defines. A new type is its own files plus one line here.
#define POLAR_SCENARIO_TYPES(X) \
  X(EventIngestionType)         \
  X(CheckoutType)               \
  X(EventVisibilityType)

#define POLAR_DECLARE_TYPE(fn) const ScenarioType& fn();
POLAR_SCENARIO_TYPES(POLAR_DECLARE_TYPE)
#undef POLAR_DECLARE_TYPE

const std::vector<const ScenarioType*>& ScenarioTypes() {
#define POLAR_LIST_TYPE(fn) &fn(),
  static const std::vector<const ScenarioType*> kTypes = {
      POLAR_SCENARIO_TYPES(POLAR_LIST_TYPE)};
#undef POLAR_LIST_TYPE
  return kTypes;
}

const ScenarioType* FindScenarioType(std::string_view name) {
  for (const ScenarioType* type : ScenarioTypes()) {
    if (type->name == name) return type;
  }
  return nullptr;
}

}  // namespace polar
