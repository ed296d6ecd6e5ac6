// The "Status:" line systemd shows (daemon/service/status_line.h).
#include "daemon/service/status_line.h"

#include <gtest/gtest.h>

namespace polar {
namespace {

TEST(StatusLine, TheAskedRateIsComparedWithArrivalsNotRequests) {
  // 5 s of a checkout scenario asked for 2 arrivals/s: 10 flows started, each
  // 4 requests on average, so 40 requests. 2/s asked and 2/s started; the 8
  // requests per second are reported beside them, not against them.
  StatusWindow w;
  w.scenarios = 1;
  w.asked_per_second = 2;
  w.before = {.requests = 100, .failed = 1, .arrivals = 30, .dropped = 0};
  w.now = {.requests = 140, .failed = 3, .arrivals = 40, .dropped = 0};
  w.seconds = 5;
  w.in_flight = 3;
  EXPECT_EQ(StatusText(w),
            "1 scenario(s): 2.0 arrivals/s started of 2/s asked, 8.0 req/s, "
            "5.0% errors, 3 in flight");
}

TEST(StatusLine, DroppedArrivalsAreNotCountedAsStartedAndAreShown) {
  StatusWindow w;
  w.scenarios = 2;
  w.asked_per_second = 10;
  w.before = {.requests = 0, .failed = 0, .arrivals = 0, .dropped = 0};
  w.now = {.requests = 35, .failed = 0, .arrivals = 50, .dropped = 15};
  w.seconds = 5;
  EXPECT_EQ(StatusText(w),
            "2 scenario(s): 7.0 arrivals/s started of 10/s asked, 3.0 "
            "arrivals/s dropped, 7.0 req/s, 0.0% errors, 0 in flight");
}

TEST(StatusLine, AnEmptyWindowReportsZerosNotNaN) {
  StatusWindow w;
  w.scenarios = 1;
  w.asked_per_second = 0.2;
  EXPECT_EQ(StatusText(w),
            "1 scenario(s): 0.0 arrivals/s started of 0.2/s asked, 0.0 req/s, "
            "0.0% errors, 0 in flight");
}

}  // namespace
}  // namespace polar
