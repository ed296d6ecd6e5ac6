#include "daemon/schedule/schedule.h"

#include <algorithm>

#include "daemon/schedule/floor_div.h"

namespace polar {
namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;
constexpr int64_t kNsPerMinute = 60 * kNsPerSec;
constexpr int64_t kNsPerHour = 60 * kNsPerMinute;
constexpr int64_t kNsPerDay = 24 * kNsPerHour;
constexpr int64_t kNsPerWeek = 7 * kNsPerDay;

class ConstantSchedule final : public RateSchedule {
 public:
  explicit ConstantSchedule(double rate) : rate_(rate) {}
  RatePiece PieceAt(Duration) const override {
    return {rate_, 0, Duration::max()};
  }

 private:
  double rate_;
};

class RampSchedule final : public RateSchedule {
 public:
  RampSchedule(double from, double to, Duration over)
      : from_(from), to_(to), over_(over) {}
  RatePiece PieceAt(Duration t) const override {
    if (t >= over_ || over_ <= Duration::zero())
      return {to_, 0, Duration::max()};
    const double slope = (to_ - from_) / ToSeconds(over_);
    return {from_ + slope * ToSeconds(t), slope, over_};
  }

 private:
  double from_, to_;
  Duration over_;
};

class StepsSchedule final : public RateSchedule {
 public:
  StepsSchedule(std::vector<RateStep> steps, bool repeat)
      : steps_(std::move(steps)), repeat_(repeat) {
    for (const RateStep& s : steps_) total_ += s.length;
  }
  RatePiece PieceAt(Duration t) const override {
    if (steps_.empty()) return {0, 0, Duration::max()};
    Duration base{0};
    Duration pos = t;
    if (t >= total_) {
      if (!repeat_ || total_ <= Duration::zero())
        return {steps_.back().rate, 0, Duration::max()};
      pos = Duration(t.count() % total_.count());
      base = t - pos;
    }
    Duration start{0};
    for (const RateStep& s : steps_) {
      if (pos < start + s.length) return {s.rate, 0, base + start + s.length};
      start += s.length;
    }
    return {steps_.back().rate, 0, Duration::max()};
  }

 private:
  std::vector<RateStep> steps_;
  bool repeat_;
  Duration total_{0};
};

// Shared by the weekly and daily schedules: the zone's offset at an instant and
// how long it holds.
class LocalClock {
 public:
  LocalClock(std::shared_ptr<const TimeZone> zone, WallTime origin_wall)
      : zone_(std::move(zone)),
        origin_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(
                       origin_wall.time_since_epoch())
                       .count()) {}

  struct Local {
    int64_t local_ns;       // local wall time, ns since 1970-01-01 local
    Duration until_change;  // until the zone's offset changes
  };
  Local At(Duration t) const {
    const int64_t utc_ns = origin_ns_ + t.count();
    const int64_t utc_s = FloorDiv(utc_ns, kNsPerSec);
    const ZoneState z = zone_->Lookup(utc_s);
    Local l;
    l.local_ns = utc_ns + int64_t{z.utc_offset} * kNsPerSec;
    l.until_change =
        z.next_change == INT64_MAX || z.next_change > INT64_MAX / kNsPerSec - 1
            ? Duration::max()
            : Duration(z.next_change * kNsPerSec - utc_ns);
    return l;
  }

 private:
  std::shared_ptr<const TimeZone> zone_;
  int64_t origin_ns_;
};

Duration EndAfter(Duration t, Duration a, Duration b) {
  Duration d = std::min(a, b);
  if (d == Duration::max() || t > Duration::max() - d) return Duration::max();
  return t + d;
}

class WeeklySchedule final : public RateSchedule {
 public:
  WeeklySchedule(const ScheduleSpec& spec, WallTime origin_wall)
      : clock_(spec.zone, origin_wall),
        default_rate_(spec.rate),
        windows_(spec.windows) {
    // Every window edge as an offset into the local week (Monday 00:00).
    for (const WeeklyWindow& w : windows_) {
      for (int day = 0; day < 7; ++day) {
        if (!(w.days & (1u << day))) continue;
        int64_t start = day * kNsPerDay + w.start_minute * kNsPerMinute;
        int64_t end_minute = w.end_minute > w.start_minute
                                 ? w.end_minute
                                 : w.end_minute + 24 * 60;
        int64_t end = day * kNsPerDay + end_minute * kNsPerMinute;
        edges_.push_back(FloorMod(start, kNsPerWeek));
        edges_.push_back(FloorMod(end, kNsPerWeek));
      }
    }
    std::sort(edges_.begin(), edges_.end());
    edges_.erase(std::unique(edges_.begin(), edges_.end()), edges_.end());
  }

  RatePiece PieceAt(Duration t) const override {
    const LocalClock::Local l = clock_.At(t);
    // 1970-01-01 was a Thursday: shift so that week offsets start on Monday.
    const int64_t in_week = FloorMod(l.local_ns + 3 * kNsPerDay, kNsPerWeek);
    const double rate = RateAtWeekOffset(in_week);
    if (edges_.empty())
      return {rate, 0, EndAfter(t, l.until_change, Duration::max())};
    auto it = std::upper_bound(edges_.begin(), edges_.end(), in_week);
    int64_t next = it == edges_.end() ? edges_.front() + kNsPerWeek : *it;
    return {rate, 0, EndAfter(t, l.until_change, Duration(next - in_week))};
  }

 private:
  double RateAtWeekOffset(int64_t in_week) const {
    const int64_t day = in_week / kNsPerDay;
    const int64_t in_day = in_week % kNsPerDay;
    for (const WeeklyWindow& w : windows_) {
      const int64_t start = w.start_minute * kNsPerMinute;
      const int64_t end = w.end_minute * kNsPerMinute;
      const bool overnight = w.end_minute <= w.start_minute;
      const bool today = (w.days >> day) & 1u;
      const bool yesterday = (w.days >> ((day + 6) % 7)) & 1u;
      if (!overnight) {
        if (today && in_day >= start && in_day < end) return w.rate;
      } else {
        if (today && in_day >= start) return w.rate;
        if (yesterday && in_day < end) return w.rate;
      }
    }
    return default_rate_;
  }

  LocalClock clock_;
  double default_rate_;
  std::vector<WeeklyWindow> windows_;
  std::vector<int64_t> edges_;
};

class DailySchedule final : public RateSchedule {
 public:
  DailySchedule(const ScheduleSpec& spec, WallTime origin_wall)
      : clock_(spec.zone, origin_wall),
        base_(spec.rate),
        hourly_(spec.hourly) {}

  RatePiece PieceAt(Duration t) const override {
    const LocalClock::Local l = clock_.At(t);
    const int64_t in_day = FloorMod(l.local_ns, kNsPerDay);
    const int64_t hour = in_day / kNsPerHour;
    const double rate = base_ * hourly_[static_cast<std::size_t>(hour)];
    return {rate, 0,
            EndAfter(t, l.until_change,
                     Duration((hour + 1) * kNsPerHour - in_day))};
  }

 private:
  LocalClock clock_;
  double base_;
  std::array<double, 24> hourly_;
};

}  // namespace

bool ScheduleSpec::operator==(const ScheduleSpec& o) const {
  return kind == o.kind && rate == o.rate && from == o.from && to == o.to &&
         over == o.over && steps == o.steps && repeat == o.repeat &&
         windows == o.windows && hourly == o.hourly &&
         (zone ? zone->name() : "") == (o.zone ? o.zone->name() : "");
}

double ScheduleSpec::PeakRate() const {
  switch (kind) {
    case ScheduleKind::kConstant:
      return rate;
    case ScheduleKind::kRamp:
      return std::max(from, to);
    case ScheduleKind::kSteps: {
      double peak = 0;
      for (const RateStep& s : steps) peak = std::max(peak, s.rate);
      return peak;
    }
    case ScheduleKind::kWeekly: {
      double peak = rate;
      for (const WeeklyWindow& w : windows) peak = std::max(peak, w.rate);
      return peak;
    }
    case ScheduleKind::kDaily:
      return rate * *std::max_element(hourly.begin(), hourly.end());
  }
  return rate;
}

ScheduleSpec ScheduleSpec::Scaled(double factor) const {
  ScheduleSpec out = *this;
  out.rate *= factor;  // constant, weekly's otherwise, daily's base
  out.from *= factor;
  out.to *= factor;
  for (RateStep& s : out.steps) s.rate *= factor;
  for (WeeklyWindow& w : out.windows) w.rate *= factor;
  return out;  // daily multipliers scale the base rate already
}

std::unique_ptr<RateSchedule> BuildSchedule(const ScheduleSpec& spec,
                                            WallTime origin_wall) {
  switch (spec.kind) {
    case ScheduleKind::kConstant:
      return std::make_unique<ConstantSchedule>(spec.rate);
    case ScheduleKind::kRamp:
      return std::make_unique<RampSchedule>(spec.from, spec.to, spec.over);
    case ScheduleKind::kSteps:
      return std::make_unique<StepsSchedule>(spec.steps, spec.repeat);
    case ScheduleKind::kWeekly:
      return std::make_unique<WeeklySchedule>(spec, origin_wall);
    case ScheduleKind::kDaily:
      return std::make_unique<DailySchedule>(spec, origin_wall);
  }
  return std::make_unique<ConstantSchedule>(spec.rate);
}

}  // namespace polar
