#include "exporters/outcome.h"

#include <gtest/gtest.h>

#include <set>

namespace polar {
namespace {

TEST(Outcome, StatusClassesMapToTheirLabels) {
  EXPECT_EQ(OutcomeFromStatus(200), Outcome::kOk);
  EXPECT_EQ(OutcomeFromStatus(201), Outcome::kOk);
  EXPECT_EQ(OutcomeFromStatus(429), Outcome::kRateLimited);
  EXPECT_EQ(OutcomeFromStatus(401), Outcome::kHttp4xx);
  EXPECT_EQ(OutcomeFromStatus(503), Outcome::kHttp5xx);
  EXPECT_EQ(OutcomeFromStatus(302), Outcome::kInvalidResponse);
  EXPECT_EQ(OutcomeFromStatus(0), Outcome::kInvalidResponse);
}

TEST(Outcome, LabelValuesAreTheDocumentedFixedSet) {
  std::set<std::string_view> names;
  for (Outcome o : AllOutcomes()) names.insert(OutcomeName(o));
  std::set<std::string_view> expected = {
      "ok",           "http_4xx",         "http_5xx",
      "rate_limited", "timeout",          "connect_error",
      "tls_error",    "invalid_response", "check_failed"};
  EXPECT_EQ(names, expected);
}

}  // namespace
}  // namespace polar
