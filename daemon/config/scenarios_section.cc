// [scenarios.NAME]: the keys every scenario takes (type, rate or schedule,
// arrivals, caps, thresholds), and the TOML side of ScenarioConfigReader,
// through which each scenario type reads its own keys
// (scenarios/scenario_type.h, daemon/config/sections.h).
#include <fmt/format.h>

#include <algorithm>

#include "daemon/config/sections.h"
#include "scenarios/registry.h"

namespace polar {
namespace {

// A scenario type's view of its table: keys relative to the table, dotted for
// sub-tables, every problem recorded by the Checker with its place.
class TomlScenarioReader final : public ScenarioConfigReader {
 public:
  TomlScenarioReader(Checker& c, const toml::table& table, std::string path,
                     const ScenarioType& type, const EnvLookup& env,
                     Shard shard, std::vector<std::string>& notes)
      : c_(c),
        table_(table),
        path_(std::move(path)),
        type_(type),
        env_(env),
        shard_(shard),
        notes_(notes) {}

  const std::string& path() const override { return path_; }
  Shard shard() const override { return shard_; }

  bool Has(std::string_view key) const override { return Node(key) != nullptr; }
  std::optional<std::string> String(std::string_view key) override {
    const toml::table* t = Parent(key);
    return t ? c_.String(*t, ParentPath(key), Leaf(key)) : std::nullopt;
  }
  std::optional<bool> Bool(std::string_view key) override {
    const toml::table* t = Parent(key);
    return t ? c_.Bool(*t, ParentPath(key), Leaf(key)) : std::nullopt;
  }
  std::optional<int64_t> Int(std::string_view key, int64_t min,
                             int64_t max) override {
    const toml::table* t = Parent(key);
    return t ? c_.Int(*t, ParentPath(key), Leaf(key), min, max) : std::nullopt;
  }
  std::optional<Duration> DurationIn(std::string_view key, Duration min,
                                     Duration max) override {
    const toml::table* t = Parent(key);
    return t ? c_.DurationValue(*t, ParentPath(key), Leaf(key), min, max)
             : std::nullopt;
  }
  std::optional<double> Share(std::string_view key) override {
    const toml::table* t = Parent(key);
    return t ? c_.ShareValue(*t, ParentPath(key), Leaf(key), "e.g. 0.5")
             : std::nullopt;
  }
  std::optional<std::vector<std::string>> Strings(
      std::string_view key) override {
    const toml::node* node = Node(key);
    if (!node) return std::nullopt;
    const toml::array* arr = node->as_array();
    if (!arr) {
      c_.Error(node, Checker::Join(path_, key), "must be an array of strings");
      return std::nullopt;
    }
    std::vector<std::string> out;
    bool ok = true;
    for (const auto& item : *arr) {
      if (auto s = item.value_exact<std::string>(); s && !s->empty()) {
        out.push_back(*s);
      } else {
        c_.Error(&item, Checker::Join(path_, key),
                 "every item must be a non-empty string");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }
  bool IsTable(std::string_view key) const override {
    const toml::node* node = Node(key);
    return node && node->is_table();
  }
  bool IsFalse(std::string_view key) const override {
    const toml::node* node = Node(key);
    auto v = node ? node->value_exact<bool>() : std::nullopt;
    return v && !*v;
  }

  void Error(std::string_view key, std::string message) override {
    // At the key, or at the nearest enclosing table that is there.
    const toml::node* at = &table_;
    std::string_view rest = key;
    const toml::table* t = &table_;
    while (t) {
      const std::size_t dot = rest.find('.');
      const toml::node* next = t->get(rest.substr(0, dot));
      if (!next) break;
      at = next;
      if (dot == std::string_view::npos) break;
      rest.remove_prefix(dot + 1);
      t = next->as_table();
    }
    c_.Error(at, Checker::Join(path_, key), std::move(message));
  }

  std::optional<std::string> Env(const char* name) override {
    return env_(name);
  }
  std::optional<int64_t> EnvInt(const char* name, int64_t min,
                                int64_t max) override {
    return polar::EnvInt(c_, env_, name, min, max);
  }
  void EnvError(const char* name, std::string message) override {
    c_.Error(nullptr, fmt::format("env {}", name), std::move(message));
  }
  void Note(std::string note) override { notes_.push_back(std::move(note)); }

 private:
  // The table that holds `key` ("funnel.update": the funnel table), or null
  // when it is absent or not a table. A key the type did not declare is a
  // bug in the type, reported like a config error so a test sees it.
  const toml::table* Parent(std::string_view key) {
    if (!Declared(key)) {
      c_.Error(nullptr, Checker::Join(path_, key),
               fmt::format("scenario type {} reads a key it does not declare",
                           type_.name));
      return nullptr;
    }
    const std::size_t dot = key.rfind('.');
    if (dot == std::string_view::npos) return &table_;
    const toml::node* node = Node(key.substr(0, dot));
    return node ? node->as_table() : nullptr;
  }
  std::string ParentPath(std::string_view key) const {
    const std::size_t dot = key.rfind('.');
    return dot == std::string_view::npos
               ? path_
               : Checker::Join(path_, key.substr(0, dot));
  }
  static std::string_view Leaf(std::string_view key) {
    const std::size_t dot = key.rfind('.');
    return dot == std::string_view::npos ? key : key.substr(dot + 1);
  }
  const toml::node* Node(std::string_view key) const {
    const toml::node* node = &table_;
    while (node) {
      const toml::table* t = node->as_table();
      if (!t) return nullptr;
      const std::size_t dot = key.find('.');
      node = t->get(key.substr(0, dot));
      if (dot == std::string_view::npos) return node;
      key.remove_prefix(dot + 1);
    }
    return nullptr;
  }
  bool Declared(std::string_view key) const {
    return std::any_of(type_.keys.begin(), type_.keys.end(),
                       [&](const ConfigKey& k) { return k.name == key; });
  }

  Checker& c_;
  const toml::table& table_;
  std::string path_;
  const ScenarioType& type_;
  const EnvLookup& env_;
  Shard shard_;
  std::vector<std::string>& notes_;
};

// Refuses keys that are neither common nor the type's, in the scenario table
// and in each sub-table the type declares ("funnel" for "funnel.update").
void CheckScenarioKeys(Checker& c, const toml::table& t, const std::string& p,
                       const ScenarioType& type) {
  std::vector<std::string_view> top(kScenarioCommonKeys.begin(),
                                    kScenarioCommonKeys.end());
  for (const ConfigKey& key : type.keys) {
    if (key.name.find('.') == std::string_view::npos) top.push_back(key.name);
  }
  c.OnlyKeys(t, p, top);
  for (const ConfigKey& key : type.keys) {
    if (key.name.find('.') != std::string_view::npos) continue;
    const toml::table* sub = t.get_as<toml::table>(key.name);
    if (!sub) continue;
    std::vector<std::string_view> inner;
    for (const ConfigKey& k : type.keys) {
      if (k.name.size() > key.name.size() + 1 && k.name.starts_with(key.name) &&
          k.name[key.name.size()] == '.') {
        inner.push_back(k.name.substr(key.name.size() + 1));
      }
    }
    if (!inner.empty()) c.OnlyKeys(*sub, Checker::Join(p, key.name), inner);
  }
}

// "\"a\", \"b\" or \"c\"": the type names, for messages.
std::string TypeNames() {
  std::string out;
  const auto& types = ScenarioTypes();
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (i) out += i + 1 == types.size() ? " or " : ", ";
    out += fmt::format("\"{}\"", types[i]->name);
  }
  return out;
}

std::optional<ArrivalKind> ParseArrivalKind(std::string_view text) {
  if (text == "uniform") return ArrivalKind::kUniform;
  if (text == "poisson") return ArrivalKind::kPoisson;
  return std::nullopt;
}

// [scenarios.NAME.thresholds.STEP] tables: p50/p90/p99/max latency limits and
// error_ratio.
void ParseThresholds(Checker& c, const toml::table& t, const std::string& p,
                     ScenarioConfig& s) {
  const toml::node* node = t.get("thresholds");
  if (!node) return;
  const toml::table* all = node->as_table();
  if (!all) {
    c.Error(node, p + ".thresholds", "must be a table of steps");
    return;
  }
  const auto& steps = s.type->steps;
  for (const auto& [key, step_node] : *all) {
    std::string step(key.str());
    std::string sp = fmt::format("{}.thresholds.{}", p, step);
    if (std::find(steps.begin(), steps.end(), step) == steps.end()) {
      std::string known;
      for (const auto& k : steps) known += (known.empty() ? "" : ", ") + k;
      c.Error(&step_node, sp,
              fmt::format("this scenario has no step \"{}\"; its steps: {}",
                          step, known));
      continue;
    }
    const toml::table* st = step_node.as_table();
    if (!st) {
      c.Error(&step_node, sp, "must be a table, e.g. { p99 = \"1s\" }");
      continue;
    }
    c.OnlyKeys(*st, sp, kThresholdKeys);
    const std::pair<std::string_view, ThresholdMetric> latency[] = {
        {"p50", ThresholdMetric::kLatencyP50},
        {"p90", ThresholdMetric::kLatencyP90},
        {"p99", ThresholdMetric::kLatencyP99},
        {"max", ThresholdMetric::kLatencyMax}};
    for (const auto& [k, metric] : latency) {
      if (auto d = c.DurationValue(*st, sp, k, std::chrono::milliseconds(1),
                                   std::chrono::hours(1))) {
        s.thresholds.push_back(Threshold{s.name, step, metric, ToSeconds(*d),
                                         Checker::Join(sp, k)});
      }
    }
    if (auto v = c.ShareValue(*st, sp, "error_ratio", "e.g. 0.01 for 1%")) {
      s.thresholds.push_back(Threshold{
          s.name, step, ThresholdMetric::kErrorRatio, *v, sp + ".error_ratio"});
    }
  }
}

// The Locust suite's threshold variables (ms) become p99 latency limits on
// the matching steps of every scenario, replacing a p99 from the file.
void ApplyEnvThresholds(Checker& c, const EnvLookup& env, ScenarioConfig& s,
                        std::vector<std::string>& notes) {
  static const std::pair<const char*, std::vector<std::string>> kVars[] = {
      {"LOAD_TEST_CHECKOUT_CREATE_THRESHOLD", {"create"}},
      {"LOAD_TEST_CHECKOUT_CONFIRM_THRESHOLD", {"confirm"}},
      {"LOAD_TEST_LIST_THRESHOLD", {"list", "status"}},
      {"LOAD_TEST_EVENT_INGEST_THRESHOLD", {"ingest"}},
  };
  const auto& steps = s.type->steps;
  for (const auto& [var, targets] : kVars) {
    auto ms = EnvInt(c, env, var, 1, 3'600'000);
    if (!ms) continue;
    for (const std::string& step : targets) {
      if (std::find(steps.begin(), steps.end(), step) == steps.end()) continue;
      std::erase_if(s.thresholds, [&](const Threshold& t) {
        return t.step == step && t.metric == ThresholdMetric::kLatencyP99;
      });
      s.thresholds.push_back(Threshold{
          s.name, step, ThresholdMetric::kLatencyP99, *ms / 1000.0, var});
      notes.push_back(
          fmt::format("{} sets the p99 limit of {}/{}", var, s.name, step));
    }
  }
}

// The keys every scenario takes, after its type's own.
void ParseCommonKeys(Checker& c, const toml::table& t, const toml::node& node,
                     const std::string& p, ScenarioConfig& s) {
  const toml::node* schedule = t.get("schedule");
  if (schedule && t.get("rate")) {
    c.Error(t.get("rate"), p + ".rate",
            "set rate (a constant rate) or a schedule table, not both");
  }
  if (schedule) {
    if (const toml::table* st = schedule->as_table()) {
      ParseSchedule(c, *st, p + ".schedule", s.schedule);
    } else {
      c.Error(schedule, p + ".schedule",
              "must be a table, e.g. [scenarios.NAME.schedule]");
    }
  } else if (auto r = c.RateValue(t, p, "rate")) {
    s.schedule.kind = ScheduleKind::kConstant;
    s.schedule.rate = *r;
  } else if (!t.get("rate")) {
    c.Error(&node, p + ".rate",
            "missing; e.g. rate = \"1/s\", or a [" + p + ".schedule] table");
  }
  if (auto a = c.String(t, p, "arrivals")) {
    if (auto kind = ParseArrivalKind(*a)) {
      s.arrivals = *kind;
    } else {
      c.Error(t.get("arrivals"), p + ".arrivals",
              fmt::format("\"{}\" is not uniform or poisson", *a));
    }
  }
  if (auto v = c.Int(t, p, "max_in_flight", 1, 1'000'000))
    s.max_in_flight = static_cast<int>(*v);
  if (auto v = c.Int(t, p, "seed", 0, INT64_MAX))
    s.seed = static_cast<uint64_t>(*v);
  if (auto v = c.Bool(t, p, "honour_retry_after")) s.honour_retry_after = *v;
  if (auto v = c.DurationValue(t, p, "max_retry_after", Duration::zero(),
                               std::chrono::hours(24))) {
    s.max_retry_after = *v;
  }
}

}  // namespace

void ParseScenarios(Checker& c, const toml::table& root, const EnvLookup& env,
                    Shard shard, std::vector<ScenarioConfig>& scenarios,
                    std::vector<std::string>& notes) {
  const toml::table* all = SubTable(c, root, "scenarios");
  if (!all || all->empty()) {
    c.Error(nullptr, "scenarios",
            "no scenarios configured; add a [scenarios.NAME] table");
    return;
  }
  for (const auto& [key, node] : *all) {
    std::string name(key.str());
    std::string p = "scenarios." + name;
    const toml::table* t = node.as_table();
    if (!t) {
      c.Error(&node, p, "must be a table");
      continue;
    }
    // The name is a label value: keep it to a safe, short alphabet.
    bool safe = !name.empty() && name.size() <= 64;
    for (char ch : name) {
      safe = safe && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                      ch == '_' || ch == '-');
    }
    if (!safe) {
      c.Error(&node, p, "scenario names use 1-64 of a-z, 0-9, _ and -");
    }
    ScenarioConfig s;
    s.name = name;
    auto type_name = c.String(*t, p, "type");
    if (!type_name) {
      if (!t->get("type"))
        c.Error(&node, p + ".type", "missing; use " + TypeNames());
      continue;
    }
    s.type = FindScenarioType(*type_name);
    if (!s.type) {
      c.Error(t->get("type"), p + ".type",
              fmt::format("unknown scenario type \"{}\"; use {}", *type_name,
                          TypeNames()));
      continue;
    }
    CheckScenarioKeys(c, *t, p, *s.type);
    TomlScenarioReader reader(c, *t, p, *s.type, env, shard, notes);
    s.options = s.type->parse(reader);
    ParseCommonKeys(c, *t, node, p, s);
    ParseThresholds(c, *t, p, s);
    ApplyEnvThresholds(c, env, s, notes);
    scenarios.push_back(std::move(s));
  }
}

}  // namespace polar
