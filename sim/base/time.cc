#include "sim/base/time.h"

#include <cctype>
#include <cmath>
#include <cstdio>

namespace polar::sim {
namespace {

// Two ASCII digits, or -1. (std::stol took "1x", " 1" and "-1", and threw on
// "`2": found by tests/fuzz/sim_request_fuzz.cc, an uncaught exception in an
// ingest batch that took polar-sim down.)
int TwoDigits(std::string_view s) {
  if (s.size() != 2 || !std::isdigit(static_cast<unsigned char>(s[0])) ||
      !std::isdigit(static_cast<unsigned char>(s[1])))
    return -1;
  return (s[0] - '0') * 10 + (s[1] - '0');
}

}  // namespace

bool ParseTimestamp(std::string_view input, SysMicros* out) {
  std::string text(input);
  int y, mo, d, h, mi;
  double s = 0;
  char rest[16] = {};
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%15s", &y, &mo, &d, &h,
                  &mi, &s, rest) < 6) {
    return false;
  }
  // !(s >= 0 && s < 61) also refuses "nan", which %lf reads and which would
  // make the microsecond conversion below undefined.
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 ||
      mi > 59 || !(s >= 0 && s < 61)) {
    return false;
  }
  std::string tz(rest);
  long offset = 0;
  if (tz == "Z" || tz == "z") {
    offset = 0;
  } else if (tz.size() == 6 && (tz[0] == '+' || tz[0] == '-') && tz[3] == ':') {
    // pydantic refuses offsets of 24 hours or more and minutes past 59.
    const int oh = TwoDigits(std::string_view(tz).substr(1, 2));
    const int om = TwoDigits(std::string_view(tz).substr(4, 2));
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return false;
    offset = (oh * 60L + om) * 60;
    if (tz[0] == '-') offset = -offset;
  } else {
    return false;  // naive datetimes are refused
  }
  using namespace std::chrono;
  auto days = sys_days(year{y} / month{static_cast<unsigned>(mo)} /
                       day{static_cast<unsigned>(d)});
  *out = SysMicros(days) + hours(h) + minutes(mi) +
         duration_cast<microseconds>(duration<double>(s)) - seconds(offset);
  return true;
}

std::string FormatTimestamp(SysMicros t) {
  using namespace std::chrono;
  auto day = floor<days>(t);
  year_month_day ymd(day);
  hh_mm_ss<microseconds> hms(t - day);
  char buf[40];
  std::snprintf(
      buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02lld.%06lldZ",
      static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
      static_cast<unsigned>(ymd.day()), static_cast<long>(hms.hours().count()),
      static_cast<long>(hms.minutes().count()),
      static_cast<long long>(hms.seconds().count()),
      static_cast<long long>(hms.subseconds().count()));
  return buf;
}

bool ParseDuration(std::string_view text, Duration* out) {
  if (text.empty()) return false;
  if (text == "0") {
    *out = Duration::zero();
    return true;
  }
  double total_ns = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() &&
           ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) {
      ++i;
    }
    if (i == start) return false;
    double value = 0;
    try {
      value = std::stod(std::string(text.substr(start, i - start)));
    } catch (...) {
      return false;
    }
    std::size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])))
      ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    double scale;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us") {
      scale = 1e3;
    } else if (unit == "ms") {
      scale = 1e6;
    } else if (unit == "s") {
      scale = 1e9;
    } else if (unit == "m" || unit == "min") {
      scale = 60e9;
    } else if (unit == "h") {
      scale = 3600e9;
    } else if (unit == "d") {
      scale = 86400e9;
    } else {
      return false;
    }
    total_ns += value * scale;
  }
  if (!std::isfinite(total_ns) || total_ns < 0 || total_ns > 1e18) return false;
  *out = Duration(static_cast<int64_t>(total_ns));
  return true;
}

std::string FormatDuration(Duration d) {
  auto ns = d.count();
  char buf[48];
  if (ns == 0) return "0";
  if (ns % 1'000'000'000 == 0) {
    std::snprintf(buf, sizeof buf, "%llds",
                  static_cast<long long>(ns / 1'000'000'000));
  } else if (ns % 1'000'000 == 0) {
    std::snprintf(buf, sizeof buf, "%lldms",
                  static_cast<long long>(ns / 1'000'000));
  } else if (ns % 1000 == 0) {
    std::snprintf(buf, sizeof buf, "%lldus", static_cast<long long>(ns / 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%lldns", static_cast<long long>(ns));
  }
  return buf;
}

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace polar::sim
