#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sim/api/events.h"
#include "sim/base/ids.h"
#include "sim/simulator.h"

namespace polar::sim {
namespace {

using nlohmann::json;

class SimIngestTest : public ::testing::Test {
 protected:
  SimIngestTest() : sim_(SimOptions{}) {}

  SimRequest Ingest(json body, bool auth = true) {
    SimRequest r;
    r.method = "POST";
    r.path = "/v1/events/ingest";
    r.body = body.dump();
    r.has_content_length = true;
    if (auth) r.headers["authorization"] = "Bearer " + sim_.seeded().token;
    return r;
  }
  static json Event(const std::string& external_id) {
    return {{"name", "generate.text"},
            {"external_customer_id", "loadtest-customer-0"},
            {"external_id", external_id}};
  }

  Simulator sim_;
};

TEST_F(SimIngestTest, TheSeededTokenHasPolarsFormatAndChecksum) {
  const std::string& token = sim_.seeded().token;
  EXPECT_EQ(token.rfind("polar_oat_", 0), 0u);
  EXPECT_EQ(token.size(), 10u + 37u + 6u);
  EXPECT_TRUE(TokenChecksumValid(token, "polar_oat_"));
  std::string tampered = token;
  tampered[12] = tampered[12] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(TokenChecksumValid(tampered, "polar_oat_"));
  // kit/crypto.py checksums the 37 random characters only, not the prefix
  // (computed with Python: zlib.crc32 in base62, zero-filled to 6).
  const std::string random = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJK";
  EXPECT_TRUE(
      TokenChecksumValid("polar_oat_" + random + "4WQsSZ", "polar_oat_"));
  EXPECT_FALSE(
      TokenChecksumValid("polar_oat_" + random + "2GSskl", "polar_oat_"));
}

TEST_F(SimIngestTest, LengthLimitsCountCharactersNotBytes) {
  // 128 characters of two bytes each: within Polar's 128-character name.
  std::string name;
  for (int i = 0; i < 128; ++i) name += "\xc3\xa9";  // é
  json ok = {{"events",
              {{{"name", name},
                {"external_customer_id", "c"},
                {"metadata", {{"k", std::string(500, 'x')}}}}}}};
  EXPECT_EQ(sim_.Handle(Ingest(ok)).status, 200);
  json long_name = ok;
  long_name["events"][0]["name"] = name + "e";
  SimResponse r = sim_.Handle(Ingest(long_name));
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(json::parse(r.body)["detail"][0]["msg"],
            "String should have at most 128 characters");
  // A 500-character metadata value of two-byte characters passes too.
  std::string value;
  for (int i = 0; i < 500; ++i) value += "\xc3\xa9";
  json meta = ok;
  meta["events"][0]["metadata"]["k"] = value;
  EXPECT_EQ(sim_.Handle(Ingest(meta)).status, 200);
}

TEST(SimDedup, ForgettingIdsToMakeRoomIsCountedNotSilent) {
  SimOptions o;
  o.events.max_remembered_ids = 3;
  Simulator sim(o);
  auto ingest = [&](const std::string& id) {
    SimRequest r;
    r.method = "POST";
    r.path = "/v1/events/ingest";
    r.has_content_length = true;
    r.headers["authorization"] = "Bearer " + sim.seeded().token;
    r.body = json{{"events",
                   {{{"name", "n"},
                     {"external_customer_id", "c"},
                     {"external_id", id}}}}}
                 .dump();
    return json::parse(sim.Handle(r).body);
  };
  for (const char* id : {"a", "b", "c", "d"}) ingest(id);
  // "a" was forgotten to make room for "d": sent again it is inserted (Polar
  // would answer a duplicate), and the metric says so.
  EXPECT_EQ(ingest("a"), (json{{"inserted", 1}, {"duplicates", 0}}));
  EXPECT_EQ(ingest("d"), (json{{"inserted", 0}, {"duplicates", 1}}));
  EXPECT_NE(sim.Metrics().find("polar_sim_event_ids_forgotten_total 2\n"),
            std::string::npos);
}

TEST_F(SimIngestTest, ABatchIsInsertedOnceThenCountedAsDuplicates) {
  json body = {{"events", {Event("e1"), Event("e2"), Event("e3")}}};
  SimResponse first = sim_.Handle(Ingest(body));
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(json::parse(first.body),
            (json{{"inserted", 3}, {"duplicates", 0}}));
  json again = {{"events", {Event("e1"), Event("e4")}}};
  EXPECT_EQ(json::parse(sim_.Handle(Ingest(again)).body),
            (json{{"inserted", 1}, {"duplicates", 1}}));
  // The totals on /metrics: what several load generators sharing one target
  // are checked against (no external_id collisions across shards).
  const std::string metrics = sim_.Metrics();
  EXPECT_NE(
      metrics.find("polar_sim_events_ingested_total{result=\"inserted\"} 4\n"),
      std::string::npos)
      << metrics;
  EXPECT_NE(
      metrics.find("polar_sim_events_ingested_total{result=\"duplicate\"} 1\n"),
      std::string::npos)
      << metrics;
}

TEST_F(SimIngestTest, NoTokenIs401WithPolarsBody) {
  SimResponse r =
      sim_.Handle(Ingest({{"events", json::array()}}, /*auth=*/false));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json::parse(r.body),
            (json{{"error", "Unauthorized"}, {"detail", "Unauthorized"}}));
}

TEST_F(SimIngestTest, AnUnknownTokenIs401InvalidToken) {
  SimRequest r = Ingest({{"events", json::array()}});
  r.headers["authorization"] = "Bearer polar_oat_nope";
  SimResponse out = sim_.Handle(r);
  EXPECT_EQ(out.status, 401);
  EXPECT_EQ(json::parse(out.body)["error"], "invalid_token");
}

TEST_F(SimIngestTest, APostWithoutContentLengthIs411) {
  SimRequest r = Ingest({{"events", json::array()}});
  r.has_content_length = false;
  SimResponse out = sim_.Handle(r);
  EXPECT_EQ(out.status, 411);
  EXPECT_EQ(json::parse(out.body)["error"], "LengthRequired");
}

TEST_F(SimIngestTest, AFutureTimestampRejectsTheWholeBatch) {
  json future = Event("f1");
  future["timestamp"] = "2999-01-01T00:00:00Z";
  json body = {{"events", {Event("ok1"), future}}};
  SimResponse r = sim_.Handle(Ingest(body));
  EXPECT_EQ(r.status, 422);
  json detail = json::parse(r.body)["detail"];
  EXPECT_EQ(detail[0]["loc"], (json{"body", "events", 1, "timestamp"}));
  // Nothing of the rejected batch was stored: ok1 is still new.
  EXPECT_EQ(
      json::parse(
          sim_.Handle(Ingest({{"events", {Event("ok1")}}})).body)["inserted"],
      1);
}

TEST_F(SimIngestTest, OrganizationIdWithAnOrganizationTokenIs422) {
  json e = Event("o1");
  e["organization_id"] = sim_.seeded().organization_id;
  EXPECT_EQ(sim_.Handle(Ingest({{"events", {e}}})).status, 422);
}

TEST_F(SimIngestTest, UnknownRoutesAnswerFastApisNotFound) {
  SimRequest r;
  r.method = "GET";
  r.path = "/v1/nothing-here";
  SimResponse out = sim_.Handle(r);
  EXPECT_EQ(out.status, 404);
  EXPECT_EQ(out.body, R"({"detail":"Not Found"})");
}

TEST_F(SimIngestTest, AnUnknownPolarVersionIs404BeforeAnythingElse) {
  SimRequest r = Ingest({{"events", {Event("v1")}}});
  r.headers["polar-version"] = "2020-01";
  EXPECT_EQ(sim_.Handle(r).status, 404);
}

TEST(DedupIndex, ForgetsTheOldestIdsBeyondItsCapacity) {
  DedupIndex store(2);
  EXPECT_EQ(store.InsertBatch({"a", "b", "c"}), 3);
  EXPECT_EQ(store.InsertBatch({"c"}), 0);  // still remembered
  EXPECT_EQ(store.InsertBatch({"a"}), 1);  // evicted, so new again
}

TEST(DedupIndex, ChurnBeyondCapacityKeepsExactlyTheNewestIds) {
  DedupIndex index(1000);
  std::vector<std::string> ids;
  for (int i = 0; i < 10000; ++i) ids.push_back("id-" + std::to_string(i));
  EXPECT_EQ(index.InsertBatch(ids), 10000);
  std::vector<std::string> newest(ids.end() - 1000, ids.end());
  EXPECT_EQ(index.InsertBatch(newest), 0);       // all still remembered
  EXPECT_EQ(index.InsertBatch({"id-8999"}), 1);  // the 1001st newest is gone
}

TEST(DedupIndex, AMillionDistinctIdsAreAllNewThenAllDuplicates) {
  DedupIndex index(1'000'000);
  std::vector<std::string> ids;
  for (int i = 0; i < 1'000'000; ++i)
    ids.push_back("loadtest-" + std::to_string(i));
  EXPECT_EQ(index.InsertBatch(ids), 1'000'000);
  EXPECT_EQ(index.InsertBatch(ids), 0);
}

}  // namespace
}  // namespace polar::sim
