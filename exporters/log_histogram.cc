#include "exporters/log_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace polar {
namespace {

constexpr uint64_t kLinear = 1u << (LogHistogram::kSubBits + 1);  // 256
constexpr uint64_t kHalf = 1u << LogHistogram::kSubBits;          // 128

}  // namespace

std::size_t LogHistogram::BucketOf(uint64_t v) {
  if (v < kLinear) return static_cast<std::size_t>(v);
  const int msb = 63 - std::countl_zero(v);
  int shift = msb - kSubBits;  // v >> shift is in [128, 256)
  if (msb >= kMaxBits) return kBuckets - 1;
  return static_cast<std::size_t>(kLinear + (shift - 1) * kHalf +
                                  ((v >> shift) - kHalf));
}

uint64_t LogHistogram::BucketLow(std::size_t b) {
  if (b < kLinear) return b;
  const uint64_t shift = (b - kLinear) / kHalf + 1;
  const uint64_t sub = (b - kLinear) % kHalf + kHalf;
  return sub << shift;
}

uint64_t LogHistogram::BucketHigh(std::size_t b) {
  if (b < kLinear) return b + 1;
  const uint64_t shift = (b - kLinear) / kHalf + 1;
  return BucketLow(b) + (uint64_t{1} << shift);
}

void LogHistogram::Record(int64_t ns) {
  if (ns < 0) ns = 0;  // a clock can only be this wrong by a step; keep it
  ++counts_[BucketOf(static_cast<uint64_t>(ns))];
  ++count_;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

int64_t LogHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  if (q >= 1) return max_;
  if (q <= 0) return min_;
  // The rank of the value wanted, 1-based: the smallest value with at least
  // q * count values at or below it.
  const uint64_t rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (std::size_t b = 0; b < kBuckets; ++b) {
    seen += counts_[b];
    if (seen >= rank) {
      const uint64_t low = BucketLow(b);
      const uint64_t high = BucketHigh(b);
      const auto mid = static_cast<int64_t>(low + (high - low - 1) / 2);
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

void LogHistogram::Reset() { *this = LogHistogram(); }

}  // namespace polar
