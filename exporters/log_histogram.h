// LogHistogram: a fixed-memory log-linear histogram of durations (in the style
// of HdrHistogram) for run summaries, where Prometheus buckets are too coarse
// (the 2-2.5 s bucket cannot tell a p99 of 2.05 s from 2.45 s).
//
// Layout: values below 256 ns are exact; above, each power of two is split
// into 128 equal sub-buckets, so a recorded value is known to within 1/128
// (0.8 %) and the reported midpoint to within 0.4 %. Values up to 2^42 ns
// (~73 min) are resolved; larger ones land in the last bucket (the exact
// maximum is kept separately). 4,608 counters = 36 KiB, whatever the run
// length: memory is flat over months.
//
// Not thread-safe: owned by Metrics and written on the loop thread only (Record
// is a few shifts and one increment).
#pragma once

#include <array>
#include <cstdint>

namespace polar {

class LogHistogram {
 public:
  static constexpr int kSubBits = 7;  // 128 sub-buckets per power of two
  static constexpr int kMaxBits = 42;
  static constexpr std::size_t kBuckets =
      (1u << (kSubBits + 1)) + (kMaxBits - kSubBits - 1) * (1u << kSubBits);

  void Record(int64_t nanoseconds);
  uint64_t count() const { return count_; }
  int64_t min() const { return count_ ? min_ : 0; }
  int64_t max() const { return max_; }
  // The value below which a `quantile` (0..1) share of the recorded values
  // lie, within the precision above; 0 when empty. quantile >= 1 is max().
  int64_t Percentile(double quantile) const;
  // The count of one bucket (0 <= bucket < kBuckets), for windowed views that
  // snapshot the counts (exporters/snapshot_ring.h).
  uint64_t bucket_count(std::size_t bucket) const { return counts_[bucket]; }
  const std::array<uint64_t, kBuckets>& bucket_counts() const {
    return counts_;
  }
  void Reset();

  // Exposed for tests: the bucket of a value and the range it covers.
  static std::size_t BucketOf(uint64_t value);
  static uint64_t BucketLow(std::size_t bucket);
  static uint64_t BucketHigh(std::size_t bucket);  // exclusive

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  int64_t min_ = INT64_MAX;
  int64_t max_ = 0;
};

}  // namespace polar
