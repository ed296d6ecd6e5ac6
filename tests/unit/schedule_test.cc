// Rate schedules on fake time: every schedule type, window edges, overnight
// windows, time zones and the DST nights. Instants are UTC Unix seconds
// checked with zdump/python.
#include "daemon/schedule/schedule.h"

#include <gtest/gtest.h>

#include "daemon/schedule/arrivals.h"

namespace polar {
namespace {

using namespace std::chrono_literals;

WallTime At(int64_t unix_seconds) {
  return WallTime{std::chrono::seconds(unix_seconds)};
}

std::shared_ptr<const TimeZone> Berlin() {
  std::string why;
  auto tz = TimeZone::Load("Europe/Berlin", &why);
  EXPECT_TRUE(tz) << why;
  return tz;
}

ScheduleSpec OfficeHours() {
  // "Mon-Fri 09:00-18:00 Europe/Berlin -> 5/s, otherwise 1/s"
  ScheduleSpec s;
  s.kind = ScheduleKind::kWeekly;
  s.rate = 1;
  s.zone = Berlin();
  s.windows = {WeeklyWindow{0b0011111, 9 * 60, 18 * 60, 5}};
  return s;
}

TEST(ConstantSchedule, IsOnePieceForever) {
  ScheduleSpec s;
  s.rate = 7;
  auto sched = BuildSchedule(s, At(0));
  RatePiece p = sched->PieceAt(123s);
  EXPECT_EQ(p.rate, 7);
  EXPECT_EQ(p.slope, 0);
  EXPECT_EQ(p.end, Duration::max());
}

TEST(RampSchedule, RisesLinearlyThenHolds) {
  ScheduleSpec s;
  s.kind = ScheduleKind::kRamp;
  s.from = 10;
  s.to = 50;
  s.over = 40s;
  auto sched = BuildSchedule(s, At(0));
  RatePiece mid = sched->PieceAt(10s);
  EXPECT_DOUBLE_EQ(mid.rate, 20);
  EXPECT_DOUBLE_EQ(mid.slope, 1);
  EXPECT_EQ(mid.end, 40s);
  EXPECT_EQ(sched->RateAt(40s), 50);
  EXPECT_EQ(sched->RateAt(1h), 50);
  // (10 + 50) / 2 * 40 s = 1200 arrivals during the ramp.
  EXPECT_NEAR(IntegrateRate(*sched, 0s, 40s), 1200, 1e-9);
}

TEST(RampSchedule, ADownwardRampToZeroEndsTheArrivals) {
  ScheduleSpec s;
  s.kind = ScheduleKind::kRamp;
  s.from = 10;
  s.to = 0;
  s.over = 10s;
  auto sched = BuildSchedule(s, At(0));
  // 50 arrivals in total; the 50th unit completes exactly at 10 s.
  auto at = SolveWork(*sched, 0s, 50);
  ASSERT_TRUE(at);
  EXPECT_NEAR(ToSeconds(*at), 10.0, 1e-6);
  EXPECT_FALSE(SolveWork(*sched, 0s, 50.5));
}

TEST(StepsSchedule, HoldsTheLastStepUnlessItRepeats) {
  ScheduleSpec s;
  s.kind = ScheduleKind::kSteps;
  s.steps = {{2, 10s}, {8, 5s}};
  auto hold = BuildSchedule(s, At(0));
  EXPECT_EQ(hold->RateAt(0s), 2);
  EXPECT_EQ(hold->PieceAt(3s).end, 10s);
  EXPECT_EQ(hold->RateAt(10s), 8);
  EXPECT_EQ(hold->RateAt(1h), 8);
  EXPECT_EQ(hold->PieceAt(1h).end, Duration::max());
  s.repeat = true;
  auto cycle = BuildSchedule(s, At(0));
  EXPECT_EQ(cycle->RateAt(16s), 2);  // second lap
  EXPECT_EQ(cycle->PieceAt(16s).end, 25s);
  EXPECT_EQ(cycle->RateAt(27s), 8);
  EXPECT_NEAR(IntegrateRate(*cycle, 0s, 150s), 10 * (20 + 40), 1e-9);
}

TEST(WeeklySchedule, OpensTheWindowAtNineLocalTime) {
  // Friday 2024-03-29 07:59 UTC = 08:59 CET.
  auto sched = BuildSchedule(OfficeHours(), At(1'711'699'140));
  RatePiece before = sched->PieceAt(0s);
  EXPECT_EQ(before.rate, 1);
  EXPECT_EQ(before.end, 60s);  // 09:00 CET
  EXPECT_EQ(sched->RateAt(60s), 5);
  EXPECT_EQ(sched->RateAt(60s - 1ns), 1);
  EXPECT_EQ(sched->PieceAt(60s).end, 60s + 9h);  // closes at 18:00
  EXPECT_EQ(sched->RateAt(60s + 9h), 1);
}

TEST(WeeklySchedule, TheWeekendAcrossTheSpringForwardNightIsAnHourShorter) {
  // From Friday 18:00 CET (17:00 UTC) the next edge is Monday 09:00 CEST
  // (07:00 UTC): 62 hours, not 63, because Sunday lost an hour.
  const int64_t friday_close = 1'711'699'140 + 60 + 9 * 3600;
  auto sched = BuildSchedule(OfficeHours(), At(friday_close));
  EXPECT_EQ(sched->RateAt(0s), 1);
  const int64_t monday_open = 1'711'954'800;
  const Duration gap = std::chrono::seconds(monday_open - friday_close);
  EXPECT_EQ(gap, 62h);
  EXPECT_EQ(sched->RateAt(gap - 1ns), 1);
  EXPECT_EQ(sched->RateAt(gap), 5);
  EXPECT_NEAR(IntegrateRate(*sched, 0s, gap), 62 * 3600, 1e-6);
}

TEST(WeeklySchedule, AWholeWeekIntegratesToFortyFiveBusyHours) {
  // Monday 2024-06-03 02:00 CEST, one full week without a DST change.
  auto sched = BuildSchedule(OfficeHours(), At(1'717'372'800));
  const double expected = 45 * 3600 * 5 + 123 * 3600 * 1;
  EXPECT_NEAR(IntegrateRate(*sched, 0s, 7 * 24h), expected, 1e-3);
}

TEST(WeeklySchedule, AnOvernightWindowRunsPastMidnightIntoTheNextDay) {
  ScheduleSpec s;
  s.kind = ScheduleKind::kWeekly;
  s.rate = 1;
  s.zone = Berlin();
  s.windows = {WeeklyWindow{0b0100000, 22 * 60, 6 * 60, 9}};  // Sat 22-06
  // Saturday 2024-06-01 20:00 UTC = 22:00 CEST.
  auto sched = BuildSchedule(s, At(1'717'272'000));
  EXPECT_EQ(sched->RateAt(0s), 9);
  EXPECT_EQ(sched->RateAt(5h), 9);  // Sunday 03:00
  EXPECT_EQ(sched->PieceAt(0s).end, 8h);
  EXPECT_EQ(sched->RateAt(8h), 1);        // Sunday 06:00
  EXPECT_EQ(sched->RateAt(24h + 5h), 1);  // Sunday night: not in the window
}

TEST(WeeklySchedule, ArrivalsSpeedUpAtTheEdgeWithoutStallingOrBursting) {
  auto spec = OfficeHours();
  // 08:59:59.5 CET: half a second before the window opens.
  const WallTime origin = At(1'711'699'140 + 59) + 500ms;
  ArrivalProcess p(spec, ArrivalKind::kUniform, 1, MonoTime{}, origin);
  EXPECT_EQ(p.next(), MonoTime{});
  p.Advance();
  // Half a unit at 1/s before 09:00, the other half at 5/s: 0.5 s + 0.1 s.
  EXPECT_NEAR(ToSeconds(p.next() - MonoTime{}), 0.6, 1e-9);
  p.Advance();
  EXPECT_NEAR(ToSeconds(p.next() - MonoTime{}), 0.8, 1e-9);
}

TEST(DailySchedule, ScalesTheBaseRateByTheLocalHour) {
  ScheduleSpec s;
  s.kind = ScheduleKind::kDaily;
  s.rate = 10;
  s.zone = Berlin();
  for (int h = 0; h < 24; ++h) s.hourly[static_cast<std::size_t>(h)] = h;
  // Monday 2024-06-03 00:00 UTC = 02:00 CEST.
  auto sched = BuildSchedule(s, At(1'717'372'800));
  EXPECT_EQ(sched->RateAt(0s), 20);
  EXPECT_EQ(sched->PieceAt(0s).end, 1h);
  EXPECT_EQ(sched->RateAt(1h), 30);
  // A day integrates to 10 * (0 + 1 + ... + 23) * 3600.
  EXPECT_NEAR(IntegrateRate(*sched, 0s, 24h), 10.0 * 276 * 3600, 1e-3);
}

TEST(DailySchedule, TheSkippedHourOfSpringForwardNeverHappens) {
  ScheduleSpec s;
  s.kind = ScheduleKind::kDaily;
  s.rate = 1;
  s.zone = Berlin();
  for (int h = 0; h < 24; ++h) s.hourly[static_cast<std::size_t>(h)] = h;
  // Sunday 2024-03-31 00:30 UTC = 01:30 CET; at 01:00 UTC clocks jump to 03:00.
  auto sched = BuildSchedule(s, At(1'711'845'000));
  EXPECT_EQ(sched->RateAt(0s), 1);
  EXPECT_EQ(sched->PieceAt(0s).end, 30min);
  EXPECT_EQ(sched->RateAt(30min), 3);  // hour 2 was skipped
  EXPECT_EQ(sched->PieceAt(30min).end, 90min);
}

TEST(DailySchedule, TheRepeatedHourOfFallBackIsLivedTwice) {
  ScheduleSpec s;
  s.kind = ScheduleKind::kDaily;
  s.rate = 1;
  s.zone = Berlin();
  for (int h = 0; h < 24; ++h) s.hourly[static_cast<std::size_t>(h)] = h;
  // Sunday 2024-10-27 00:30 UTC = 02:30 CEST; at 01:00 UTC it is 02:00 CET.
  auto sched = BuildSchedule(s, At(1'729'989'000));
  EXPECT_EQ(sched->RateAt(0s), 2);
  EXPECT_EQ(sched->PieceAt(0s).end, 30min);
  EXPECT_EQ(sched->RateAt(30min), 2);  // hour 2 again, in CET
  EXPECT_EQ(sched->PieceAt(30min).end, 90min);
  EXPECT_EQ(sched->RateAt(90min), 3);
}

TEST(ScheduleSpec, ComparesByValueIncludingTheZoneName) {
  ScheduleSpec a = OfficeHours();
  ScheduleSpec b = OfficeHours();
  EXPECT_EQ(a, b);
  b.windows[0].rate = 6;
  EXPECT_FALSE(a == b);
  b = a;
  b.zone = TimeZone::Utc();
  EXPECT_FALSE(a == b);
  EXPECT_EQ(a.PeakRate(), 5);
}

}  // namespace
}  // namespace polar
