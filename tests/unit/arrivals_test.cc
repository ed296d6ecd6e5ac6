#include "daemon/arrivals.h"

#include <gtest/gtest.h>

namespace polar {
namespace {

TEST(UniformArrivals, SpacesArrivalsByTheInverseOfTheRate) {
  UniformArrivals arrivals(4.0);
  MonoTime t{};
  MonoTime next = arrivals.Next(t);
  EXPECT_EQ(next - t, std::chrono::milliseconds(250));
}

TEST(UniformArrivals, DoesNotDriftOverAMillionArrivalsAtAnAwkwardRate) {
  // 3/s has a gap of 333,333,333.33 ns; truncating would lose 0.33 s over a
  // million arrivals.
  UniformArrivals arrivals(3.0);
  MonoTime t{};
  for (int i = 0; i < 1'000'000; ++i) t = arrivals.Next(t);
  double seconds = ToSeconds(t.time_since_epoch());
  EXPECT_NEAR(seconds, 1'000'000 / 3.0, 1e-6);
}

TEST(UniformArrivals, ZeroRateProducesNoArrivals) {
  UniformArrivals arrivals(0.0);
  EXPECT_EQ(arrivals.Next(MonoTime{}), MonoTime::max());
}

}  // namespace
}  // namespace polar
