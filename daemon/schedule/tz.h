// TimeZone: UTC offsets of one IANA time zone, read from a TZif file
// (RFC 8536) in the system's zoneinfo directory (Debian's `tzdata` package).
//
// Why our own reader: libstdc++ 12 has no std::chrono tzdb, and the C library's
// localtime_r works through the process-global TZ variable, which is neither
// pure nor testable with several zones at once. The format is small: a table of
// transitions (64-bit section of v2+ files) plus a POSIX TZ rule in the footer
// for instants after the last transition (so "slim" files and dates after 2037
// work too).
//
// Value type, immutable after Load(); any thread may call its const methods.
// Load() reads one file and is called at config validation, never on the hot
// path.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace polar {

// Where tzdata installs the compiled zones.
inline constexpr const char* kZoneInfoDir = "/usr/share/zoneinfo";

struct ZoneState {
  int32_t utc_offset = 0;  // seconds east of UTC: local = utc + utc_offset
  bool dst = false;
  // The next instant (Unix seconds) at which the offset or DST flag changes;
  // INT64_MAX if never.
  int64_t next_change = INT64_MAX;
};

// A parsed POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3"), the TZif footer.
struct PosixTz {
  struct Rule {
    enum class Kind {
      kJulianNoLeap,
      kZeroBasedDay,
      kMonthWeekDay
    } kind = Kind::kMonthWeekDay;
    int day = 0;              // Jn: 1..365; n: 0..365; M: weekday 0 (Sunday)..6
    int week = 0;             // M: 1..5 (5 = last)
    int month = 0;            // M: 1..12
    int32_t time = 2 * 3600;  // seconds after local midnight; may be <0 or >24h
  };
  int32_t std_offset = 0;  // seconds east of UTC
  bool has_dst = false;
  int32_t dst_offset = 0;
  Rule start, end;

  static std::optional<PosixTz> Parse(std::string_view text);
  ZoneState Lookup(int64_t unix_seconds) const;
};

class TimeZone {
 public:
  // "UTC" and "Etc/UTC" always work, even without tzdata.
  static std::shared_ptr<const TimeZone> Utc();
  // Loads `name` (e.g. "Europe/Berlin") from `dir`. On failure returns null and
  // says why in *error. Names with ".." or a leading '/' are refused.
  static std::shared_ptr<const TimeZone> Load(
      const std::string& name, std::string* error,
      const std::string& dir = kZoneInfoDir);
  // Parses TZif bytes (exposed for tests).
  static std::shared_ptr<const TimeZone> FromTzif(std::string name,
                                                  std::string_view bytes,
                                                  std::string* error);

  const std::string& name() const { return name_; }
  ZoneState Lookup(int64_t unix_seconds) const;

 private:
  struct Type {
    int32_t utc_offset;
    bool dst;
  };
  std::string name_;
  std::vector<int64_t> transitions_;  // ascending Unix seconds
  std::vector<uint8_t> transition_types_;
  std::vector<Type> types_;
  std::optional<PosixTz> footer_;
};

// Calendar helpers (proleptic Gregorian), exposed for the schedules and tests.
int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day);
// 0 = Monday ... 6 = Sunday, for a day count since 1970-01-01.
int WeekdayMondayFirst(int64_t days_since_epoch);

}  // namespace polar
