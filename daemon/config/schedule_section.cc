// [scenarios.NAME.schedule]: how a scenario's rate changes over time
// (daemon/schedule/schedule.h), every shape's keys in ScheduleShapes()
// (daemon/config/sections.h).
#include <fmt/format.h>

#include <array>
#include <cctype>

#include "daemon/config/sections.h"
#include "daemon/schedule/tz.h"

namespace polar {
namespace {

// "Mon-Fri", "Sat,Sun", "Fri-Mon", "Mon": a bit per day, Monday = bit 0.
std::optional<uint8_t> ParseDays(std::string_view text) {
  static constexpr std::array<std::string_view, 7> kNames = {
      "mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  auto day = [](std::string_view name) -> int {
    if (name.size() != 3) return -1;
    std::string lower;
    for (char ch : name)
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (std::size_t i = 0; i < kNames.size(); ++i)
      if (kNames[i] == lower) return static_cast<int>(i);
    return -1;
  };
  uint8_t mask = 0;
  std::size_t i = 0;
  while (i <= text.size()) {
    std::size_t comma = text.find(',', i);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view part = text.substr(i, comma - i);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    std::size_t dash = part.find('-');
    int a = day(part.substr(0, dash));
    int b = dash == std::string_view::npos ? a : day(part.substr(dash + 1));
    if (a < 0 || b < 0) return std::nullopt;
    for (int d = a;; d = (d + 1) % 7) {  // "Fri-Mon" wraps over the weekend
      mask = static_cast<uint8_t>(mask | (1u << d));
      if (d == b) break;
    }
    i = comma + 1;
  }
  return mask;
}

// "HH:MM" in 00:00..24:00 -> minutes after midnight.
std::optional<int> ParseClock(std::string_view text) {
  if (text.size() != 5 || text[2] != ':') return std::nullopt;
  for (std::size_t i : {0u, 1u, 3u, 4u})
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  int h = (text[0] - '0') * 10 + (text[1] - '0');
  int m = (text[3] - '0') * 10 + (text[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0)) return std::nullopt;
  return h * 60 + m;
}

}  // namespace

const std::vector<ScheduleShape>& ScheduleShapes() {
  static const std::vector<ScheduleShape> kShapes = {
      {"constant", {"type", "rate"}, "", {}},
      {"ramp", {"type", "from", "to", "over"}, "", {}},
      {"steps", {"type", "steps", "repeat"}, "steps", {"rate", "for"}},
      {"weekly",
       {"type", "time_zone", "windows", "otherwise"},
       "windows",
       {"days", "hours", "rate"}},
      {"daily", {"type", "time_zone", "rate", "hourly"}, "", {}},
  };
  return kShapes;
}

const ScheduleShape* FindScheduleShape(std::string_view type) {
  for (const ScheduleShape& shape : ScheduleShapes()) {
    if (shape.type == type) return &shape;
  }
  return nullptr;
}

void ParseSchedule(Checker& c, const toml::table& t, const std::string& p,
                   ScheduleSpec& spec) {
  auto kind = c.String(t, p, "type");
  if (!kind) {
    if (!t.get("type"))
      c.Error(&t, p + ".type",
              "missing; use constant, ramp, steps, weekly or daily");
    return;
  }
  auto zone = [&] {
    if (auto name = c.String(t, p, "time_zone")) {
      std::string why;
      if (auto z = TimeZone::Load(*name, &why)) {
        spec.zone = z;
      } else {
        c.Error(t.get("time_zone"), p + ".time_zone", why);
      }
    }
  };
  auto required_rate = [&](std::string_view key, double* out) {
    if (auto r = c.RateValue(t, p, key)) {
      *out = *r;
    } else if (!t.get(key)) {
      c.Error(&t, Checker::Join(p, key), "missing; e.g. \"5/s\"");
    }
  };
  if (*kind == "constant") {
    spec.kind = ScheduleKind::kConstant;
    c.OnlyKeys(t, p, FindScheduleShape("constant")->keys);
    required_rate("rate", &spec.rate);
  } else if (*kind == "ramp") {
    spec.kind = ScheduleKind::kRamp;
    c.OnlyKeys(t, p, FindScheduleShape("ramp")->keys);
    required_rate("from", &spec.from);
    required_rate("to", &spec.to);
    if (auto d = c.DurationValue(t, p, "over", std::chrono::seconds(1),
                                 std::chrono::hours(24 * 365))) {
      spec.over = *d;
    } else if (!t.get("over")) {
      c.Error(&t, p + ".over", "missing; e.g. over = \"10m\"");
    }
  } else if (*kind == "steps") {
    spec.kind = ScheduleKind::kSteps;
    c.OnlyKeys(t, p, FindScheduleShape("steps")->keys);
    if (auto v = c.Bool(t, p, "repeat")) spec.repeat = *v;
    const toml::node* node = t.get("steps");
    const toml::array* arr = node ? node->as_array() : nullptr;
    if (!arr || arr->empty() || arr->size() > 1000) {
      c.Error(node ? node : &t, p + ".steps",
              "must be a list of 1-1000 tables like { rate = \"5/s\", for = "
              "\"1m\" }");
      return;
    }
    for (std::size_t i = 0; i < arr->size(); ++i) {
      std::string ip = fmt::format("{}.steps[{}]", p, i);
      const toml::table* st = (*arr)[i].as_table();
      if (!st) {
        c.Error(&(*arr)[i], ip,
                "must be a table like { rate = \"5/s\", for = \"1m\" }");
        continue;
      }
      c.OnlyKeys(*st, ip, FindScheduleShape("steps")->item_keys);
      auto r = c.RateValue(*st, ip, "rate");
      if (!r && !st->get("rate")) c.Error(st, ip + ".rate", "missing");
      auto d = c.DurationValue(*st, ip, "for", std::chrono::seconds(1),
                               std::chrono::hours(24 * 365));
      if (!d && !st->get("for"))
        c.Error(st, ip + ".for", "missing; e.g. for = \"1m\"");
      if (r && d) spec.steps.push_back(RateStep{*r, *d});
    }
  } else if (*kind == "weekly") {
    spec.kind = ScheduleKind::kWeekly;
    c.OnlyKeys(t, p, FindScheduleShape("weekly")->keys);
    zone();
    required_rate("otherwise", &spec.rate);
    const toml::node* node = t.get("windows");
    const toml::array* arr = node ? node->as_array() : nullptr;
    if (!arr || arr->empty() || arr->size() > 100) {
      c.Error(node ? node : &t, p + ".windows",
              "must be a list of 1-100 tables like { days = \"Mon-Fri\", hours "
              "= \"09:00-18:00\", rate = \"5/s\" }");
      return;
    }
    for (std::size_t i = 0; i < arr->size(); ++i) {
      std::string ip = fmt::format("{}.windows[{}]", p, i);
      const toml::table* wt = (*arr)[i].as_table();
      if (!wt) {
        c.Error(&(*arr)[i], ip, "must be a table");
        continue;
      }
      c.OnlyKeys(*wt, ip, FindScheduleShape("weekly")->item_keys);
      WeeklyWindow w;
      w.days = 0x7f;
      bool ok = true;
      if (auto days = c.String(*wt, ip, "days")) {
        if (auto mask = ParseDays(*days)) {
          w.days = *mask;
        } else {
          c.Error(wt->get("days"), ip + ".days",
                  fmt::format("\"{}\" is not a day list like \"Mon-Fri\" or "
                              "\"Sat,Sun\"",
                              *days));
          ok = false;
        }
      }
      if (auto hours = c.String(*wt, ip, "hours")) {
        auto dash = hours->find('-');
        auto a = dash == std::string::npos
                     ? std::nullopt
                     : ParseClock(std::string_view(*hours).substr(0, dash));
        auto b = dash == std::string::npos
                     ? std::nullopt
                     : ParseClock(std::string_view(*hours).substr(dash + 1));
        if (!a || !b || *a == 24 * 60 || *a == *b) {
          c.Error(wt->get("hours"), ip + ".hours",
                  fmt::format("\"{}\" is not a local time range like "
                              "\"09:00-18:00\" (\"22:00-06:00\" runs past "
                              "midnight; \"00:00-24:00\" is the whole day)",
                              *hours));
          ok = false;
        } else {
          w.start_minute = *a;
          w.end_minute = *b == 0 ? 24 * 60 : *b;
        }
      } else {
        if (!wt->get("hours"))
          c.Error(wt, ip + ".hours", "missing; e.g. \"09:00-18:00\"");
        ok = false;
      }
      if (auto r = c.RateValue(*wt, ip, "rate")) {
        w.rate = *r;
      } else {
        if (!wt->get("rate"))
          c.Error(wt, ip + ".rate", "missing; e.g. \"5/s\"");
        ok = false;
      }
      if (ok) spec.windows.push_back(w);
    }
  } else if (*kind == "daily") {
    spec.kind = ScheduleKind::kDaily;
    c.OnlyKeys(t, p, FindScheduleShape("daily")->keys);
    zone();
    required_rate("rate", &spec.rate);
    const toml::node* node = t.get("hourly");
    const toml::array* arr = node ? node->as_array() : nullptr;
    if (!arr || arr->size() != 24) {
      c.Error(node ? node : &t, p + ".hourly",
              "must be a list of 24 multipliers (local hours 00-23), e.g. "
              "[0.2, 0.2, ..., 1.0, ...]");
      return;
    }
    for (std::size_t i = 0; i < 24; ++i) {
      const toml::node& item = (*arr)[i];
      std::optional<double> v;
      if (auto f = item.value_exact<double>()) v = *f;
      if (auto n = item.value_exact<int64_t>()) v = static_cast<double>(*n);
      if (!v || !(*v >= 0) || *v > 1000) {
        c.Error(&item, fmt::format("{}.hourly[{}]", p, i),
                "must be a number in [0, 1000]");
        continue;
      }
      spec.hourly[i] = *v;
    }
  } else {
    c.Error(t.get("type"), p + ".type",
            fmt::format("unknown schedule type \"{}\"; use constant, ramp, "
                        "steps, weekly or daily",
                        *kind));
    return;
  }
  if (spec.PeakRate() > 100'000) {
    c.Error(&t, p,
            fmt::format("asks for up to {:g}/s, above the maximum of 100000/s",
                        spec.PeakRate()));
  }
}

}  // namespace polar
