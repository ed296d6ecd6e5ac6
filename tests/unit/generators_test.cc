// Data generators: the power-law customer split (chi-square against the
// seed's tiers with a fixed seed), UUIDs, timestamps, e-mail addresses.
#include "scenarios/generators.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <set>

namespace polar {
namespace {

// Upper p = 0.001 critical values of the chi-square distribution.
double ChiSquareCritical(int df) {
  switch (df) {
    case 1:
      return 10.83;
    case 2:
      return 13.82;
    case 4:
      return 18.47;
    case 9:
      return 27.88;
    case 29:
      return 58.30;
  }
  return 0;
}

double ChiSquare(const std::vector<double>& observed,
                 const std::vector<double>& expected) {
  double chi2 = 0;
  for (std::size_t i = 0; i < observed.size(); ++i)
    chi2 += std::pow(observed[i] - expected[i], 2) / expected[i];
  return chi2;
}

TEST(PowerLaw, TiersMatchTheSeedsSharesForLongLists) {
  auto w = PowerLawPicker::Weights(30);
  auto top = [&](std::size_t n) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += w[i];
    return s;
  };
  EXPECT_NEAR(top(1), 0.35, 1e-12);
  EXPECT_NEAR(top(5), 0.78, 1e-12);
  EXPECT_NEAR(top(10), 0.90, 1e-12);
  EXPECT_NEAR(top(20), 0.96, 1e-12);
  EXPECT_NEAR(top(30), 1.0, 1e-12);
  EXPECT_NEAR(w[25], 0.004, 1e-12) << "the rest share 4%";
}

TEST(PowerLaw, ShortListsKeepPerItemWeightsAndNormalise) {
  auto w = PowerLawPicker::Weights(3);
  const double sum = 0.35 + 0.43 / 4 * 2;
  EXPECT_NEAR(w[0], 0.35 / sum, 1e-12);
  EXPECT_NEAR(w[1], 0.1075 / sum, 1e-12);
  EXPECT_NEAR(w[2], 0.1075 / sum, 1e-12);
  EXPECT_EQ(PowerLawPicker::Weights(1), std::vector<double>{1.0});
}

// 100,000 picks over 30 customers with a fixed seed: the counts must fit the
// weights (29 degrees of freedom).
TEST(PowerLaw, PicksFollowTheWeights) {
  for (std::size_t n : {30u, 7u}) {
    PowerLawPicker picker(n);
    Rng rng(12345);
    constexpr int kPicks = 100'000;
    std::vector<double> observed(n, 0);
    for (int i = 0; i < kPicks; ++i) ++observed[picker.Pick(rng)];
    std::vector<double> expected;
    for (double p : PowerLawPicker::Weights(n)) expected.push_back(p * kPicks);
    if (n == 30) {
      EXPECT_LT(ChiSquare(observed, expected), ChiSquareCritical(29));
    } else {
      // 7 customers: merge nothing, 6 degrees of freedom; p=0.001 -> 22.46.
      EXPECT_LT(ChiSquare(observed, expected), 22.46);
    }
  }
}

TEST(Generators, UuidsAreVersion4AndDistinct) {
  Rng rng(1);
  std::regex re(
      "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string u = RandomUuid(rng);
    EXPECT_TRUE(std::regex_match(u, re)) << u;
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Generators, TimestampsAreUtcIsoWithMilliseconds) {
  WallTime t{std::chrono::milliseconds(1'755'857'472'345)};
  EXPECT_EQ(FormatIsoUtc(t), "2025-08-22T10:11:12.345Z");
  EXPECT_EQ(FormatIsoUtc(WallTime{}), "1970-01-01T00:00:00.000Z");
}

TEST(Generators, CustomerEmailsNeedADeliverableDomain) {
  std::string why;
  EXPECT_TRUE(CheckCustomerEmail("loadtest@polar.sh", &why));
  EXPECT_TRUE(CheckCustomerEmail("petru+loadtest@polar.sh", &why));
  for (const char* bad :
       {"loadtest@example.com", "a@sub.example.org", "a@shop.test",
        "a@host.localhost", "a@x.invalid", "a@EXAMPLE.COM", "no-at",
        "@polar.sh", "a@b@polar.sh", "a@nodot", "a b@polar.sh"}) {
    EXPECT_FALSE(CheckCustomerEmail(bad, &why)) << bad;
    EXPECT_FALSE(why.empty());
  }
  EXPECT_FALSE(CheckCustomerEmail("x@example.com", &why));
  EXPECT_NE(why.find("special-use"), std::string::npos) << why;
}

TEST(Generators, TaggedEmailsKeepTheDomain) {
  EXPECT_EQ(TaggedEmail("loadtest@polar.sh", "ab-3"), "loadtest+ab-3@polar.sh");
  EXPECT_EQ(TaggedEmail("petru+loadtest@polar.sh", "ab-3"),
            "petru+loadtest-ab-3@polar.sh");
}

TEST(Generators, RunIdsDifferAcrossRunsWithTheSameSeed) {
  Rng a(1), b(1);
  WallTime t{std::chrono::seconds(1'700'000'000)};
  EXPECT_NE(MakeRunId(t, a), MakeRunId(t + std::chrono::microseconds(1), b));
}

}  // namespace
}  // namespace polar
