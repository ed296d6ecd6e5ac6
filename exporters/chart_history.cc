#include "exporters/chart_history.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "exporters/snapshot_ring.h"

namespace polar {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Appends to a ring's column, growing its capacity by doubling but never
// past `limit` elements: a short run holds little, a long one exactly its
// ring.
template <typename T, typename It>
void Append(std::vector<T>& v, It first, It last, std::size_t limit) {
  const std::size_t need = v.size() + static_cast<std::size_t>(last - first);
  if (need > v.capacity())
    v.reserve(std::min(std::max(need, 2 * v.capacity()), limit));
  v.insert(v.end(), first, last);
}

uint64_t DeltaOf(uint64_t now, uint64_t then) {
  // A counter that went down was reset: count from zero, like rate().
  return now >= then ? now - then : now;
}

}  // namespace

std::size_t SeriesLayout::width() const {
  std::size_t n = counters;
  for (const auto& h : histograms) n += h.size();
  return n;
}

SeriesHistory::SeriesHistory(SeriesLayout layout, HistoryOptions options,
                             uint64_t tick, MonoTime at,
                             std::span<const uint64_t> values)
    : layout_(std::move(layout)),
      options_(options),
      origin_tick_(tick),
      origin_(layout_.width()),
      tick_(tick) {
  options_.report_points = std::max<std::size_t>(options_.report_points, 2);
  options_.live_points = std::max<std::size_t>(options_.live_points, 1);
  std::size_t offset = layout_.counters;
  for (const auto& h : layout_.histograms) {
    histogram_offsets_.push_back(offset);
    offset += h.size();
  }
  std::copy_n(values.begin(), std::min(values.size(), origin_.size()),
              origin_.begin());
  ResetAccumulator(since_origin_, at, {});
}

std::size_t SeriesHistory::QuantileCount() const {
  return layout_.histograms.size() * kChartQuantiles.size();
}

void SeriesHistory::ResetAccumulator(Accumulator& acc, MonoTime at,
                                     std::span<const uint64_t> values) const {
  acc.start_at = at;
  acc.start.assign(values.begin(), values.end());
  acc.gauge_sum.assign(layout_.gauges, 0.0);
  acc.gauge_max.assign(layout_.gauges,
                       -std::numeric_limits<double>::infinity());
  acc.samples = 0;
}

void SeriesHistory::Sample(Accumulator& acc,
                           std::span<const double> gauges) const {
  for (std::size_t g = 0; g < layout_.gauges && g < gauges.size(); ++g) {
    acc.gauge_sum[g] += gauges[g];
    acc.gauge_max[g] = std::max(acc.gauge_max[g], gauges[g]);
  }
  ++acc.samples;
}

SeriesHistory::Point SeriesHistory::MakePoint(
    const Accumulator& acc, std::span<const uint64_t> start, MonoTime at,
    std::span<const uint64_t> values) const {
  Point p;
  p.begin = acc.start_at;
  p.end = at;
  auto value = [&](std::size_t i) { return i < values.size() ? values[i] : 0; };
  auto base = [&](std::size_t i) { return i < start.size() ? start[i] : 0; };
  p.counters.resize(layout_.counters);
  for (std::size_t i = 0; i < layout_.counters; ++i)
    p.counters[i] = DeltaOf(value(i), base(i));
  p.quantiles.reserve(QuantileCount());
  std::vector<uint64_t> delta;
  for (std::size_t h = 0; h < layout_.histograms.size(); ++h) {
    const std::vector<double>& upper = layout_.histograms[h];
    delta.resize(upper.size());
    for (std::size_t b = 0; b < upper.size(); ++b) {
      const std::size_t i = histogram_offsets_[h] + b;
      delta[b] = DeltaOf(value(i), base(i));
    }
    for (double q : kChartQuantiles) {
      auto v = QuantileFromBuckets(upper, delta, q);
      p.quantiles.push_back(v ? static_cast<float>(*v) : kNaN);
    }
  }
  p.gauge_mean.resize(layout_.gauges, kNaN);
  p.gauge_max.resize(layout_.gauges, kNaN);
  if (acc.samples > 0) {
    for (std::size_t g = 0; g < layout_.gauges; ++g) {
      p.gauge_mean[g] = static_cast<float>(acc.gauge_sum[g] /
                                           static_cast<double>(acc.samples));
      p.gauge_max[g] = static_cast<float>(acc.gauge_max[g]);
    }
  }
  return p;
}

void SeriesHistory::Store(Ring& ring, const Point& p) const {
  if (ring.begin.size() < ring.capacity && ring.size == ring.begin.size()) {
    // Grow until the capacity is reached: a short run holds only what it
    // produced.
    const std::size_t cap = ring.capacity;
    Append(ring.begin, &p.begin, &p.begin + 1, cap);
    Append(ring.end, &p.end, &p.end + 1, cap);
    Append(ring.counters, p.counters.begin(), p.counters.end(),
           cap * layout_.counters);
    Append(ring.quantiles, p.quantiles.begin(), p.quantiles.end(),
           cap * QuantileCount());
    std::vector<float> gauges;
    for (std::size_t g = 0; g < layout_.gauges; ++g) {
      gauges.push_back(p.gauge_mean[g]);
      gauges.push_back(p.gauge_max[g]);
    }
    Append(ring.gauges, gauges.begin(), gauges.end(), cap * layout_.gauges * 2);
    ++ring.size;
    ring.next = ring.size % ring.capacity;
    return;
  }
  const std::size_t row = ring.next;
  ring.begin[row] = p.begin;
  ring.end[row] = p.end;
  std::copy(p.counters.begin(), p.counters.end(),
            ring.counters.begin() + row * layout_.counters);
  std::copy(p.quantiles.begin(), p.quantiles.end(),
            ring.quantiles.begin() + row * QuantileCount());
  for (std::size_t g = 0; g < layout_.gauges; ++g) {
    ring.gauges[(row * layout_.gauges + g) * 2] = p.gauge_mean[g];
    ring.gauges[(row * layout_.gauges + g) * 2 + 1] = p.gauge_max[g];
  }
  ring.next = (ring.next + 1) % ring.capacity;
  ring.size = std::min(ring.size + 1, ring.capacity);
}

SeriesHistory::Point SeriesHistory::Load(const Ring& ring,
                                         std::size_t age_from_oldest) const {
  const std::size_t oldest =
      ring.size < ring.capacity ? 0 : ring.next;  // full: next is the oldest
  const std::size_t row = (oldest + age_from_oldest) % ring.capacity;
  Point p;
  p.begin = ring.begin[row];
  p.end = ring.end[row];
  p.counters.assign(ring.counters.begin() + row * layout_.counters,
                    ring.counters.begin() + (row + 1) * layout_.counters);
  p.quantiles.assign(ring.quantiles.begin() + row * QuantileCount(),
                     ring.quantiles.begin() + (row + 1) * QuantileCount());
  for (std::size_t g = 0; g < layout_.gauges; ++g) {
    p.gauge_mean.push_back(ring.gauges[(row * layout_.gauges + g) * 2]);
    p.gauge_max.push_back(ring.gauges[(row * layout_.gauges + g) * 2 + 1]);
  }
  return p;
}

bool SeriesHistory::Closes(uint64_t tick) const {
  if (tick <= tick_) return false;
  const unsigned top = static_cast<unsigned>(std::countr_zero(tick));
  for (unsigned k = 0; k <= top; ++k) {
    const bool dropped = k < levels_.size() && levels_[k].dropped;
    const bool too_many = (tick >> k) > options_.report_points;
    if (!dropped && (!too_many || k == options_.live_level)) return true;
  }
  return false;
}

void SeriesHistory::Feed(uint64_t tick, MonoTime at,
                         std::span<const uint64_t> values,
                         std::span<const double> gauges) {
  if (tick <= tick_) return;  // not a new tick
  tick_ = tick;
  const std::size_t n = options_.report_points;
  const unsigned live = options_.live_level;
  Sample(since_origin_, gauges);
  for (Level& level : levels_) {
    if (level.exists && !level.dropped) Sample(level.open, gauges);
  }
  // Levels whose span ends now: 0, and k while 2^k divides the tick.
  const unsigned top = static_cast<unsigned>(std::countr_zero(tick));
  if (levels_.size() < top + 1) levels_.resize(top + 1);
  for (unsigned k = 0; k <= top; ++k) {
    Level& level = levels_[k];
    if (level.dropped) continue;
    // Too many points of this span for the whole-run view: a coarser level
    // covers the run now. The live level stays, as a ring.
    const bool too_many = (tick >> k) > n;
    if (too_many && k != live) {
      level = Level{};
      level.dropped = true;
      continue;
    }
    Point p;
    if (!level.exists) {
      // Its first point starts at the origin.
      level.exists = true;
      level.ring.capacity = k == live ? std::max(n, options_.live_points) : n;
      p = MakePoint(since_origin_, origin_, at, values);
    } else {
      p = MakePoint(level.open, level.open.start, at, values);
    }
    if (too_many) level.whole = false;
    Store(level.ring, p);
    ResetAccumulator(level.open, at, values);
  }
}

std::vector<SeriesHistory::Point> SeriesHistory::Live() const {
  std::vector<Point> out;
  const unsigned live = options_.live_level;
  if (live >= levels_.size() || !levels_[live].exists) return out;
  const Ring& ring = levels_[live].ring;
  const std::size_t count = std::min(ring.size, options_.live_points);
  for (std::size_t i = ring.size - count; i < ring.size; ++i)
    out.push_back(Load(ring, i));
  return out;
}

uint64_t SeriesHistory::WholeSpanTicks() const {
  // The lowest level with at most report_points points over the run so far.
  unsigned k = 0;
  while ((tick_ >> k) > options_.report_points) ++k;
  return uint64_t{1} << k;
}

std::vector<SeriesHistory::Point> SeriesHistory::Whole(
    MonoTime at, std::span<const uint64_t> values,
    std::span<const double> gauges) const {
  std::vector<Point> out;
  const unsigned k = static_cast<unsigned>(std::countr_zero(WholeSpanTicks()));
  const Level* level = k < levels_.size() ? &levels_[k] : nullptr;
  if (level && level->exists && level->whole) {
    for (std::size_t i = 0; i < level->ring.size; ++i)
      out.push_back(Load(level->ring, i));
  }
  // The part of the run after the last full point.
  Accumulator open = (level && level->exists) ? level->open : since_origin_;
  std::span<const uint64_t> start = (level && level->exists)
                                        ? std::span<const uint64_t>(open.start)
                                        : std::span<const uint64_t>(origin_);
  if (at > open.start_at) {
    Sample(open, gauges);
    out.push_back(MakePoint(open, start, at, values));
  }
  return out;
}

std::size_t SeriesHistory::MemoryBytes() const {
  auto acc_bytes = [](const Accumulator& a) {
    return a.start.capacity() * sizeof(uint64_t) +
           (a.gauge_sum.capacity() + a.gauge_max.capacity()) * sizeof(double);
  };
  std::size_t bytes = sizeof(*this) + origin_.capacity() * sizeof(uint64_t) +
                      histogram_offsets_.capacity() * sizeof(std::size_t) +
                      acc_bytes(since_origin_);
  for (const auto& h : layout_.histograms)
    bytes += h.capacity() * sizeof(double);
  for (const Level& level : levels_) {
    bytes += sizeof(Level) + acc_bytes(level.open);
    const Ring& r = level.ring;
    bytes += (r.begin.capacity() + r.end.capacity()) * sizeof(MonoTime) +
             r.counters.capacity() * sizeof(uint64_t) +
             (r.quantiles.capacity() + r.gauges.capacity()) * sizeof(float);
  }
  return bytes;
}

std::size_t SeriesHistory::KeptLevels() const {
  std::size_t n = 0;
  for (const Level& level : levels_) n += level.exists && !level.dropped;
  return n;
}

}  // namespace polar
