// The one-line status systemd shows (`systemctl status polar-loadd`, the
// "Status:" line), from two snapshots of the counters. A pure function: App
// takes the snapshots on the loop thread every 5 s and passes them here.
//
// Like is compared with like: the schedule asks for arrivals (a batch, a
// checkout flow, a probe), and a checkout arrival is 1 to 6 requests, so the
// asked rate is set against the arrivals started, and the requests sent are
// a figure of their own.
#pragma once

#include <cstddef>
#include <string>

#include "exporters/metrics.h"

namespace polar {

struct StatusWindow {
  std::size_t scenarios = 0;
  double asked_per_second = 0;  // arrivals the schedules ask for, summed
  RequestTotals before;         // the counters at the window's start
  RequestTotals now;            // and at its end
  double seconds = 0;           // the window's length
  std::size_t in_flight = 0;
};

// E.g. "3 scenario(s): 6.2 arrivals/s started of 6.2/s asked, 8.0 req/s,
// 0.0% errors, 2 in flight", with ", 1.0 arrivals/s dropped" after "asked"
// when some could not start.
std::string StatusText(const StatusWindow& w);

}  // namespace polar
