// TimeZone: UTC offsets of one IANA time zone ("Europe/Berlin"), looked up
// through cctz in the system's zoneinfo files (Debian's `tzdata` package;
// $TZDIR overrides the directory, as for cctz itself).
//
// Why a wrapper and not std::chrono: libstdc++ 12 has no std::chrono tzdb,
// and the C library's localtime_r works through the process-global TZ
// variable, which is neither pure nor testable with several zones at once.
// cctz reads the TZif files (RFC 8536) and follows their POSIX rule after the
// last listed transition (so "slim" files and dates after 2037 work), for
// 400 years past the file's last transition.
//
// Value type, immutable after Load(); any thread may call its const methods.
// Load() reads one file and is called at config validation, never on the hot
// path; Lookup() is called once per rate-schedule piece (at most once an
// hour for daily and weekly schedules), not per arrival.
#pragma once

#include <cctz/time_zone.h>

#include <cstdint>
#include <memory>
#include <string>

namespace polar {

struct ZoneState {
  int32_t utc_offset = 0;  // seconds east of UTC: local = utc + utc_offset
  bool dst = false;
  // The next instant (Unix seconds) at which the zone's offset changes;
  // INT64_MAX if never.
  int64_t next_change = INT64_MAX;
};

class TimeZone {
 public:
  // "UTC" and "Etc/UTC" always work, even without tzdata.
  static std::shared_ptr<const TimeZone> Utc();
  // Loads `name` (e.g. "Europe/Berlin"). On failure returns null and says why
  // in *error. Only zone names are accepted: paths (a leading '/' or ".."),
  // and cctz's "libc:" names, which would follow the process's TZ, are
  // refused.
  static std::shared_ptr<const TimeZone> Load(const std::string& name,
                                              std::string* error);

  TimeZone(std::string name, cctz::time_zone zone)
      : name_(std::move(name)), zone_(zone) {}

  const std::string& name() const { return name_; }
  ZoneState Lookup(int64_t unix_seconds) const;

 private:
  std::string name_;
  cctz::time_zone zone_;
};

}  // namespace polar
