// TimeZone: zones looked up through cctz against offsets known from tzdata
// (zdump), including DST switch instants, instants after the files' tables
// (their POSIX rule) and zones south of the equator.
#include "daemon/schedule/tz.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
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
  EXPECT_NE(why.find("unknown time zone \"Europe/Atlantis\""),
            std::string::npos)
      << why;
  for (const char* name :
       {"../../etc/passwd", "/usr/share/zoneinfo/Europe/Berlin",
        "libc:Europe/Berlin", ""}) {
    why.clear();
    EXPECT_FALSE(TimeZone::Load(name, &why)) << name;
    EXPECT_NE(why.find("is not a time zone name"), std::string::npos) << why;
  }
}

TEST(TimeZone, UtcNeedsNoFiles) {
  // cctz reads $TZDIR instead of /usr/share/zoneinfo when it is set.
  const char* old = std::getenv("TZDIR");
  const std::string saved = old ? old : "";
  ::setenv("TZDIR", "/nonexistent", 1);
  std::string why;
  EXPECT_FALSE(TimeZone::Load("Europe/Paris", &why));  // no files indeed
  for (const char* name : {"UTC", "Etc/UTC"}) {
    auto utc = TimeZone::Load(name, &why);
    ASSERT_TRUE(utc) << why;
    EXPECT_EQ(utc->Lookup(0).utc_offset, 0);
    EXPECT_EQ(utc->Lookup(0).next_change, INT64_MAX);
  }
  if (old) {
    ::setenv("TZDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TZDIR");
  }
}

TEST(TimeZone, ARepeatedHourEndsAtTheSwitchNotAtTheRepeatedWallTime) {
  // Autumn 2024 in Berlin: 03:00 CEST becomes 02:00 CET at 01:00 UTC; the
  // change is at that instant, one hour after 02:00 local first occurs.
  auto berlin = MustLoad("Europe/Berlin");
  ASSERT_TRUE(berlin);
  constexpr int64_t kAutumn2024 = 1'729'990'800;  // 2024-10-27 01:00 UTC
  ZoneState summer = berlin->Lookup(kAutumn2024 - 3600);  // 02:00 CEST
  EXPECT_TRUE(summer.dst);
  EXPECT_EQ(summer.next_change, kAutumn2024);
  ZoneState winter = berlin->Lookup(kAutumn2024);  // 02:00 CET, again
  EXPECT_FALSE(winter.dst);
  EXPECT_EQ(winter.utc_offset, 3600);
  EXPECT_EQ(winter.next_change, 1'743'296'400);  // 2025-03-30 01:00 UTC
}

TEST(TimeZone, AZoneThatStoppedSwitchingHasNoNextChange) {
  // Tehran dropped summer time in 2022 (tzdata 2022b): +03:30 from then on.
  auto tehran = MustLoad("Asia/Tehran");
  ASSERT_TRUE(tehran);
  constexpr int64_t kJuly2024 = 1'719'792'000;  // 2024-07-01 00:00 UTC
  ZoneState s = tehran->Lookup(kJuly2024);
  EXPECT_EQ(s.utc_offset, 3 * 3600 + 1800);
  EXPECT_FALSE(s.dst);
  EXPECT_EQ(s.next_change, INT64_MAX);
}

}  // namespace
}  // namespace polar
