#include "daemon/schedule/arrivals.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace polar {
namespace {

// 100,000 pieces of zero rate is ~11 years of hourly pieces: a schedule that
// produces nothing for that long produces nothing.
constexpr int kMaxPieces = 100'000;

// SolveWork with a sub-nanosecond carry in and out, so uniform gaps such as
// 1/3 s do not drift by a fraction of a nanosecond per arrival.
std::optional<Duration> Solve(const RateSchedule& schedule, Duration from,
                              double carry_in_ns, double work,
                              double* carry_out_ns) {
  *carry_out_ns = carry_in_ns;
  Duration t = from;
  if (work <= 0) {
    // "At once" means at the first instant the schedule asks for anything:
    // a scenario whose rate is zero tonight starts when the rate rises.
    for (int i = 0; i < kMaxPieces; ++i) {
      const RatePiece p = schedule.PieceAt(t);
      if (p.rate > 0 || p.slope > 0) return t;
      if (p.end == Duration::max()) return std::nullopt;
      t = p.end;
      *carry_out_ns = 0;
    }
    return std::nullopt;
  }
  double carry = carry_in_ns;
  for (int i = 0; i < kMaxPieces; ++i) {
    const RatePiece p = schedule.PieceAt(t);
    const double r0 = std::max(p.rate, 0.0);
    const double k = p.slope;
    const bool forever = p.end == Duration::max();
    const double len = forever
                           ? std::numeric_limits<double>::infinity()
                           : std::max(0.0, ToSeconds(p.end - t) - carry * 1e-9);
    double area;
    if (forever) {
      area = (r0 > 0 || k > 0) ? std::numeric_limits<double>::infinity() : 0;
    } else {
      area = std::max(0.0, r0 * len + 0.5 * k * len * len);
    }
    if (area > 0 && work <= area) {
      double x;
      if (std::abs(k) * work <= 1e-12 * r0 * r0) {
        x = work / r0;
      } else {
        // The stable root of k/2 x^2 + r0 x - work = 0 (no cancellation when
        // r0 >> k x).
        const double disc = std::max(0.0, r0 * r0 + 2 * k * work);
        x = 2 * work / (r0 + std::sqrt(disc));
      }
      if (!forever) x = std::min(x, len);
      const double ns = x * 1e9 + carry;
      const double whole = std::floor(ns);
      *carry_out_ns = ns - whole;
      return t + Duration(static_cast<Duration::rep>(whole));
    }
    if (forever) return std::nullopt;
    work -= area;
    t = p.end;
    carry = 0;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Duration> SolveWork(const RateSchedule& schedule, Duration from,
                                  double work) {
  double carry = 0;
  return Solve(schedule, from, 0, work, &carry);
}

double IntegrateRate(const RateSchedule& schedule, Duration from, Duration to) {
  double total = 0;
  Duration t = from;
  for (int i = 0; i < kMaxPieces && t < to; ++i) {
    const RatePiece p = schedule.PieceAt(t);
    const Duration end = std::min(p.end, to);
    const double len = ToSeconds(end - t);
    total += std::max(0.0, p.rate * len + 0.5 * p.slope * len * len);
    t = end;
  }
  return total;
}

double ShardPhase(const ScheduleSpec& full, Shard shard, WallTime origin_wall) {
  if (!shard.sharded()) return 0;
  const double offset = static_cast<double>(shard.index) / shard.count;
  if (full.kind != ScheduleKind::kConstant || !(full.rate > 0)) return offset;
  // Where the shard's grid stands at origin_wall, in long double: Unix time in
  // nanoseconds (1.8e18) reduced modulo the shard's period (N / rate) keeps
  // ~1e-10 s of precision where double would keep ~400 ns.
  const long double period_ns =
      static_cast<long double>(shard.count) * 1e9L / full.rate;
  const long double now_ns = static_cast<long double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          origin_wall.time_since_epoch())
          .count());
  const double done =
      static_cast<double>(std::fmod(now_ns, period_ns) / period_ns);
  double work = offset - done;  // the next point k + i/N of the grid
  if (work < 0) work += 1;
  return std::clamp(work, 0.0, 1.0);
}

ArrivalProcess::ArrivalProcess(const ScheduleSpec& spec, ArrivalKind kind,
                               uint64_t seed, MonoTime origin,
                               WallTime origin_wall,
                               std::optional<double> first_work,
                               std::optional<MonoTime> resume_at)
    : schedule_(BuildSchedule(spec, origin_wall)),
      kind_(kind),
      rng_(seed),
      origin_(origin) {
  if (resume_at && *resume_at > origin_) position_ = *resume_at - origin_;
  double work = first_work ? *first_work
                           : (kind_ == ArrivalKind::kUniform ? 0 : DrawWork());
  Place(work);
}

double ArrivalProcess::DrawWork() {
  if (kind_ == ArrivalKind::kUniform) return 1.0;
  // Exp(1) by inversion; Uniform() is in [0, 1), so log1p(-u) is finite.
  return -std::log1p(-rng_.Uniform());
}

void ArrivalProcess::Place(double work) {
  double carry = 0;
  auto at = Solve(*schedule_, position_, carry_ns_, work, &carry);
  if (!at) {
    next_ = MonoTime::max();
    return;
  }
  position_ = *at;
  carry_ns_ = carry;
  next_ = origin_ + position_;
}

void ArrivalProcess::Advance() {
  if (next_ == MonoTime::max()) return;
  Place(DrawWork());
}

double ArrivalProcess::RateAt(MonoTime t) const {
  return schedule_->RateAt(std::max(Duration::zero(), t - origin_));
}

MonoTime ArrivalProcess::RateChangeAfter(MonoTime t) const {
  const RatePiece p =
      schedule_->PieceAt(std::max(Duration::zero(), t - origin_));
  return p.end == Duration::max() ? MonoTime::max() : origin_ + p.end;
}

std::optional<double> ArrivalProcess::RemainingWork(MonoTime now) const {
  if (next_ == MonoTime::max()) return std::nullopt;
  const Duration from = std::max(Duration::zero(), now - origin_);
  if (from >= position_) return 0.0;
  double work = IntegrateRate(*schedule_, from, position_);
  if (kind_ == ArrivalKind::kUniform) work = std::min(work, 1.0);
  return work;
}

}  // namespace polar
