// RecentErrors: the bounded ring of distinct failures shown on the status page.
#include "exporters/recent_errors.h"

#include <gtest/gtest.h>

#include "exporters/log.h"
#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using testing::MonoAt;

using namespace std::chrono_literals;

class RecentErrorsTest : public ::testing::Test {
 protected:
  void TearDown() override { ClearSecretsForTesting(); }
};

TEST_F(RecentErrorsTest, RepeatedFailuresOfOneKindAreOneEntryWithACount) {
  RecentErrors ring;
  for (int i = 0; i < 5; ++i) {
    ring.Record("ingest", "ingest", Outcome::kHttp5xx, 503,
                MonoAt(std::chrono::seconds(i)), "", R"({"error":"busy"})");
  }
  ring.Record("ingest", "ingest", Outcome::kTimeout, 0, MonoAt(10s),
              "Operation timed out", "");
  auto all = ring.Snapshot();
  ASSERT_EQ(all.size(), 2u);
  // Most recently seen first.
  EXPECT_EQ(all[0].outcome, Outcome::kTimeout);
  EXPECT_EQ(all[0].count, 1u);
  EXPECT_EQ(all[0].snippet, "Operation timed out");
  EXPECT_EQ(all[1].outcome, Outcome::kHttp5xx);
  EXPECT_EQ(all[1].count, 5u);
  EXPECT_EQ(all[1].first_seen, MonoAt(0s));
  EXPECT_EQ(all[1].last_seen, MonoAt(4s));
  EXPECT_EQ(all[1].snippet, R"(HTTP 503 body: {"error":"busy"})");
}

TEST_F(RecentErrorsTest, ADifferentStatusIsADifferentEntry) {
  RecentErrors ring;
  ring.Record("s", "create", Outcome::kHttp4xx, 422, MonoAt(1s), "", "a");
  ring.Record("s", "create", Outcome::kHttp4xx, 404, MonoAt(2s), "", "b");
  ring.Record("s", "confirm", Outcome::kHttp4xx, 404, MonoAt(3s), "", "c");
  EXPECT_EQ(ring.Snapshot().size(), 3u);
}

TEST_F(RecentErrorsTest, WhenFullTheEntrySeenLongestAgoMakesRoom) {
  RecentErrors ring(3);
  ring.Record("s", "a", Outcome::kHttp5xx, 500, MonoAt(1s), "", "");
  ring.Record("s", "b", Outcome::kHttp5xx, 500, MonoAt(2s), "", "");
  ring.Record("s", "c", Outcome::kHttp5xx, 500, MonoAt(3s), "", "");
  ring.Record("s", "a", Outcome::kHttp5xx, 500, MonoAt(4s), "",
              "");  // a is fresh
  ring.Record("s", "d", Outcome::kHttp5xx, 500, MonoAt(5s), "", "");  // b goes
  auto all = ring.Snapshot();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].step, "d");
  EXPECT_EQ(all[1].step, "a");
  EXPECT_EQ(all[2].step, "c");
}

TEST_F(RecentErrorsTest, SnippetsAreRedactedShortAndFreeOfControlCharacters) {
  const std::string token = "polar_oat_SECRETSECRETSECRET";
  RegisterSecret(token);
  RecentErrors ring;
  std::string body = "{\"detail\":\"bad token " + token + "\"}\n\t" +
                     std::string(1000, 'x') + token;
  ring.Record("s", "a", Outcome::kHttp4xx, 401, MonoAt(1s), "", body);
  const std::string snippet = ring.Snapshot()[0].snippet;
  EXPECT_EQ(snippet.find(token), std::string::npos);
  EXPECT_EQ(snippet.find("polar_oat_SECRET"), std::string::npos);
  EXPECT_NE(snippet.find(kRedacted), std::string::npos);
  EXPECT_EQ(snippet.find('\n'), std::string::npos);
  EXPECT_LE(snippet.size(), RecentErrors::kSnippetBytes + 3);
  EXPECT_TRUE(snippet.ends_with("..."));
}

TEST_F(RecentErrorsTest, ASecretCutByTheSnippetEdgeLeavesNoPrefix) {
  const std::string token = "polar_oat_ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  RegisterSecret(token);
  // The token starts a few bytes before the cut.
  std::string body = std::string(RecentErrors::kSnippetBytes - 20, 'x') + token;
  std::string snippet = RecentErrors::MakeSnippet(0, "", body);
  EXPECT_EQ(snippet.find("polar_oat_"), std::string::npos) << snippet;
}

TEST_F(RecentErrorsTest, TheSnippetFollowsTheLatestFailureAtMostOnceASecond) {
  RecentErrors ring;
  ring.Record("s", "a", Outcome::kHttp5xx, 500, MonoAt(1000ms), "", "first");
  ring.Record("s", "a", Outcome::kHttp5xx, 500, MonoAt(1500ms), "", "second");
  EXPECT_NE(ring.Snapshot()[0].snippet.find("first"), std::string::npos);
  ring.Record("s", "a", Outcome::kHttp5xx, 500, MonoAt(2100ms), "", "third");
  EXPECT_NE(ring.Snapshot()[0].snippet.find("third"), std::string::npos);
  EXPECT_EQ(ring.Snapshot()[0].count, 3u);
}

}  // namespace
}  // namespace polar
