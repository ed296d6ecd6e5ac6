#include "daemon/schedule/units.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace polar {
namespace {

// Parses a non-negative decimal number at the front of `text`; advances `text`
// past it.
std::optional<double> TakeNumber(std::string_view& text) {
  std::size_t i = 0;
  while (i < text.size() &&
         ((text[i] >= '0' && text[i] <= '9') || text[i] == '.'))
    ++i;
  if (i == 0) return std::nullopt;
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (ec != std::errc() || ptr != text.data() + i) return std::nullopt;
  text.remove_prefix(i);
  return value;
}

}  // namespace

std::optional<Duration> ParseDuration(std::string_view text,
                                      std::string* error) {
  static constexpr const char* kForms =
      "use a number with a unit: us, ms, s, m, h or d (e.g. \"250ms\", "
      "\"10s\", "
      "\"1h30m\")";
  if (text.empty()) {
    *error = fmt::format("empty duration; {}", kForms);
    return std::nullopt;
  }
  std::string_view rest = text;
  double seconds = 0;
  while (!rest.empty()) {
    auto number = TakeNumber(rest);
    if (!number) {
      *error = fmt::format("\"{}\" is not a duration; {}", text, kForms);
      return std::nullopt;
    }
    std::size_t unit_len = 0;
    while (unit_len < rest.size() && rest[unit_len] >= 'a' &&
           rest[unit_len] <= 'z')
      ++unit_len;
    std::string_view unit = rest.substr(0, unit_len);
    rest.remove_prefix(unit_len);
    double scale;
    if (unit == "us") {
      scale = 1e-6;
    } else if (unit == "ms") {
      scale = 1e-3;
    } else if (unit == "s") {
      scale = 1;
    } else if (unit == "m" || unit == "min") {
      scale = 60;
    } else if (unit == "h") {
      scale = 3600;
    } else if (unit == "d") {
      scale = 86400;
    } else {
      *error = fmt::format("\"{}\" has no valid unit; {}", text, kForms);
      return std::nullopt;
    }
    seconds += *number * scale;
  }
  if (!std::isfinite(seconds) || seconds > 1e9) {
    *error = fmt::format("\"{}\" is too long", text);
    return std::nullopt;
  }
  return FromSeconds(seconds);
}

std::optional<double> ParseRate(std::string_view text, std::string* error) {
  static constexpr const char* kForms =
      "use N/s, N/min or N/h (e.g. \"2/s\", \"120/min\", \"500/h\")";
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    *error = fmt::format("\"{}\" is not a rate; {}", text, kForms);
    return std::nullopt;
  }
  std::string_view number_text = text.substr(0, slash);
  std::string_view unit = text.substr(slash + 1);
  while (!number_text.empty() && number_text.back() == ' ')
    number_text.remove_suffix(1);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  std::string_view rest = number_text;
  auto number = TakeNumber(rest);
  if (!number || !rest.empty()) {
    *error = fmt::format("\"{}\" does not start with a non-negative number; {}",
                         text, kForms);
    return std::nullopt;
  }
  double per;
  if (unit == "s" || unit == "sec") {
    per = 1;
  } else if (unit == "m" || unit == "min") {
    per = 60;
  } else if (unit == "h" || unit == "hour") {
    per = 3600;
  } else {
    *error = fmt::format("\"{}\" has an unknown unit \"{}\"; {}", text, unit,
                         kForms);
    return std::nullopt;
  }
  double rate = *number / per;
  if (!std::isfinite(rate)) {
    *error = fmt::format("\"{}\" is not finite", text);
    return std::nullopt;
  }
  return rate;
}

std::string FormatDuration(Duration d) {
  double s = ToSeconds(d);
  if (s < 1) return fmt::format("{:.0f}ms", s * 1e3);
  if (s < 120) return fmt::format("{:.3g}s", s);
  return fmt::format("{:.3g}m", s / 60);
}

}  // namespace polar
