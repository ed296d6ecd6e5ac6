// ParseRetryAfter: both forms of RFC 9110's Retry-After, and the values a
// broken or hostile target may send (huge numbers, far dates, junk), which
// must come back as a sane wait or nothing, never as an overflowed one.
#include "daemon/net/retry_after.h"

#include <gtest/gtest.h>

namespace polar {
namespace {

using namespace std::chrono_literals;

// 2026-01-01T00:00:00Z plus half a second, so HTTP-dates are exact.
const WallTime kNow = WallTime{std::chrono::seconds(1'767'225'600)} + 500ms;

TEST(RetryAfter, DelaySecondsAreAWaitFromNow) {
  EXPECT_EQ(ParseRetryAfter("120", kNow), 120s);
  EXPECT_EQ(ParseRetryAfter("0", kNow), 0s);
  EXPECT_EQ(ParseRetryAfter(" 7\r\n", kNow), 7s);
}

TEST(RetryAfter, AnHttpDateIsAWaitUntilThatInstant) {
  EXPECT_EQ(ParseRetryAfter("Thu, 01 Jan 2026 00:00:10 GMT", kNow), 9500ms);
  // The obsolete forms RFC 9110 still asks recipients to accept.
  EXPECT_EQ(ParseRetryAfter("Thursday, 01-Jan-26 00:00:10 GMT", kNow), 9500ms);
  EXPECT_EQ(ParseRetryAfter("Thu Jan  1 00:00:10 2026", kNow), 9500ms);
}

TEST(RetryAfter, ADateInThePastIsNoWait) {
  EXPECT_EQ(ParseRetryAfter("Thu, 01 Jan 2015 00:00:00 GMT", kNow), 0s);
  EXPECT_EQ(ParseRetryAfter("Thu, 01 Jan 2026 00:00:00 GMT", kNow), 0s);
}

// Regression: "Retry-After: 99999999999" made seconds(99999999999) overflow
// the int64 nanoseconds of Duration (undefined behaviour; in practice a
// negative wait, so the 429 was not honoured at all).
TEST(RetryAfter, HugeDelaySecondsSaturateInsteadOfOverflowing) {
  EXPECT_EQ(ParseRetryAfter("99999999999", kNow), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter(std::string(400, '9'), kNow), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("31535999", kNow), 31'535'999s);  // just below
}

// Regression: from_time_t(year 9999) is 2.5e20 ns, beyond system_clock's
// range.
TEST(RetryAfter, AFarFutureDateSaturatesInsteadOfOverflowing) {
  EXPECT_EQ(ParseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", kNow),
            kMaxRetryAfter);
}

TEST(RetryAfter, JunkIsNoValue) {
  for (const char* junk : {"", "   ", "-5", "1.5", "soon", "12 s", "0x10",
                           "\xff\xfe", "Thu, 99 Foo 2026 99:99:99 GMT"}) {
    EXPECT_FALSE(ParseRetryAfter(junk, kNow).has_value()) << junk;
  }
}

}  // namespace
}  // namespace polar
