#include "daemon/schedule/tz.h"

namespace polar {

std::shared_ptr<const TimeZone> TimeZone::Utc() {
  static const std::shared_ptr<const TimeZone> kUtc =
      std::make_shared<const TimeZone>("UTC", cctz::utc_time_zone());
  return kUtc;
}

std::shared_ptr<const TimeZone> TimeZone::Load(const std::string& name,
                                               std::string* error) {
  if (name == "UTC" || name == "Etc/UTC") return Utc();
  if (name.empty() || name.front() == '/' ||
      name.find("..") != std::string::npos ||
      name.find(':') != std::string::npos) {
    *error = "\"" + name + "\" is not a time zone name like \"Europe/Berlin\"";
    return nullptr;
  }
  cctz::time_zone zone;
  if (!cctz::load_time_zone(name, &zone)) {
    *error = "unknown time zone \"" + name +
             "\" (not in /usr/share/zoneinfo; is the tzdata package "
             "installed?)";
    return nullptr;
  }
  return std::make_shared<const TimeZone>(name, zone);
}

ZoneState TimeZone::Lookup(int64_t unix_seconds) const {
  const cctz::time_point<cctz::seconds> at{cctz::seconds(unix_seconds)};
  const cctz::time_zone::absolute_lookup here = zone_.lookup(at);
  ZoneState state{here.offset, here.is_dst, INT64_MAX};
  cctz::time_zone::civil_transition next;
  if (zone_.next_transition(at, &next)) {
    // The instant of the change: the civil time it jumps to, looked up in
    // the zone, says when (cctz's own idiom; right for gaps and repeats).
    state.next_change = zone_.lookup(next.to).trans.time_since_epoch().count();
  }
  return state;
}

}  // namespace polar
