// Fuzz target: the small value languages: durations ("1h30m"), rates
// ("120/min"), listen addresses ("[::1]:9477") and Retry-After values (from
// the target, so untrusted at run time), plus the formatting of what parsed.
#include <string>
#include <string_view>

#include "daemon/net/listen_address.h"
#include "daemon/net/retry_after.h"
#include "daemon/schedule/units.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  if (auto d = polar::ParseDuration(text, &error)) {
    if (*d < polar::Duration::zero()) __builtin_trap();
    (void)polar::FormatDuration(*d);
  }
  if (auto r = polar::ParseRate(text, &error)) {
    if (!(*r >= 0)) __builtin_trap();  // negative or NaN
  }
  if (auto a = polar::ParseListenAddress(text, &error)) {
    (void)a->ToString();
    (void)a->IsLoopback();
  }
  const polar::WallTime now{std::chrono::seconds(1'767'225'600)};
  if (auto wait = polar::ParseRetryAfter(text, now)) {
    if (*wait < polar::Duration::zero() || *wait > polar::kMaxRetryAfter)
      __builtin_trap();
  }
  return 0;
}
