// SnapshotRing: a fixed-size ring of periodic snapshots of monotonic counters
// (request counts, histogram bucket counts), so "the last minute" can be
// computed as now minus a snapshot a minute old, without storing samples.
// QuantileFromBuckets: a percentile from the per-bucket deltas of two such
// snapshots, interpolated inside the bucket as Prometheus's
// histogram_quantile() does.
//
// Value objects with no clock and no I/O: the caller passes the instants in,
// so tests drive them with numbers. Not thread-safe; in the daemon the status
// board owns them on the loop thread. Memory is width x capacity counters,
// fixed at construction (e.g. 297 counters x 13 snapshots = 31 KiB for one
// step's outcomes and latency buckets over a minute at 5 s intervals).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "exporters/clock.h"

namespace polar {

class SnapshotRing {
 public:
  // `width` counters per snapshot, at most `capacity` snapshots kept (the
  // oldest is overwritten). A minute at 5 s intervals needs 13: the newest and
  // the one 60 s before it.
  SnapshotRing(std::size_t width, std::size_t capacity);

  std::size_t width() const { return width_; }
  std::size_t size() const { return size_; }

  // Records `values` (width() of them) as taken at `at`. Instants must not go
  // backwards.
  void Push(MonoTime at, std::span<const uint64_t> values);

  struct View {
    MonoTime at{};
    std::span<const uint64_t> values;
  };
  // The newest snapshot taken at or before `now - window`; if none is that old
  // (the ring is younger than the window), the oldest one. Null when empty.
  // The caller divides by now - at, so a young ring gives an honest rate over
  // the shorter span it has.
  std::optional<View> Baseline(MonoTime now, Duration window) const;
  // The newest snapshot, if any.
  std::optional<View> Newest() const;

  // current - baseline, element by element; an element that went down (a
  // counter reset) counts from zero, as Prometheus's rate() does.
  static std::vector<uint64_t> Delta(std::span<const uint64_t> current,
                                     std::span<const uint64_t> baseline);

 private:
  View At(std::size_t age) const;  // 0 = newest

  std::size_t width_;
  std::size_t capacity_;
  std::vector<uint64_t> values_;  // capacity_ rows of width_
  std::vector<MonoTime> times_;
  std::size_t next_ = 0;  // the row the next Push writes
  std::size_t size_ = 0;
};

// The `q` quantile (0 < q <= 1) of observations counted per bucket: bucket i
// holds values in (upper[i-1], upper[i]] (the first one from `lowest`), and
// the last bound may be +infinity. Linear interpolation inside the bucket
// that holds the rank, like histogram_quantile(); a rank in the +Inf bucket
// returns the last finite bound. nullopt when there are no observations.
std::optional<double> QuantileFromBuckets(std::span<const double> upper,
                                          std::span<const uint64_t> counts,
                                          double q, double lowest = 0);

}  // namespace polar
