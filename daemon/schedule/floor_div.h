// Integer division and remainder rounded toward negative infinity, for the
// calendar arithmetic of schedules and time zones, where times before the
// epoch or a week's start are negative and C++'s truncation would put them in
// the wrong day (-1 s / 86400 must be day -1, not day 0).
//
// Pure constexpr functions; any caller. b must be non-zero.
#pragma once

#include <cstdint>

namespace polar {

constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// In [0, b) for b > 0.
constexpr int64_t FloorMod(int64_t a, int64_t b) {
  return a - FloorDiv(a, b) * b;
}

}  // namespace polar
