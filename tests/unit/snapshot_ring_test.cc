// SnapshotRing and QuantileFromBuckets: the windowed math behind the status
// page's "last minute" rates and percentiles.
#include "exporters/snapshot_ring.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using testing::MonoAt;

using namespace std::chrono_literals;

TEST(SnapshotRing, TheBaselineIsTheNewestSnapshotAtLeastAWindowOld) {
  SnapshotRing ring(1, 13);
  for (int i = 0; i <= 12; ++i) {
    const uint64_t v = static_cast<uint64_t>(i) * 10;
    ring.Push(MonoAt(std::chrono::seconds(5 * i)), std::vector<uint64_t>{v});
  }
  // Now is 62 s: the snapshot at 0 s is the newest one >= 60 s old... the one
  // at 0 s (62 - 60 = 2; 0 <= 2 < 5).
  auto base = ring.Baseline(MonoAt(62s), 60s);
  ASSERT_TRUE(base);
  EXPECT_EQ(base->at, MonoAt(0s));
  EXPECT_EQ(base->values[0], 0u);
  // At 66 s the one taken at 5 s is old enough.
  base = ring.Baseline(MonoAt(66s), 60s);
  ASSERT_TRUE(base);
  EXPECT_EQ(base->at, MonoAt(5s));
  EXPECT_EQ(base->values[0], 10u);
}

TEST(SnapshotRing, OldSnapshotsAreOverwrittenSoMemoryStaysFixed) {
  SnapshotRing ring(2, 3);
  for (int i = 0; i < 10; ++i) {
    const auto v = static_cast<uint64_t>(i);
    ring.Push(MonoAt(std::chrono::seconds(i)), std::vector<uint64_t>{v, 2 * v});
  }
  EXPECT_EQ(ring.size(), 3u);
  // Only 7, 8, 9 are left; a window reaching further back gets the oldest.
  auto base = ring.Baseline(MonoAt(9s), 100s);
  ASSERT_TRUE(base);
  EXPECT_EQ(base->at, MonoAt(7s));
  EXPECT_EQ(base->values[1], 14u);
  EXPECT_EQ(ring.Newest()->values[0], 9u);
}

TEST(SnapshotRing, AYoungRingGivesItsOldestSnapshotAndEmptyGivesNothing) {
  SnapshotRing ring(1, 13);
  EXPECT_FALSE(ring.Baseline(MonoAt(10s), 60s));
  ring.Push(MonoAt(3s), std::vector<uint64_t>{7});
  auto base = ring.Baseline(MonoAt(10s), 60s);
  ASSERT_TRUE(base);
  EXPECT_EQ(base->at, MonoAt(3s));
}

TEST(SnapshotRing, DeltaCountsACounterResetFromZero) {
  std::vector<uint64_t> before{10, 5, 100};
  std::vector<uint64_t> after{15, 5, 3};  // the third one was reset
  auto d = SnapshotRing::Delta(after, before);
  EXPECT_EQ(d, (std::vector<uint64_t>{5, 0, 3}));
}

TEST(QuantileFromBuckets, InterpolatesInsideTheBucketLikeHistogramQuantile) {
  // Prometheus: buckets le=1,2,4 with 10, 10, 0 observations. The median's rank
  // is 10, the end of the first bucket: 1.0. p75 (rank 15) is half-way into
  // (1, 2]: 1.5.
  const std::vector<double> upper{1, 2, 4};
  const std::vector<uint64_t> counts{10, 10, 0};
  EXPECT_DOUBLE_EQ(*QuantileFromBuckets(upper, counts, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(*QuantileFromBuckets(upper, counts, 0.75), 1.5);
  EXPECT_DOUBLE_EQ(*QuantileFromBuckets(upper, counts, 1.0), 2.0);
  // The first bucket starts at `lowest`.
  EXPECT_DOUBLE_EQ(*QuantileFromBuckets(upper, counts, 0.25, 0.0), 0.5);
}

TEST(QuantileFromBuckets, ARankInTheInfiniteBucketIsItsLowerEdge) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> upper{0.1, 0.5, inf};
  const std::vector<uint64_t> counts{1, 1, 98};
  EXPECT_DOUBLE_EQ(*QuantileFromBuckets(upper, counts, 0.99), 0.5);
}

TEST(QuantileFromBuckets, NoObservationsNoQuantile) {
  const std::vector<double> upper{1, 2};
  const std::vector<uint64_t> counts{0, 0};
  EXPECT_FALSE(QuantileFromBuckets(upper, counts, 0.5));
}

TEST(QuantileFromBuckets, TheP99OfADeltaIgnoresWhatHappenedBeforeTheWindow) {
  // A minute ago 1000 requests had taken ~10 ms; in the last minute 100 more
  // took ~3 s. The delta's p99 must be ~3 s, not the all-time p99 (~10 ms).
  const std::vector<double> upper{0.01, 0.1, 1, 5};
  const std::vector<uint64_t> old_snapshot{1000, 0, 0, 0};
  const std::vector<uint64_t> now{1000, 0, 0, 100};
  auto d = SnapshotRing::Delta(now, old_snapshot);
  auto all_time = QuantileFromBuckets(upper, now, 0.5);
  auto windowed = QuantileFromBuckets(upper, d, 0.99);
  ASSERT_TRUE(windowed && all_time);
  EXPECT_LT(*all_time, 0.011);
  EXPECT_GT(*windowed, 1.0);
  EXPECT_LE(*windowed, 5.0);
}

}  // namespace
}  // namespace polar
