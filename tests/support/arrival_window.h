// Test support: checks that a client dated an answer by when its bytes
// reached the kernel (SO_TIMESTAMPNS, daemon/net/socket_time.h), i.e. inside
// the server's own clock readings just before and just after it wrote them.
// For tests only; any thread (gtest assertions).
#pragma once

#include <gtest/gtest.h>

#include <chrono>

#include "exporters/clock.h"

namespace polar::testing {

// ArrivalTime() turns the kernel's wall-clock stamp into the monotonic clock
// as "now minus the stamp's age", reading the two clocks one after the
// other: the answer's date moves earlier by the time between those reads.
// Measured on a shared 2-core box (load 4-10): 50 ns apart (median and
// p99.99 of 2,000,000 back-to-back pairs), 46 pairs over 10 us and 2 over
// 1 ms (preempted in between); in 30 runs of the two tests that use this
// the date lay 19-104 us inside the server's window. 1 ms covers the reads
// and is 100x below the 100 ms a late read would add.
inline constexpr std::chrono::microseconds kArrivalConversionError{1000};

// `done` lies in [before, after], give or take the conversion's error.
inline void ExpectDatedBetween(MonoTime done, MonoTime before, MonoTime after) {
  EXPECT_GE(done, before - kArrivalConversionError)
      << "dated " << (before - done).count() << " ns before the write began";
  EXPECT_LE(done, after + kArrivalConversionError)
      << "dated " << (done - after).count() << " ns after the write ended";
}

}  // namespace polar::testing
