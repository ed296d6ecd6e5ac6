// Arrival processes on fake time: uniform spacing, Poisson statistics, and the
// integrated-rate inversion that keeps schedule changes from bursting or
// stalling.
#include "daemon/schedule/arrivals.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace polar {
namespace {

using namespace std::chrono_literals;

const WallTime kWall{std::chrono::seconds(1'700'000'000)};

ScheduleSpec Constant(double rate) {
  ScheduleSpec s;
  s.kind = ScheduleKind::kConstant;
  s.rate = rate;
  return s;
}

std::vector<double> ArrivalSeconds(ArrivalProcess& p, Duration until) {
  std::vector<double> out;
  while (p.next() - MonoTime{} < until) {
    out.push_back(ToSeconds(p.next() - MonoTime{}));
    p.Advance();
  }
  return out;
}

TEST(UniformArrivals, SpacesArrivalsByTheInverseOfTheRate) {
  ArrivalProcess p(Constant(4), ArrivalKind::kUniform, 1, MonoTime{}, kWall);
  EXPECT_EQ(p.next(), MonoTime{});  // the first one is due at once
  p.Advance();
  EXPECT_EQ(p.next() - MonoTime{}, 250ms);
}

TEST(UniformArrivals, DoesNotDriftOverAMillionArrivalsAtAnAwkwardRate) {
  // 3/s has a gap of 333,333,333.33 ns; truncating would lose 0.33 s over a
  // million arrivals.
  ArrivalProcess p(Constant(3), ArrivalKind::kUniform, 1, MonoTime{}, kWall);
  for (int i = 0; i < 1'000'000; ++i) p.Advance();
  EXPECT_NEAR(ToSeconds(p.next() - MonoTime{}), 1'000'000 / 3.0, 1e-6);
}

TEST(UniformArrivals, ZeroRateProducesNoArrivals) {
  ArrivalProcess p(Constant(0), ArrivalKind::kUniform, 1, MonoTime{}, kWall);
  EXPECT_EQ(p.next(), MonoTime::max());
  EXPECT_EQ(p.RateAt(MonoTime{} + 1h), 0);
}

TEST(UniformArrivals, ARampProducesExactlyItsIntegratedRate) {
  // 0 -> 100/s over 10 s is 500 arrivals; the k-th at sqrt(k / 5) s.
  ScheduleSpec s;
  s.kind = ScheduleKind::kRamp;
  s.from = 0;
  s.to = 100;
  s.over = 10s;
  ArrivalProcess p(s, ArrivalKind::kUniform, 1, MonoTime{}, kWall);
  auto t = ArrivalSeconds(p, 10s);
  ASSERT_EQ(t.size(), 500u);  // arrivals 0..499; the 500th lands at 10 s
  EXPECT_NEAR(t[20], std::sqrt(20 / 5.0), 1e-6);
  EXPECT_NEAR(t[499], std::sqrt(499 / 5.0), 1e-6);
  // After the ramp it holds 100/s.
  EXPECT_NEAR(ToSeconds(p.next() - MonoTime{}), 10.0, 1e-6);
  p.Advance();
  EXPECT_NEAR(ToSeconds(p.next() - MonoTime{}), 10.01, 1e-6);
}

TEST(UniformArrivals, AStepDownDoesNotBurstTheOldBacklog) {
  // 10/s for 1 s, then 1/s. A burst would fire several arrivals right after
  // the step; a stall would wait longer than 1 s for the next one.
  ScheduleSpec s;
  s.kind = ScheduleKind::kSteps;
  s.steps = {{10, 1s}, {1, 10s}};
  ArrivalProcess p(s, ArrivalKind::kUniform, 1, MonoTime{}, kWall);
  auto t = ArrivalSeconds(p, 4s);
  // 0, 0.1, ..., 0.9 (10 arrivals), then 1.0 (the unit completes at the
  // edge), then one per second.
  ASSERT_EQ(t.size(), 13u);
  EXPECT_NEAR(t[10], 1.0, 1e-9);
  EXPECT_NEAR(t[11], 2.0, 1e-9);
  EXPECT_NEAR(t[12], 3.0, 1e-9);
}

TEST(UniformArrivals, AStepUpFromAnHourlyRateDoesNotWaitOutTheHour) {
  // 1/h for 30 s, then 100/s: a gap computed from the old rate would stall
  // for an hour; integrated rate spends the 30 s of credit (30/3600 of a unit)
  // and finishes the unit at 100/s within 10 ms.
  ScheduleSpec s;
  s.kind = ScheduleKind::kSteps;
  s.steps = {{1.0 / 3600, 30s}, {100, 1h}};
  ArrivalProcess p(s, ArrivalKind::kUniform, 1, MonoTime{}, kWall);
  EXPECT_EQ(p.next(), MonoTime{});
  p.Advance();
  const double second = ToSeconds(p.next() - MonoTime{});
  EXPECT_GT(second, 30.0);
  EXPECT_LT(second, 30.01);
  p.Advance();
  EXPECT_NEAR(ToSeconds(p.next() - MonoTime{}), second + 0.01, 1e-9);
}

TEST(UniformArrivals,
     AHandoverCarriesTheRemainingWorkSoAReloadNeitherBurstsNorStalls) {
  ArrivalProcess old(Constant(1), ArrivalKind::kUniform, 1, MonoTime{}, kWall);
  old.Advance();  // next at 1 s
  // Reload at 0.75 s: a quarter of a unit is left.
  const MonoTime now = MonoTime{} + 750ms;
  auto left = old.RemainingWork(now);
  ASSERT_TRUE(left.has_value());
  EXPECT_NEAR(*left, 0.25, 1e-9);
  // The new schedule is 100/s: the first arrival comes 2.5 ms later, not at
  // once (burst) and not after 1 s (stall).
  ArrivalProcess fresh(Constant(100), ArrivalKind::kUniform, 1, now, kWall,
                       *left);
  EXPECT_NEAR(ToSeconds(fresh.next() - now), 0.0025, 1e-9);
}

TEST(PoissonArrivals, CountsPerSecondHaveTheMeanAndVarianceOfAPoissonProcess) {
  constexpr double kRate = 100;
  constexpr int kSeconds = 2000;
  ArrivalProcess p(Constant(kRate), ArrivalKind::kPoisson, 42, MonoTime{},
                   kWall);
  std::vector<int> counts(kSeconds, 0);
  while (p.next() - MonoTime{} < std::chrono::seconds(kSeconds)) {
    ++counts[static_cast<std::size_t>((p.next() - MonoTime{}) / 1s)];
    p.Advance();
  }
  double mean = 0;
  for (int c : counts) mean += c;
  mean /= kSeconds;
  double var = 0;
  for (int c : counts) var += (c - mean) * (c - mean);
  var /= kSeconds - 1;
  // Mean: standard error sqrt(100/2000) = 0.22; 1.5 is ~7 sigma.
  EXPECT_NEAR(mean, kRate, 1.5);
  // Index of dispersion var/mean is 1 for Poisson (uniform arrivals give 0);
  // its standard error is sqrt(2/(n-1)) = 0.032.
  EXPECT_NEAR(var / mean, 1.0, 0.15);
}

TEST(PoissonArrivals, GapsPassAKolmogorovSmirnovTestForTheExponential) {
  constexpr double kRate = 50;
  constexpr int kN = 5000;
  ArrivalProcess p(Constant(kRate), ArrivalKind::kPoisson, 7, MonoTime{},
                   kWall);
  std::vector<double> gaps;
  double last = ToSeconds(p.next() - MonoTime{});
  for (int i = 0; i < kN; ++i) {
    p.Advance();
    double now = ToSeconds(p.next() - MonoTime{});
    gaps.push_back(now - last);
    last = now;
  }
  std::sort(gaps.begin(), gaps.end());
  double d = 0;
  for (int i = 0; i < kN; ++i) {
    double cdf = 1 - std::exp(-kRate * gaps[static_cast<std::size_t>(i)]);
    d = std::max({d, cdf - double(i) / kN, double(i + 1) / kN - cdf});
  }
  // Critical value at alpha = 0.01: 1.63 / sqrt(n) = 0.023.
  EXPECT_LT(d, 1.63 / std::sqrt(double(kN)));
  // And uniform gaps would fail it: D for constant 1/rate gaps is ~0.63.
  std::vector<double> uniform(kN, 1 / kRate);
  double du = 0;
  for (int i = 0; i < kN; ++i) {
    double cdf = 1 - std::exp(-kRate * uniform[static_cast<std::size_t>(i)]);
    du = std::max({du, cdf - double(i) / kN, double(i + 1) / kN - cdf});
  }
  EXPECT_GT(du, 1.63 / std::sqrt(double(kN)));
}

TEST(PoissonArrivals, FollowARampThroughTheTimeChange) {
  // 0 -> 200/s over 20 s: expected 2000 arrivals, 500 of them in the first
  // half (the integral of a linear ramp to t is t^2-shaped).
  ScheduleSpec s;
  s.kind = ScheduleKind::kRamp;
  s.from = 0;
  s.to = 200;
  s.over = 20s;
  ArrivalProcess p(s, ArrivalKind::kPoisson, 3, MonoTime{}, kWall);
  auto t = ArrivalSeconds(p, 20s);
  auto first_half =
      std::count_if(t.begin(), t.end(), [](double x) { return x < 10; });
  // Poisson counts: sd sqrt(2000) = 45 and sqrt(500) = 22; 5 sigma bounds.
  EXPECT_NEAR(double(t.size()), 2000, 225);
  EXPECT_NEAR(double(first_half), 500, 112);
}

TEST(PoissonArrivals, TheSameSeedGivesTheSameArrivals) {
  ArrivalProcess a(Constant(10), ArrivalKind::kPoisson, 9, MonoTime{}, kWall);
  ArrivalProcess b(Constant(10), ArrivalKind::kPoisson, 9, MonoTime{}, kWall);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(a.next(), b.next());
    a.Advance();
    b.Advance();
  }
}

}  // namespace
}  // namespace polar
