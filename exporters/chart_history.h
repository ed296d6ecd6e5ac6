// SeriesHistory: the past of one charted series (a scenario, a step) as
// points, each what happened over one span: counter deltas, percentiles of
// histogram deltas, mean and highest of sampled gauges. It keeps two views in
// memory that does not grow with the run:
//   - live: the last `live_points` points of 2^live_level ticks each (the
//     status page's last 15 minutes: 225 points of 4 s at 1-s ticks);
//   - whole: the whole run in at most `report_points` points (the HTML
//     report), whose span doubles each time the run doubles.
//
// How the whole run stays bounded and exact: level k closes a point every
// 2^k ticks, from the cumulative state at its last close (one snapshot per
// level), so a point's percentiles come from the real histogram delta over
// its span, never from merging percentiles. A level is dropped once the run
// has more than report_points of its points; the lowest level still kept
// covers the whole run. A level's first point starts at the series' origin,
// so a level is created only when it first closes. With N = report_points,
// about log2(N) + 2 levels are kept at any time, each one snapshot (width x
// 8 bytes) plus its points, and the points of all kept levels add up to at
// most 2N plus the live ring; MemoryBytes() counts it. Levels close on a
// tick grid shared by every series (the tick index comes from the caller),
// so points of different series line up.
//
// Pure value object: no clock, no I/O; the caller passes instants and tick
// numbers. Not thread-safe; in the daemon the status board owns them on the
// loop thread and feeds them once a second.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "exporters/clock.h"

namespace polar {

// What a series' input holds, in this order: `counters` monotonic counts,
// then each histogram's cumulative-since-start bucket counts (one per upper
// bound; a last bound of +infinity is allowed). Gauges come separately.
struct SeriesLayout {
  std::size_t counters = 0;
  std::vector<std::vector<double>> histograms;  // each: bucket upper bounds
  std::size_t gauges = 0;
  std::size_t width() const;  // input values per tick
};

// The percentiles a point keeps of each histogram.
inline constexpr std::array<double, 3> kChartQuantiles = {0.5, 0.9, 0.99};

struct HistoryOptions {
  std::size_t report_points = 256;  // the whole run: N/2 to N points
  unsigned live_level = 2;          // live points are 2^live_level ticks
  std::size_t live_points = 225;    // 225 x 4 s = 15 minutes
};

class SeriesHistory {
 public:
  // The series starts at tick `tick` (the caller's global tick count), time
  // `at`, with the cumulative `values` it has then (layout.width() of them).
  SeriesHistory(SeriesLayout layout, HistoryOptions options, uint64_t tick,
                MonoTime at, std::span<const uint64_t> values);

  // Tick `tick` (the previous one + 1) at `at`: the cumulative values now and
  // the gauges' current values. Closes a point on every level whose span
  // ends at this tick. When Closes(tick) is false the values are not read
  // (pass none): gathering them (folding two 4,608-bucket histograms for a
  // step) is the costly part, and after the first minutes only every 4th
  // tick closes a point.
  void Feed(uint64_t tick, MonoTime at, std::span<const uint64_t> values,
            std::span<const double> gauges);
  // Whether Feed(tick, ...) closes a point and so needs the values.
  bool Closes(uint64_t tick) const;

  struct Point {
    MonoTime begin{}, end{};
    std::vector<uint64_t> counters;  // deltas over the point
    // quantiles[h * kChartQuantiles.size() + q]: NaN when the histogram
    // counted nothing over the point.
    std::vector<float> quantiles;
    std::vector<float> gauge_mean, gauge_max;  // NaN when never sampled
    double seconds() const { return ToSeconds(end - begin); }
  };

  // The last live_points points of the live level, oldest first.
  std::vector<Point> Live() const;
  // The whole run since the origin, oldest first: the points of the lowest
  // level kept (at most report_points), then, when `at` is past the last
  // one, a last partial point up to `at` from `values` and `gauges` (which
  // are not counted as a tick).
  std::vector<Point> Whole(MonoTime at, std::span<const uint64_t> values,
                           std::span<const double> gauges) const;
  // The span of Whole()'s full points, in ticks.
  uint64_t WholeSpanTicks() const;

  const SeriesLayout& layout() const { return layout_; }
  // Bytes held: snapshots, accumulators and points (capacity, not size).
  std::size_t MemoryBytes() const;
  // Levels currently kept (for tests of the bound).
  std::size_t KeptLevels() const;

 private:
  // One stored point's row in a level's ring.
  struct Ring {
    std::size_t capacity = 0;
    std::size_t size = 0;
    std::size_t next = 0;
    std::vector<MonoTime> begin, end;
    std::vector<uint64_t> counters;  // capacity x counters
    std::vector<float> quantiles;    // capacity x histograms x quantiles
    std::vector<float> gauges;       // capacity x gauges x 2 (mean, max)
  };
  struct Accumulator {
    MonoTime start_at{};
    std::vector<uint64_t> start;  // cumulative values at the start; empty
                                  // for the origin, which keeps origin_
    std::vector<double> gauge_sum, gauge_max;
    uint64_t samples = 0;
  };
  struct Level {
    bool exists = false;   // created at its first close
    bool dropped = false;  // more than report_points of them (not live)
    bool whole = true;     // holds every point since the origin
    Accumulator open;
    Ring ring;
  };

  void Sample(Accumulator& acc, std::span<const double> gauges) const;
  void ResetAccumulator(Accumulator& acc, MonoTime at,
                        std::span<const uint64_t> values) const;
  Point MakePoint(const Accumulator& acc, std::span<const uint64_t> start,
                  MonoTime at, std::span<const uint64_t> values) const;
  void Store(Ring& ring, const Point& p) const;
  Point Load(const Ring& ring, std::size_t age_from_oldest) const;
  std::size_t QuantileCount() const;

  SeriesLayout layout_;
  HistoryOptions options_;
  std::vector<std::size_t> histogram_offsets_;  // into the input values
  uint64_t origin_tick_;
  std::vector<uint64_t> origin_;
  Accumulator since_origin_;  // gauges since the origin (start = origin_)
  std::vector<Level> levels_;
  uint64_t tick_;
};

}  // namespace polar
