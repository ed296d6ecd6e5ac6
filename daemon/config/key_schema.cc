// ConfigKeySchema(): the file's accepted keys, printed from the same lists
// the parsers refuse other keys with (daemon/config/sections.h) and from the
// scenario types' own keys (scenarios/registry.h).
#include <fmt/format.h>

#include "daemon/config/config.h"
#include "daemon/config/sections.h"
#include "scenarios/registry.h"

namespace polar {

std::vector<std::string> ConfigKeySchema() {
  std::vector<std::string> out;
  auto add = [&](std::string_view prefix, const auto& keys) {
    for (std::string_view key : keys)
      out.push_back(fmt::format("{}.{}", prefix, key));
  };
  add("target", kTargetKeys);
  add("metrics", kMetricsKeys);
  add("control", kControlKeys);
  add("daemon", kDaemonKeys);
  add("cluster", kClusterKeys);
  add("webhooks", kWebhooksKeys);

  const std::string scenario = "scenarios.<name>";
  add(scenario, kScenarioCommonKeys);
  out.push_back(scenario + ".schedule.type");
  for (const ScheduleShape& shape : ScheduleShapes()) {
    const std::string table =
        fmt::format("{}.schedule:{}", scenario, shape.type);
    for (std::string_view key : shape.keys) {
      if (key == "type") continue;
      out.push_back(fmt::format("{}.{}", table, key));
      if (key == shape.items)
        add(fmt::format("{}.{}[]", table, key), shape.item_keys);
    }
  }
  add(scenario + ".thresholds.<step>", kThresholdKeys);
  for (const ScenarioType* type : ScenarioTypes()) {
    const std::string table = fmt::format("scenarios.<name:{}>", type->name);
    for (const ConfigKey& key : type->keys)
      out.push_back(fmt::format("{}.{}", table, key.name));
  }
  return out;
}

}  // namespace polar
