// SseParser: Polar's checkout stream as sse_starlette writes it, split at
// every possible byte, plus the event-stream rules and the memory bound.
#include "scenarios/sse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace polar {
namespace {

std::vector<SseEvent> ParseAll(SseParser& p,
                               const std::vector<std::string>& chunks) {
  std::vector<SseEvent> out;
  for (const auto& c : chunks)
    p.Feed(c, [&](const SseEvent& e) { out.push_back(e); });
  return out;
}

const std::string kPolarStream =
    "data: "
    "{\"id\":\"1\",\"key\":\"checkout.updated\",\"payload\":{\"status\":"
    "\"confirmed\"}}\r\n\r\n"
    ": ping - 2026-08-22 10:00:00.000000+00:00\r\n\r\n"
    "data: "
    "{\"id\":\"2\",\"key\":\"checkout.updated\",\"payload\":{\"status\":"
    "\"succeeded\"}}\r\n\r\n";

TEST(SseParser, ReadsPolarsFramesAndSkipsPings) {
  SseParser p;
  auto events = ParseAll(p, {kPolarStream});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(
      events[1].data,
      "{\"id\":\"2\",\"key\":\"checkout.updated\",\"payload\":{\"status\":"
      "\"succeeded\"}}");
  EXPECT_EQ(events[0].event, "");
}

TEST(SseParser, AnySplitOfTheBytesGivesTheSameEvents) {
  for (std::size_t cut = 0; cut <= kPolarStream.size(); ++cut) {
    SseParser p;
    auto events =
        ParseAll(p, {kPolarStream.substr(0, cut), kPolarStream.substr(cut)});
    ASSERT_EQ(events.size(), 2u) << "cut at " << cut;
    EXPECT_NE(events[1].data.find("succeeded"), std::string::npos);
  }
  SseParser bytewise;
  std::vector<std::string> bytes;
  for (char c : kPolarStream) bytes.emplace_back(1, c);
  EXPECT_EQ(ParseAll(bytewise, bytes).size(), 2u);
}

TEST(SseParser, FollowsTheEventStreamRules) {
  SseParser p;
  auto events = ParseAll(
      p, {"event: update\nid: 7\ndata: one\ndata:two\n\n"  // LF, no space
          "retry: 10\nunknown: x\n\n"                      // no data: none
          "data: cr\r\rdata: last\r\n\r\n"});              // CR only
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].event, "update");
  EXPECT_EQ(events[0].id, "7");
  EXPECT_EQ(events[0].data, "one\ntwo");
  EXPECT_EQ(events[1].data, "cr");
  EXPECT_EQ(events[2].data, "last");
}

TEST(SseParser, AnEventOverTheBoundFailsForGood) {
  SseParser p(1024);
  std::string big = "data: " + std::string(2000, 'x');
  EXPECT_FALSE(p.Feed(big, [](const SseEvent&) {}));
  EXPECT_TRUE(p.failed());
  int seen = 0;
  EXPECT_FALSE(p.Feed("\n\ndata: ok\n\n", [&](const SseEvent&) { ++seen; }));
  EXPECT_EQ(seen, 0);

  // Many lines that together exceed the bound fail too.
  SseParser q(1024);
  bool ok = true;
  for (int i = 0; i < 100 && ok; ++i)
    ok = q.Feed("data: 0123456789012345678901234567890123456789\n",
                [](const SseEvent&) {});
  EXPECT_FALSE(ok);
}

}  // namespace
}  // namespace polar
