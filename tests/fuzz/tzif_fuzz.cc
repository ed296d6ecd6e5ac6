// Fuzz target: the TZif reader (RFC 8536) and its POSIX TZ footer rules, which
// weekly and daily schedules use to follow a local wall clock. The files come
// from tzdata, but a truncated or foreign file in /usr/share/zoneinfo must be
// an error, not a crash. Looks up instants within ±3,000 years.
#include <cstring>
#include <string>
#include <string_view>

#include "daemon/schedule/tz.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string error;
  constexpr int64_t kSpan = 100'000'000'000;  // seconds, ~3,000 years
  int64_t instants[4] = {0, 1'767'225'600, -kSpan, kSpan};
  if (size >= 8) {
    int64_t t;
    std::memcpy(&t, data + size - 8, 8);
    instants[0] = t % kSpan;
  }
  if (auto zone = polar::TimeZone::FromTzif("fuzz", bytes, &error)) {
    for (int64_t t : instants) (void)zone->Lookup(t);
  }
  if (auto rule = polar::PosixTz::Parse(bytes)) {
    for (int64_t t : instants) (void)rule->Lookup(t);
  }
  return 0;
}
