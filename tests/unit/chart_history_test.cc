// SeriesHistory: the charts' past in bounded memory. The live view is the
// last 15 minutes at 4 s; the whole-run view keeps at most N points whose
// percentiles come from the histogram over each point's whole span (never
// merged from halves), and memory stays flat over a simulated day.
#include "exporters/chart_history.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using namespace std::chrono_literals;
using testing::MonoAt;

constexpr double kInf = std::numeric_limits<double>::infinity();

// One counter, one histogram of 4 buckets (1-2 ms, 9-10 ms, 99-100 ms, more)
// and one gauge.
SeriesLayout TestLayout() {
  SeriesLayout l;
  l.counters = 1;
  l.histograms = {{0.001, 0.002, 0.009, 0.010, 0.099, 0.100, kInf}};
  l.gauges = 1;
  return l;
}

struct Feeder {
  HistoryOptions options;
  std::vector<uint64_t> values = std::vector<uint64_t>(8);  // 1 + 7 buckets
  uint64_t tick = 0;
  SeriesHistory history;

  explicit Feeder(HistoryOptions o = {})
      : options(o), history(TestLayout(), o, 0, MonoAt(0s), values) {}

  // One second: `requests` more, their latencies into `bucket`, the gauge at
  // `gauge`.
  void Tick(uint64_t requests, std::size_t bucket, double gauge = 0) {
    values[0] += requests;
    values[1 + bucket] += requests;
    ++tick;
    const double g[] = {gauge};
    history.Feed(tick, MonoAt(std::chrono::seconds(tick)), values, g);
  }
};

TEST(SeriesHistory, TheLiveViewIsTheLastFifteenMinutesInFourSecondPoints) {
  Feeder f;
  for (int s = 0; s < 2000; ++s) f.Tick(3, 1);
  auto live = f.history.Live();
  ASSERT_EQ(live.size(), 225u);
  EXPECT_EQ(live.back().end, MonoAt(2000s));
  EXPECT_EQ(live.front().begin, MonoAt(std::chrono::seconds(2000 - 900)));
  for (std::size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(live[i].seconds(), 4.0);
    EXPECT_EQ(live[i].counters[0], 12u) << i;  // 3/s over 4 s
    if (i) {
      EXPECT_EQ(live[i].begin, live[i - 1].end);
    }
  }
}

TEST(SeriesHistory, MergedPointsTakePercentilesFromTheWholeSpanNotFromHalves) {
  HistoryOptions o;
  o.report_points = 4;  // 16 ticks: the whole run in 4-tick points
  Feeder f(o);
  // The first two seconds of every 4-tick point: 75 requests a second in
  // 1-2 ms; the last two: 25 in 9-10 ms and 25 in 99-100 ms. A point holds
  // 150 at ~1 ms, 50 at ~10 ms and 50 at ~100 ms: p50 ~1 ms and p90
  // ~100 ms. Merged from its halves' percentiles instead, p50 would be the
  // mean of 1 and 10 ms or the larger, 10 ms; p90 the mean of 1 and 100 ms.
  for (int s = 1; s <= 16; ++s) {
    if (s % 4 == 1 || s % 4 == 2) {
      f.Tick(75, 1);
    } else {
      f.values[0] += 50;
      f.values[4] += 25;
      f.values[6] += 25;
      ++f.tick;
      f.history.Feed(f.tick, MonoAt(std::chrono::seconds(f.tick)), f.values,
                     std::vector<double>{0});
    }
  }
  EXPECT_EQ(f.history.WholeSpanTicks(), 4u);
  auto whole = f.history.Whole(MonoAt(16s), f.values, std::vector<double>{0});
  ASSERT_EQ(whole.size(), 4u);
  for (const auto& p : whole) {
    EXPECT_EQ(p.counters[0], 250u);
    EXPECT_GT(p.quantiles[0], 0.001);  // p50
    EXPECT_LE(p.quantiles[0], 0.002);
    EXPECT_GT(p.quantiles[1], 0.099);  // p90
    EXPECT_LE(p.quantiles[1], 0.100);
    EXPECT_GT(p.quantiles[2], 0.099);  // p99
    EXPECT_LE(p.quantiles[2], 0.100);
  }
}

TEST(SeriesHistory, AWholeDayStaysWithinItsPointAndMemoryBounds) {
  Feeder f;  // N = 256
  std::size_t most_bytes = 0;
  std::size_t most_levels = 0;
  uint64_t total = 0;
  for (int s = 1; s <= 86'400; ++s) {
    const uint64_t n = static_cast<uint64_t>(s % 7);  // uneven traffic
    total += n;
    f.Tick(n, static_cast<std::size_t>(s % 3), static_cast<double>(s % 50));
    if (s % 97 == 0 || s == 86'400) {
      most_bytes = std::max(most_bytes, f.history.MemoryBytes());
      most_levels = std::max(most_levels, f.history.KeptLevels());
    }
  }
  // Levels kept: the live one plus about log2(256) + 2.
  EXPECT_LE(most_levels, 11u);
  // 1 counter + 7 buckets: a snapshot is 64 bytes; the points (16 bytes of
  // time, 8 of counter, 12 of percentiles, 8 of gauge) of at most 2N plus the
  // live ring's 256 make the rest.
  EXPECT_LT(most_bytes, 48u * 1024) << most_bytes;

  auto whole = f.history.Whole(MonoAt(86'400s + 500ms), f.values,
                               std::vector<double>{1});
  // 86,400 ticks / 512 = 168 full points of 512 s, then the last half second.
  EXPECT_EQ(f.history.WholeSpanTicks(), 512u);
  ASSERT_EQ(whole.size(), 169u);
  EXPECT_EQ(whole.front().begin, MonoAt(0s));
  EXPECT_EQ(whole.back().end, MonoAt(86'400s + 500ms));
  uint64_t sum = 0;
  float highest = 0;
  for (std::size_t i = 0; i < whole.size(); ++i) {
    sum += whole[i].counters[0];
    if (i) {
      EXPECT_EQ(whole[i].begin, whole[i - 1].end) << i;
    }
    if (i + 1 < whole.size()) {
      EXPECT_EQ(whole[i].seconds(), 512.0) << i;
      highest = std::max(highest, whole[i].gauge_max[0]);
      EXPECT_NEAR(whole[i].gauge_mean[0], 24.5, 0.5) << i;
    }
  }
  EXPECT_EQ(sum, total);  // nothing lost, nothing counted twice
  EXPECT_EQ(highest, 49.0f);
}

TEST(SeriesHistory, ASeriesBornLaterClosesItsPointsOnTheSameGrid) {
  Feeder early;
  for (int s = 0; s < 10; ++s) early.Tick(1, 0);
  std::vector<uint64_t> late_values(8);
  SeriesHistory late(TestLayout(), HistoryOptions{}, early.tick,
                     MonoAt(std::chrono::seconds(early.tick)), late_values);
  for (int s = 0; s < 30; ++s) {
    early.Tick(1, 0);
    late_values[0] += 2;
    late.Feed(early.tick, MonoAt(std::chrono::seconds(early.tick)), late_values,
              std::vector<double>{0});
  }
  auto a = early.history.Live();
  auto b = late.Live();
  ASSERT_EQ(a.size(), 10u);  // 40 ticks / 4
  ASSERT_EQ(b.size(), 8u);   // its first point closes at tick 12
  // Born at 10 s: its first point covers 10-12 s, then 4-s points on the
  // same instants as the early series.
  EXPECT_EQ(b.front().begin, MonoAt(10s));
  EXPECT_EQ(b.front().end, MonoAt(12s));
  EXPECT_EQ(b.front().counters[0], 4u);
  for (std::size_t i = 0; i < b.size(); ++i)
    EXPECT_EQ(b[b.size() - 1 - i].end, a[a.size() - 1 - i].end);
}

TEST(SeriesHistory, APointWithoutRequestsHasNoPercentilesNotZero) {
  Feeder f;
  for (int s = 0; s < 8; ++s) f.Tick(s < 4 ? 5 : 0, 0);
  auto live = f.history.Live();
  ASSERT_EQ(live.size(), 2u);
  EXPECT_FALSE(std::isnan(live[0].quantiles[0]));
  EXPECT_TRUE(std::isnan(live[1].quantiles[0]));
  EXPECT_EQ(live[1].counters[0], 0u);
}

}  // namespace
}  // namespace polar
