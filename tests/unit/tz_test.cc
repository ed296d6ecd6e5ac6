// TimeZone: the TZif reader and POSIX TZ rules against offsets known from
// tzdata (zdump), including DST switch instants and zones south of the equator.
#include "daemon/schedule/tz.h"

#include <gtest/gtest.h>

#include <string>

namespace polar {
namespace {

std::shared_ptr<const TimeZone> MustLoad(const std::string& name) {
  std::string why;
  auto tz = TimeZone::Load(name, &why);
  EXPECT_TRUE(tz) << why;
  return tz;
}

TEST(TimeZone, BerlinSwitchesToSummerTimeAtOneUtcOnTheLastSundayOfMarch) {
  auto berlin = MustLoad("Europe/Berlin");
  ASSERT_TRUE(berlin);
  constexpr int64_t kSpring2024 = 1'711'846'800;  // 2024-03-31 01:00 UTC
  ZoneState before = berlin->Lookup(kSpring2024 - 1);
  EXPECT_EQ(before.utc_offset, 3600);
  EXPECT_FALSE(before.dst);
  EXPECT_EQ(before.next_change, kSpring2024);
  ZoneState after = berlin->Lookup(kSpring2024);
  EXPECT_EQ(after.utc_offset, 7200);
  EXPECT_TRUE(after.dst);
  EXPECT_EQ(after.next_change, 1'729'990'800);  // 2024-10-27 01:00 UTC
  EXPECT_EQ(berlin->Lookup(1'729'990'800).utc_offset, 3600);
}

TEST(TimeZone, BerlinAfterTheTableFollowsTheFooterRule) {
  // Fat files list transitions up to 2037; 2050 comes from the POSIX footer.
  auto berlin = MustLoad("Europe/Berlin");
  ASSERT_TRUE(berlin);
  constexpr int64_t kSpring2050 = 2'531'955'600;  // 2050-03-27 01:00 UTC
  EXPECT_EQ(berlin->Lookup(kSpring2050 - 1).utc_offset, 3600);
  EXPECT_EQ(berlin->Lookup(kSpring2050 - 1).next_change, kSpring2050);
  EXPECT_EQ(berlin->Lookup(kSpring2050).utc_offset, 7200);
  EXPECT_EQ(berlin->Lookup(kSpring2050).next_change,
            2'550'704'400);  // 2050-10-30 01:00 UTC
}

TEST(TimeZone, NewYorkUsesTheSecondSundayOfMarchAndFirstOfNovember) {
  auto ny = MustLoad("America/New_York");
  ASSERT_TRUE(ny);
  EXPECT_EQ(ny->Lookup(1'710'054'000 - 1).utc_offset, -5 * 3600);
  EXPECT_EQ(ny->Lookup(1'710'054'000).utc_offset, -4 * 3600);
  EXPECT_EQ(ny->Lookup(1'730'613'600 - 1).utc_offset, -4 * 3600);
  EXPECT_EQ(ny->Lookup(1'730'613'600).utc_offset, -5 * 3600);
}

TEST(TimeZone, SydneyEndsSummerTimeInApril) {
  auto sydney = MustLoad("Australia/Sydney");
  ASSERT_TRUE(sydney);
  constexpr int64_t kEnd2024 = 1'712'419'200;  // 2024-04-06 16:00 UTC
  EXPECT_EQ(sydney->Lookup(kEnd2024 - 1).utc_offset, 11 * 3600);
  EXPECT_TRUE(sydney->Lookup(kEnd2024 - 1).dst);
  EXPECT_EQ(sydney->Lookup(kEnd2024).utc_offset, 10 * 3600);
}

TEST(TimeZone, KolkataHasAHalfHourOffsetAndNoChanges) {
  auto kolkata = MustLoad("Asia/Kolkata");
  ASSERT_TRUE(kolkata);
  ZoneState s = kolkata->Lookup(1'711'846'800);
  EXPECT_EQ(s.utc_offset, 5 * 3600 + 1800);
  EXPECT_EQ(s.next_change, INT64_MAX);
}

TEST(TimeZone, UnknownAndPathLikeNamesAreRefusedWithAReason) {
  std::string why;
  EXPECT_FALSE(TimeZone::Load("Europe/Atlantis", &why));
  EXPECT_NE(why.find("Europe/Atlantis"), std::string::npos);
  why.clear();
  EXPECT_FALSE(TimeZone::Load("../../etc/passwd", &why));
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(TimeZone::FromTzif("x", "not a tzif file at all", &why));
}

TEST(TimeZone, UtcNeedsNoFiles) {
  std::string why;
  auto utc = TimeZone::Load("UTC", &why, "/nonexistent");
  ASSERT_TRUE(utc);
  EXPECT_EQ(utc->Lookup(0).utc_offset, 0);
  EXPECT_EQ(utc->Lookup(0).next_change, INT64_MAX);
}

// A "slim" TZif v2 file: no transitions at all, only the POSIX footer.
std::string SlimTzif(const std::string& footer, int32_t type0_offset) {
  auto header = [](std::string& out) {
    out += "TZif2";
    out += std::string(15, '\0');
    auto be32 = [&](uint32_t v) {
      for (int s = 24; s >= 0; s -= 8)
        out += static_cast<char>((v >> s) & 0xff);
    };
    for (uint32_t v : {0u, 0u, 0u, 0u, 1u, 4u}) be32(v);
  };
  auto block = [&](std::string& out) {
    for (int s = 24; s >= 0; s -= 8)
      out +=
          static_cast<char>((static_cast<uint32_t>(type0_offset) >> s) & 0xff);
    out += '\0';  // isdst
    out += '\0';  // desigidx
    out += std::string("CET\0", 4);
  };
  std::string out;
  header(out);
  block(out);
  header(out);
  block(out);
  out += "\n" + footer + "\n";
  return out;
}

TEST(TimeZone, ASlimFileIsAnsweredFromItsFooterRule) {
  std::string why;
  auto tz = TimeZone::FromTzif(
      "Slim/Berlin", SlimTzif("CET-1CEST,M3.5.0,M10.5.0/3", 3600), &why);
  ASSERT_TRUE(tz) << why;
  EXPECT_EQ(tz->Lookup(1'711'846'800 - 1).utc_offset, 3600);
  EXPECT_EQ(tz->Lookup(1'711'846'800).utc_offset, 7200);
  EXPECT_EQ(tz->Lookup(1'711'846'800 - 1).next_change, 1'711'846'800);
}

TEST(PosixTz, ParsesQuotedNamesFractionalOffsetsAndJulianDays) {
  auto tehran = PosixTz::Parse("<+0330>-3:30");
  ASSERT_TRUE(tehran);
  EXPECT_EQ(tehran->std_offset, 3 * 3600 + 1800);
  EXPECT_FALSE(tehran->has_dst);
  auto julian = PosixTz::Parse("XST5XDT,J60/2,J300/2");
  ASSERT_TRUE(julian);
  EXPECT_EQ(julian->dst_offset, -4 * 3600);
  // J60 is March 1 even in a leap year: 2024-03-01 07:00 UTC.
  constexpr int64_t kMarch1 = 1'709'276'400;
  EXPECT_FALSE(julian->Lookup(kMarch1 - 1).dst);
  EXPECT_TRUE(julian->Lookup(kMarch1).dst);
  EXPECT_FALSE(PosixTz::Parse("CET-1CEST,M13.5.0,M10.5.0"));
  EXPECT_FALSE(PosixTz::Parse("X1"));
}

TEST(Calendar, DaysAndWeekdaysMatchKnownDates) {
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(2024, 3, 31), 19'813);
  EXPECT_EQ(WeekdayMondayFirst(0), 3);                           // Thursday
  EXPECT_EQ(WeekdayMondayFirst(DaysFromCivil(2024, 3, 31)), 6);  // Sunday
  EXPECT_EQ(WeekdayMondayFirst(-1), 2);  // 1969-12-31, Wednesday
}

}  // namespace
}  // namespace polar
