#include "exporters/snapshot_ring.h"

#include <algorithm>
#include <cmath>

namespace polar {

SnapshotRing::SnapshotRing(std::size_t width, std::size_t capacity)
    : width_(width),
      capacity_(std::max<std::size_t>(capacity, 1)),
      values_(width_ * capacity_),
      times_(capacity_) {}

void SnapshotRing::Push(MonoTime at, std::span<const uint64_t> values) {
  const std::size_t n = std::min(values.size(), width_);
  std::copy_n(values.begin(), n, values_.begin() + next_ * width_);
  std::fill(values_.begin() + next_ * width_ + n,
            values_.begin() + (next_ + 1) * width_, 0);
  times_[next_] = at;
  next_ = (next_ + 1) % capacity_;
  size_ = std::min(size_ + 1, capacity_);
}

SnapshotRing::View SnapshotRing::At(std::size_t age) const {
  const std::size_t row = (next_ + capacity_ - 1 - age) % capacity_;
  return View{times_[row],
              std::span<const uint64_t>(values_.data() + row * width_, width_)};
}

std::optional<SnapshotRing::View> SnapshotRing::Newest() const {
  if (size_ == 0) return std::nullopt;
  return At(0);
}

std::optional<SnapshotRing::View> SnapshotRing::Baseline(
    MonoTime now, Duration window) const {
  if (size_ == 0) return std::nullopt;
  const MonoTime cutoff = now - window;
  for (std::size_t age = 0; age < size_; ++age) {
    View v = At(age);
    if (v.at <= cutoff) return v;
  }
  return At(size_ - 1);
}

std::vector<uint64_t> SnapshotRing::Delta(std::span<const uint64_t> current,
                                          std::span<const uint64_t> baseline) {
  std::vector<uint64_t> out(current.size());
  for (std::size_t i = 0; i < current.size(); ++i) {
    const uint64_t base = i < baseline.size() ? baseline[i] : 0;
    out[i] = current[i] >= base ? current[i] - base : current[i];
  }
  return out;
}

std::optional<double> QuantileFromBuckets(std::span<const double> upper,
                                          std::span<const uint64_t> counts,
                                          double q, double lowest) {
  const std::size_t n = std::min(upper.size(), counts.size());
  uint64_t total = 0;
  for (std::size_t i = 0; i < n; ++i) total += counts[i];
  if (total == 0) return std::nullopt;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the wanted observation, 1-based like histogram_quantile.
  const double rank = q * static_cast<double>(total);
  double below = 0;  // observations in earlier buckets
  for (std::size_t i = 0; i < n; ++i) {
    const double in = static_cast<double>(counts[i]);
    if (in == 0 || below + in < rank) {
      below += in;
      continue;
    }
    const double lo = i == 0 ? lowest : upper[i - 1];
    const double hi = upper[i];
    if (std::isinf(hi)) return lo;  // no upper edge to interpolate towards
    return lo + (hi - lo) * std::max(0.0, rank - below) / in;
  }
  // Rounding left the rank past the last bucket: the largest finite edge.
  for (std::size_t i = n; i-- > 0;) {
    if (counts[i] > 0)
      return std::isinf(upper[i]) && i ? upper[i - 1] : upper[i];
  }
  return std::nullopt;
}

}  // namespace polar
