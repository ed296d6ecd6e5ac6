#include "daemon/arrivals.h"

#include <cmath>

namespace polar {

MonoTime UniformArrivals::Next(MonoTime previous) {
  if (rate_ <= 0) return MonoTime::max();
  double gap_ns = 1e9 / rate_ + carry_ns_;
  double whole = std::floor(gap_ns);
  carry_ns_ = gap_ns - whole;
  return previous + Duration(static_cast<Duration::rep>(whole));
}

}  // namespace polar
