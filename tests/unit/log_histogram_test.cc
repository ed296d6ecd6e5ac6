// LogHistogram: fixed memory, bounded relative error, exact extremes.
#include "exporters/log_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "scenarios/random.h"

namespace polar {
namespace {

TEST(LogHistogram, BucketsTileTheRangeWithoutGaps) {
  for (std::size_t b = 0; b + 1 < LogHistogram::kBuckets; ++b) {
    ASSERT_EQ(LogHistogram::BucketHigh(b), LogHistogram::BucketLow(b + 1)) << b;
    ASSERT_EQ(LogHistogram::BucketOf(LogHistogram::BucketLow(b)), b);
    ASSERT_EQ(LogHistogram::BucketOf(LogHistogram::BucketHigh(b) - 1), b);
  }
}

TEST(LogHistogram, EveryBucketIsNarrowerThanOnePercentOfItsValues) {
  for (std::size_t b = 256; b < LogHistogram::kBuckets; ++b) {
    const double low = double(LogHistogram::BucketLow(b));
    const double width = double(LogHistogram::BucketHigh(b)) - low;
    ASSERT_LE(width / low, 1.0 / 128 + 1e-12) << b;
  }
}

TEST(LogHistogram, PercentilesOfLogNormalLatenciesAreWithinHalfAPercent) {
  Rng rng(5);
  LogHistogram h;
  std::vector<int64_t> values;
  for (int i = 0; i < 100'000; ++i) {
    // Log-normal around 20 ms, like real service times.
    double u1 = rng.Uniform() + 1e-12, u2 = rng.Uniform();
    double z = std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
    auto ns = static_cast<int64_t>(20e6 * std::exp(0.8 * z));
    values.push_back(ns);
    h.Record(ns);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    auto exact =
        values[static_cast<std::size_t>(std::ceil(q * values.size())) - 1];
    EXPECT_NEAR(double(h.Percentile(q)), double(exact), 0.005 * double(exact))
        << "q=" << q;
  }
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.Percentile(1.0), values.back());
  EXPECT_EQ(h.count(), 100'000u);
}

TEST(LogHistogram, HugeValuesAreClampedIntoTheLastBucketButMaxStaysExact) {
  LogHistogram h;
  const int64_t two_hours = 7'200'000'000'000;
  h.Record(two_hours);
  h.Record(1000);
  EXPECT_EQ(h.max(), two_hours);
  EXPECT_EQ(h.Percentile(1.0), two_hours);
  EXPECT_LE(h.Percentile(0.99), two_hours);
  EXPECT_NEAR(double(h.Percentile(0.5)), 1000, 5);
}

TEST(LogHistogram, EmptyAndNegativeInputsAreHarmless) {
  LogHistogram h;
  EXPECT_EQ(h.Percentile(0.99), 0);
  h.Record(-5);
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.max(), 0);
  h.Reset();
  EXPECT_EQ(h.count(), 0u);
}

}  // namespace
}  // namespace polar
