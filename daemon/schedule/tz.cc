#include "daemon/schedule/tz.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

#include "daemon/schedule/floor_div.h"

namespace polar {
namespace {

constexpr int64_t kDay = 86'400;

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr std::array<unsigned, 12> kDays = {31, 28, 31, 30, 31, 30,
                                                     31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Howard Hinnant's civil_from_days, year only.
int64_t YearFromDays(int64_t z) {
  z += 719'468;
  const int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  const int64_t doe = z - era * 146'097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  return yoe + era * 400 + (m <= 2 ? 1 : 0);
}

// Parses "[+-]hh[:mm[:ss]]" at text[*pos]; returns seconds.
std::optional<int32_t> ParseHms(std::string_view text, std::size_t* pos,
                                int max_hours) {
  std::size_t i = *pos;
  int sign = 1;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    sign = text[i] == '-' ? -1 : 1;
    ++i;
  }
  int32_t parts[3] = {0, 0, 0};
  for (int part = 0; part < 3; ++part) {
    if (part > 0) {
      if (i >= text.size() || text[i] != ':') break;
      ++i;
    }
    std::size_t digits = 0;
    int32_t v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 3) {
      v = v * 10 + (text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
    parts[part] = v;
  }
  if (parts[0] > max_hours || parts[1] > 59 || parts[2] > 59)
    return std::nullopt;
  *pos = i;
  return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
}

bool ParseName(std::string_view text, std::size_t* pos) {
  std::size_t i = *pos;
  if (i < text.size() && text[i] == '<') {
    auto close = text.find('>', i);
    if (close == std::string_view::npos || close - i - 1 < 3) return false;
    *pos = close + 1;
    return true;
  }
  std::size_t start = i;
  while (i < text.size() && ((text[i] >= 'A' && text[i] <= 'Z') ||
                             (text[i] >= 'a' && text[i] <= 'z'))) {
    ++i;
  }
  if (i - start < 3) return false;
  *pos = i;
  return true;
}

std::optional<int> ParseInt(std::string_view text, std::size_t* pos) {
  std::size_t i = *pos;
  int v = 0;
  std::size_t digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 4) {
    v = v * 10 + (text[i] - '0');
    ++i;
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  *pos = i;
  return v;
}

std::optional<PosixTz::Rule> ParseRule(std::string_view text,
                                       std::size_t* pos) {
  using Kind = PosixTz::Rule::Kind;
  PosixTz::Rule rule;
  std::size_t i = *pos;
  if (i < text.size() && text[i] == 'J') {
    ++i;
    auto n = ParseInt(text, &i);
    if (!n || *n < 1 || *n > 365) return std::nullopt;
    rule.kind = Kind::kJulianNoLeap;
    rule.day = *n;
  } else if (i < text.size() && text[i] == 'M') {
    ++i;
    auto m = ParseInt(text, &i);
    if (!m || *m < 1 || *m > 12 || i >= text.size() || text[i] != '.')
      return std::nullopt;
    ++i;
    auto w = ParseInt(text, &i);
    if (!w || *w < 1 || *w > 5 || i >= text.size() || text[i] != '.')
      return std::nullopt;
    ++i;
    auto d = ParseInt(text, &i);
    if (!d || *d > 6) return std::nullopt;
    rule.kind = Kind::kMonthWeekDay;
    rule.month = *m;
    rule.week = *w;
    rule.day = *d;
  } else {
    auto n = ParseInt(text, &i);
    if (!n || *n > 365) return std::nullopt;
    rule.kind = Kind::kZeroBasedDay;
    rule.day = *n;
  }
  if (i < text.size() && text[i] == '/') {
    ++i;
    // RFC 8536 §3.3.1 extends the hour range to -167..167.
    auto t = ParseHms(text, &i, 167);
    if (!t) return std::nullopt;
    rule.time = *t;
  }
  *pos = i;
  return rule;
}

// The local day (days since 1970-01-01) on which `rule` falls in `year`.
int64_t RuleDay(int64_t year, const PosixTz::Rule& rule) {
  using Kind = PosixTz::Rule::Kind;
  const int64_t jan1 = DaysFromCivil(year, 1, 1);
  switch (rule.kind) {
    case Kind::kJulianNoLeap:
      // Jn never counts February 29: day 60 is always March 1.
      return jan1 + rule.day - 1 + (IsLeap(year) && rule.day >= 60 ? 1 : 0);
    case Kind::kZeroBasedDay:
      return jan1 + rule.day;
    case Kind::kMonthWeekDay: {
      const int64_t first =
          DaysFromCivil(year, static_cast<unsigned>(rule.month), 1);
      // Sunday-first weekday of the 1st: 1970-01-01 was a Thursday (4).
      const int wd_first = static_cast<int>(((first % 7) + 11) % 7);
      int64_t day = first + (rule.day - wd_first + 7) % 7 + (rule.week - 1) * 7;
      const int64_t last =
          first + DaysInMonth(year, static_cast<unsigned>(rule.month)) - 1;
      while (day > last) day -= 7;  // week 5 means "the last one"
      return day;
    }
  }
  return jan1;
}

uint32_t Be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
int64_t Be64(const unsigned char* p) {
  return static_cast<int64_t>((uint64_t{Be32(p)} << 32) | Be32(p + 4));
}

}  // namespace

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146'097 + doe - 719'468;
}

int WeekdayMondayFirst(int64_t days) {
  // 1970-01-01 was a Thursday: Monday-first index 3.
  return static_cast<int>(((days % 7) + 7 + 3) % 7);
}

std::optional<PosixTz> PosixTz::Parse(std::string_view text) {
  PosixTz tz;
  std::size_t i = 0;
  if (!ParseName(text, &i)) return std::nullopt;
  auto std_off = ParseHms(text, &i, 24);
  if (!std_off) return std::nullopt;
  tz.std_offset = -*std_off;  // POSIX offsets are west-positive
  if (i == text.size()) return tz;
  if (!ParseName(text, &i)) return std::nullopt;
  tz.has_dst = true;
  tz.dst_offset = tz.std_offset + 3600;
  if (i < text.size() && text[i] != ',') {
    auto dst_off = ParseHms(text, &i, 24);
    if (!dst_off) return std::nullopt;
    tz.dst_offset = -*dst_off;
  }
  if (i == text.size()) {
    // No rule: POSIX leaves it to the implementation; tzcode uses the US rule.
    tz.start = Rule{Rule::Kind::kMonthWeekDay, 0, 2, 3, 7200};
    tz.end = Rule{Rule::Kind::kMonthWeekDay, 0, 1, 11, 7200};
    return tz;
  }
  if (text[i] != ',') return std::nullopt;
  ++i;
  auto start = ParseRule(text, &i);
  if (!start || i >= text.size() || text[i] != ',') return std::nullopt;
  ++i;
  auto end = ParseRule(text, &i);
  if (!end || i != text.size()) return std::nullopt;
  tz.start = *start;
  tz.end = *end;
  return tz;
}

ZoneState PosixTz::Lookup(int64_t t) const {
  if (!has_dst) return ZoneState{std_offset, false, INT64_MAX};
  const int64_t year = YearFromDays(FloorDiv(t, kDay));
  // Transitions of four years around t, in UTC: enough for any t, including
  // southern-hemisphere zones whose DST spans New Year.
  struct Event {
    int64_t at;
    bool dst;
  };
  std::array<Event, 8> events{};
  std::size_t n = 0;
  for (int64_t y = year - 1; y <= year + 2; ++y) {
    events[n++] = {RuleDay(y, start) * kDay + start.time - std_offset, true};
    events[n++] = {RuleDay(y, end) * kDay + end.time - dst_offset, false};
  }
  std::sort(events.begin(), events.end(),
            [](const Event& a, const Event& b) { return a.at < b.at; });
  bool dst = !events[0].dst;  // the state before the earliest event
  int64_t next = INT64_MAX;
  for (const Event& e : events) {
    if (e.at <= t) {
      dst = e.dst;
    } else {
      next = e.at;
      break;
    }
  }
  return ZoneState{dst ? dst_offset : std_offset, dst, next};
}

std::shared_ptr<const TimeZone> TimeZone::Utc() {
  static const std::shared_ptr<const TimeZone> kUtc = [] {
    auto tz = std::make_shared<TimeZone>();
    tz->name_ = "UTC";
    tz->types_.push_back(Type{0, false});
    return std::shared_ptr<const TimeZone>(std::move(tz));
  }();
  return kUtc;
}

std::shared_ptr<const TimeZone> TimeZone::Load(const std::string& name,
                                               std::string* error,
                                               const std::string& dir) {
  if (name == "UTC" || name == "Etc/UTC") return Utc();
  if (name.empty() || name.front() == '/' ||
      name.find("..") != std::string::npos) {
    *error = "\"" + name + "\" is not a time zone name like \"Europe/Berlin\"";
    return nullptr;
  }
  std::ifstream in(dir + "/" + name, std::ios::binary);
  if (!in) {
    *error = "unknown time zone \"" + name + "\" (no " + dir + "/" + name +
             "; is the tzdata package installed?)";
    return nullptr;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return FromTzif(name, buffer.str(), error);
}

std::shared_ptr<const TimeZone> TimeZone::FromTzif(std::string name,
                                                   std::string_view bytes,
                                                   std::string* error) {
  auto fail = [&](const char* why) {
    *error = "time zone \"" + name + "\": " + why;
    return nullptr;
  };
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t size = bytes.size();
  constexpr std::size_t kHeader = 44;
  struct Counts {
    uint32_t isut, isstd, leap, time, type, chars;
  };
  auto read_header = [&](std::size_t at, Counts* c) {
    if (at + kHeader > size || bytes.substr(at, 4) != "TZif") return false;
    const unsigned char* p = data + at + 20;
    *c = {Be32(p),      Be32(p + 4),  Be32(p + 8),
          Be32(p + 12), Be32(p + 16), Be32(p + 20)};
    // Sanity bounds: real files have < 2,000 transitions and < 100 types.
    return c->time < 100'000 && c->type >= 1 && c->type <= 256 &&
           c->chars < 100'000 && c->leap < 10'000 && c->isut <= c->type &&
           c->isstd <= c->type;
  };
  Counts c1{};
  if (!read_header(0, &c1)) return fail("not a TZif file");
  const char version = static_cast<char>(data[4]);
  std::size_t at = kHeader;
  int time_size = 4;
  Counts c = c1;
  if (version >= '2') {
    // Skip the 32-bit block and use the 64-bit one.
    at += c1.time * 5ULL + c1.type * 6ULL + c1.chars + c1.leap * 8ULL +
          c1.isstd + c1.isut;
    if (!read_header(at, &c)) return fail("truncated TZif v2 header");
    at += kHeader;
    time_size = 8;
  }
  const std::size_t block = c.time * (time_size + 1ULL) + c.type * 6ULL +
                            c.chars + c.leap * (time_size + 4ULL) + c.isstd +
                            c.isut;
  if (at + block > size) return fail("truncated TZif data");

  auto tz = std::make_shared<TimeZone>();
  tz->name_ = std::move(name);
  const unsigned char* p = data + at;
  tz->transitions_.reserve(c.time);
  for (uint32_t i = 0; i < c.time; ++i) {
    tz->transitions_.push_back(time_size == 8 ? Be64(p)
                                              : static_cast<int32_t>(Be32(p)));
    p += time_size;
  }
  for (uint32_t i = 0; i < c.time; ++i) {
    if (*p >= c.type) return fail("transition names a missing type");
    tz->transition_types_.push_back(*p++);
  }
  for (uint32_t i = 0; i < c.type; ++i) {
    tz->types_.push_back(Type{static_cast<int32_t>(Be32(p)), p[4] != 0});
    p += 6;
  }
  if (!std::is_sorted(tz->transitions_.begin(), tz->transitions_.end()))
    return fail("transitions out of order");
  if (version >= '2') {
    std::size_t footer = at + block;
    if (footer < size && bytes[footer] == '\n') {
      auto close = bytes.find('\n', footer + 1);
      if (close != std::string_view::npos && close > footer + 1) {
        auto rule = bytes.substr(footer + 1, close - footer - 1);
        tz->footer_ = PosixTz::Parse(rule);
        if (!tz->footer_) return fail("unsupported POSIX TZ footer");
      }
    }
  }
  return tz;
}

ZoneState TimeZone::Lookup(int64_t t) const {
  // Index of the first transition after t.
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), t);
  const std::size_t after = static_cast<std::size_t>(it - transitions_.begin());
  if (after == transitions_.size() && footer_) {
    ZoneState s = footer_->Lookup(t);
    return s;
  }
  // Before the first transition RFC 8536 says to use type 0.
  const Type& type =
      after == 0 ? types_[0] : types_[transition_types_[after - 1]];
  ZoneState s{type.utc_offset, type.dst, INT64_MAX};
  if (after < transitions_.size()) {
    s.next_change = transitions_[after];
  }
  return s;
}

}  // namespace polar
