// polar-sim's routes as Polar answers them, driven through Simulator::Handle
// without HTTP: checkouts (both create forms, client routes, confirm, the
// success job, expiry, locks), events (listing, filters, lag), webhook
// endpoints, authentication and scopes, cross-cutting errors, rate limits and
// faults.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "sim/api/validation.h"
#include "tests/unit/sim_harness.h"

namespace polar::sim {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::SimHarness;

std::string Header(const SimResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  return "";
}

// ---- checkouts ----

TEST(SimCheckouts, CreateAcceptsTheProductsAndTheDeprecatedProductIdForms) {
  SimHarness h;
  const Seeded& s = h.sim->seeded();
  SimResponse a = h.Call("POST", "/v1/checkouts/",
                         {{"products", {s.free_product_id}},
                          {"customer_email", "buyer@polar.sh"}});
  ASSERT_EQ(a.status, 201) << a.body;
  json ja = SimHarness::Body(a);
  EXPECT_EQ(ja["status"], "open");
  EXPECT_EQ(ja["product_id"], s.free_product_id);
  EXPECT_EQ(ja["customer_email"], "buyer@polar.sh");
  EXPECT_EQ(ja["client_secret"].get<std::string>().rfind("polar_c_", 0), 0u);
  EXPECT_EQ(ja["client_secret"].get<std::string>().size(), 8u + 43u);
  EXPECT_EQ(ja["is_free_product_price"], true);
  SimResponse b =
      h.Call("POST", "/v1/checkouts/", {{"product_id", s.paid_product_id}});
  ASSERT_EQ(b.status, 201) << b.body;
  json jb = SimHarness::Body(b);
  EXPECT_EQ(jb["amount"], 1000);
  EXPECT_EQ(jb["is_payment_form_required"], true);
  SimResponse c =
      h.Call("POST", "/v1/checkouts/", {{"product_price_id", s.paid_price_id}});
  EXPECT_EQ(c.status, 201);
}

TEST(SimCheckouts, ABodyWithNoProductFormIs422ForEachUnionMember) {
  SimHarness h;
  SimResponse r =
      h.Call("POST", "/v1/checkouts/", {{"customer_email", "a@polar.sh"}});
  ASSERT_EQ(r.status, 422);
  json detail = SimHarness::Body(r)["detail"];
  ASSERT_EQ(detail.size(), 3u);
  EXPECT_EQ(detail[0]["loc"],
            (json{"body", "CheckoutProductsCreate", "products"}));
  EXPECT_EQ(detail[1]["loc"],
            (json{"body", "CheckoutProductCreate", "product_id"}));
  EXPECT_EQ(detail[0]["type"], "missing");
}

TEST(SimCheckouts, UnknownProductsReservedEmailDomainsAndSeatsAre422) {
  SimHarness h;
  const Seeded& s = h.sim->seeded();
  SimResponse unknown =
      h.Call("POST", "/v1/checkouts/",
             {{"product_id", "00000000-0000-4000-8000-000000000000"}});
  ASSERT_EQ(unknown.status, 422);
  json u = SimHarness::Body(unknown);
  EXPECT_EQ(u["error"], "PolarRequestValidationError");
  EXPECT_EQ(u["detail"][0]["msg"], "Product does not exist.");
  SimResponse email = h.Call("POST", "/v1/checkouts/",
                             {{"product_id", s.free_product_id},
                              {"customer_email", "someone@example.com"}});
  ASSERT_EQ(email.status, 422);
  EXPECT_EQ(SimHarness::Body(email)["detail"][0]["loc"],
            (json{"body", "customer_email"}));
  SimResponse bad_uuid =
      h.Call("POST", "/v1/checkouts/", {{"product_id", "nope"}});
  ASSERT_EQ(bad_uuid.status, 422);
  EXPECT_EQ(SimHarness::Body(bad_uuid)["detail"][0]["type"], "uuid_parsing");
  SimResponse seats = h.Call("POST", "/v1/checkouts/",
                             {{"product_id", s.free_product_id}, {"seats", 3}});
  EXPECT_EQ(seats.status, 422);
  SimResponse not_json = h.Send(h.Request("POST", "/v1/checkouts/", "{oops"));
  ASSERT_EQ(not_json.status, 422);
  EXPECT_EQ(SimHarness::Body(not_json)["detail"][0]["type"], "json_invalid");
}

TEST(SimCheckouts, GetByIdAndByClientSecretShowTheFullAndPublicViews) {
  SimHarness h;
  json c = h.CreateCheckout();
  SimResponse full =
      h.Call("GET", "/v1/checkouts/" + c["id"].get<std::string>());
  ASSERT_EQ(full.status, 200);
  EXPECT_TRUE(SimHarness::Body(full).contains("metadata"));
  EXPECT_FALSE(SimHarness::Body(full).contains("organization"));
  SimResponse pub = h.Call(
      "GET", "/v1/checkouts/client/" + c["client_secret"].get<std::string>(),
      nullptr, /*auth=*/false);
  ASSERT_EQ(pub.status, 200);
  json p = SimHarness::Body(pub);
  EXPECT_TRUE(p.contains("organization"));
  EXPECT_FALSE(p.contains("metadata"));
  EXPECT_FALSE(p.contains("external_customer_id"));
  SimResponse missing =
      h.Call("GET", "/v1/checkouts/00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(SimHarness::Body(missing),
            (json{{"error", "ResourceNotFound"}, {"detail", "Not found"}}));
  EXPECT_EQ(
      h.Call("GET", "/v1/checkouts/client/polar_c_nope", nullptr, false).status,
      404);
}

TEST(SimCheckouts, APatchWithUnknownKeysIsANoOpThatStillUpdates) {
  SimHarness h;
  json c = h.CreateCheckout();
  std::string path =
      "/v1/checkouts/client/" + c["client_secret"].get<std::string>();
  SimResponse r =
      h.Call("PATCH", path, {{"customer", {{"email", "x@polar.sh"}}}}, false);
  ASSERT_EQ(r.status, 200) << r.body;
  json body = SimHarness::Body(r);
  EXPECT_EQ(body["customer_email"], nullptr);
  EXPECT_FALSE(body["modified_at"].is_null());
  SimResponse named = h.Call("PATCH", path, {{"customer_name", "Ada"}}, false);
  EXPECT_EQ(SimHarness::Body(named)["customer_name"], "Ada");
  SimResponse bad =
      h.Call("PATCH", path, {{"customer_email", "no-at-sign"}}, false);
  EXPECT_EQ(bad.status, 422);
}

TEST(SimCheckouts, ConfirmIs200ConfirmedThenTheFreeJobMakesItSucceeded) {
  SimHarness h;
  json c = h.CreateCheckout();
  std::string secret = c["client_secret"];
  SimResponse r = h.Call("POST", "/v1/checkouts/client/" + secret + "/confirm",
                         {{"customer_email", "new-buyer@polar.sh"},
                          {"customer_name", "New Buyer"}},
                         false);
  ASSERT_EQ(r.status, 200) << r.body;
  json body = SimHarness::Body(r);
  EXPECT_EQ(body["status"], "confirmed");
  EXPECT_EQ(
      body["customer_session_token"].get<std::string>().rfind("polar_cst_", 0),
      0u);
  h.Settle();  // checkout.handle_free_success
  EXPECT_EQ(SimHarness::Body(h.Call("GET", "/v1/checkouts/client/" + secret,
                                    nullptr, false))["status"],
            "succeeded");
  // A second customer with the same email is matched, not created: no token.
  json c2 = h.CreateCheckout();
  SimResponse again =
      h.Call("POST",
             "/v1/checkouts/client/" + c2["client_secret"].get<std::string>() +
                 "/confirm",
             {{"customer_email", "new-buyer@polar.sh"}}, false);
  EXPECT_EQ(SimHarness::Body(again)["customer_session_token"], nullptr);
  // Anything but open is refused.
  SimResponse twice =
      h.Call("POST", "/v1/checkouts/client/" + secret + "/confirm",
             {{"customer_email", "x@polar.sh"}}, false);
  EXPECT_EQ(twice.status, 403);
  EXPECT_EQ(SimHarness::Body(twice)["error"], "NotOpenCheckout");
}

TEST(SimCheckouts, PaidConfirmNeedsEveryMissingFieldReportedTogether) {
  SimHarness h;
  json c = h.CreateCheckout(/*paid=*/true);
  std::string path = "/v1/checkouts/client/" +
                     c["client_secret"].get<std::string>() + "/confirm";
  SimResponse r = h.Call("POST", path, json::object(), false);
  ASSERT_EQ(r.status, 422);
  json detail = SimHarness::Body(r)["detail"];
  std::vector<json> locs;
  for (const auto& d : detail) locs.push_back(d["loc"]);
  // _get_required_confirm_fields: with no address its country is missing too.
  EXPECT_EQ(locs, (std::vector<json>{
                      json{"body", "customer_email"},
                      json{"body", "customer_billing_address"},
                      json{"body", "customer_billing_address", "country"},
                      json{"body", "confirmation_token_id"}}));
  EXPECT_EQ(detail[0]["msg"], "Field is required.");
  EXPECT_EQ(detail[3]["msg"], "Confirmation token is required.");
  SimResponse us = h.Call("POST", path,
                          {{"customer_email", "a@polar.sh"},
                           {"customer_billing_address", {{"country", "US"}}},
                           {"confirmation_token_id", "ctoken_1"}},
                          false);
  ASSERT_EQ(us.status, 422);
  EXPECT_EQ(SimHarness::Body(us)["detail"].size(),
            4u);  // state, line1, city, postal_code
}

TEST(SimCheckouts, APaidConfirmNeedsATokenStripeMadeAndAFakeOneIs400) {
  SimHarness h([](SimOptions& o) {
    o.checkouts.confirm_time = Distribution::Fixed(300ms);
  });
  json c = h.CreateCheckout(/*paid=*/true);
  const std::string secret = c["client_secret"];
  const std::string path = "/v1/checkouts/client/" + secret + "/confirm";
  const json body = {{"customer_email", "paid@polar.sh"},
                     {"customer_billing_address", {{"country", "FR"}}}};
  json fake = body;
  fake["confirmation_token_id"] = "ctoken_made_up";
  // Stripe's round trips first, then its refusal; nothing changed.
  SimResponse held = h.sim->Handle(h.Request("POST", path, fake.dump(), false));
  EXPECT_EQ(held.hold_until, h.clock.Now() + 300ms);
  ASSERT_TRUE(held.finish);
  SimResponse refused = held.finish();
  ASSERT_EQ(refused.status, 400);
  EXPECT_EQ(SimHarness::Body(refused),
            (json{{"error", "PaymentError"},
                  {"detail",
                   "The payment failed: No such confirmationtoken: "
                   "'ctoken_made_up' Please try again with a different payment "
                   "method."}}));
  json now = SimHarness::Body(
      h.Call("GET", "/v1/checkouts/client/" + secret, nullptr, false));
  EXPECT_EQ(now["status"], "open");
  EXPECT_EQ(now["customer_email"], nullptr);

  json made = SimHarness::Body(
      h.Call("POST", "/_sim/stripe/confirmation_tokens", json::object()));
  ASSERT_EQ(made["id"].get<std::string>().rfind("ctoken_", 0), 0u);
  json real = body;
  real["confirmation_token_id"] = made["id"];
  SimResponse ok = h.Call("POST", path, real, false);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(SimHarness::Body(ok)["payment_processor_metadata"]["intent_status"],
            "succeeded");
  // A token works once.
  json again = h.CreateCheckout(/*paid=*/true);
  EXPECT_EQ(h.Call("POST",
                   "/v1/checkouts/client/" +
                       again["client_secret"].get<std::string>() + "/confirm",
                   real, false)
                .status,
            400);
}

TEST(SimCheckouts, BillingAddressesAreCheckedAndStoredAsPolarDoes) {
  SimHarness h;
  json c = h.CreateCheckout();
  const std::string path =
      "/v1/checkouts/client/" + c["client_secret"].get<std::string>();
  auto patch = [&](json address) {
    return h.Call("PATCH", path, {{"customer_billing_address", address}},
                  false);
  };
  // Upper-cased, the state prefixed, empty strings null.
  SimResponse ok = patch({{"country", "us"},
                          {"state", "CA"},
                          {"line1", "1 Main St"},
                          {"line2", ""}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(SimHarness::Body(ok)["customer_billing_address"],
            (json{{"line1", "1 Main St"},
                  {"line2", nullptr},
                  {"postal_code", nullptr},
                  {"city", nullptr},
                  {"state", "US-CA"},
                  {"country", "US"}}));
  EXPECT_EQ(patch({{"country", "CA"}, {"state", "CA-QC"}}).status, 200);
  SimResponse bad_state = patch({{"country", "US"}, {"state", "XX"}});
  ASSERT_EQ(bad_state.status, 422);
  json d = SimHarness::Body(bad_state)["detail"][0];
  EXPECT_EQ(d["msg"], "Value error, Invalid US state");
  EXPECT_EQ(d["loc"], (json{"body", "customer_billing_address"}));
  EXPECT_EQ(SimHarness::Body(patch(
                {{"country", "CA"}, {"state", "ZZ"}}))["detail"][0]["msg"],
            "Value error, Invalid CA subdivision");
  // The US trade embargoes are refused; so are codes that do not exist.
  for (const char* country : {"RU", "ir", "CU", "KP", "SY", "XX"}) {
    SimResponse r = patch({{"country", country}});
    ASSERT_EQ(r.status, 422) << country;
    json e = SimHarness::Body(r)["detail"][0];
    EXPECT_EQ(e["type"], "enum") << country;
    EXPECT_EQ(
        e["msg"].get<std::string>().rfind("Input should be 'AD', 'AE'", 0), 0u);
    EXPECT_EQ(e["msg"].get<std::string>().find("'RU'"), std::string::npos);
  }
}

TEST(SimCheckouts, ConfirmingForAnExistingCustomerSendsCustomerUpdated) {
  SimHarness h([](SimOptions& o) { o.webhooks.allow_loopback = true; });
  // An endpoint that is never called (delivery is recorded as simulated for
  // non-loopback URLs): the delivery log shows what was sent.
  ASSERT_EQ(h.Call("POST", "/v1/webhooks/endpoints",
                   {{"url", "https://hooks.polar.sh/x"},
                    {"format", "raw"},
                    {"events", {"customer.created", "customer.updated"}}})
                .status,
            201);
  auto confirm = [&](const std::string& email) {
    json c = h.CreateCheckout();
    return h.Call("POST",
                  "/v1/checkouts/client/" +
                      c["client_secret"].get<std::string>() + "/confirm",
                  {{"customer_email", email},
                   {"customer_billing_address", {{"country", "SE"}}}},
                  false);
  };
  ASSERT_EQ(confirm("repeat@polar.sh").status, 200);
  ASSERT_EQ(confirm("repeat@polar.sh").status, 200);
  ASSERT_EQ(confirm("loadtest-customer-2@polar.sh").status, 200);
  h.Advance(5s);  // the customer.webhook jobs, deliveries and FIFO waits
  json log =
      SimHarness::Body(h.Call("GET", "/v1/webhooks/deliveries?limit=10"));
  std::vector<std::string> types;
  for (const json& d : log["items"])
    types.push_back(d["webhook_event"]["type"]);
  std::sort(types.begin(), types.end());
  EXPECT_EQ(types,
            (std::vector<std::string>{"customer.created", "customer.updated",
                                      "customer.updated"}));
}

TEST(SimCheckouts, ANewEmailWithATakenExternalIdIs422AsPolarAnswers) {
  SimHarness h;
  json c =
      SimHarness::Body(h.Call("POST", "/v1/checkouts/",
                              {{"product_id", h.sim->seeded().free_product_id},
                               {"external_customer_id", "someone-else"}}));
  // No customer has it yet: a new one is created with it.
  ASSERT_EQ(h.Call("POST",
                   "/v1/checkouts/client/" +
                       c["client_secret"].get<std::string>() + "/confirm",
                   {{"customer_email", "first@polar.sh"}}, false)
                .status,
            200);
  json d =
      SimHarness::Body(h.Call("POST", "/v1/checkouts/",
                              {{"product_id", h.sim->seeded().free_product_id},
                               {"customer_external_id", "someone-else"},
                               {"customer_email", "second@polar.sh"}}));
  // Create links the existing customer by its external id: it confirms.
  EXPECT_EQ(h.Call("POST",
                   "/v1/checkouts/client/" +
                       d["client_secret"].get<std::string>() + "/confirm",
                   json::object(), false)
                .status,
            200);
  // A confirm of a checkout whose external id was taken after create.
  json e =
      SimHarness::Body(h.Call("POST", "/v1/checkouts/",
                              {{"product_id", h.sim->seeded().free_product_id},
                               {"external_customer_id", "late"}}));
  json f =
      SimHarness::Body(h.Call("POST", "/v1/checkouts/",
                              {{"product_id", h.sim->seeded().free_product_id},
                               {"external_customer_id", "late"}}));
  ASSERT_EQ(h.Call("POST",
                   "/v1/checkouts/client/" +
                       e["client_secret"].get<std::string>() + "/confirm",
                   {{"customer_email", "late-1@polar.sh"}}, false)
                .status,
            200);
  SimResponse mismatch =
      h.Call("POST",
             "/v1/checkouts/client/" + f["client_secret"].get<std::string>() +
                 "/confirm",
             {{"customer_email", "late-2@polar.sh"}}, false);
  ASSERT_EQ(mismatch.status, 422);
  EXPECT_EQ(SimHarness::Body(mismatch)["error"],
            "CheckoutCustomerExternalIdMismatch");
}

TEST(SimCheckouts, TheReplicaTrailsTheClientRoutesByItsLag) {
  SimHarness h([](SimOptions& o) {
    o.checkouts.replica_lag = Distribution::Fixed(500ms);
  });
  json c = h.CreateCheckout();
  const std::string id = c["id"], secret = c["client_secret"];
  // The primary has it, the replica not yet.
  EXPECT_EQ(
      h.Call("GET", "/v1/checkouts/client/" + secret, nullptr, false).status,
      200);
  EXPECT_EQ(h.Call("GET", "/v1/checkouts/" + id).status, 404);
  EXPECT_EQ(SimHarness::Body(
                h.Call("GET", "/v1/checkouts/"))["pagination"]["total_count"],
            0);
  h.Advance(500ms);
  EXPECT_EQ(SimHarness::Body(h.Call("GET", "/v1/checkouts/" + id))["status"],
            "open");
  ASSERT_EQ(h.Call("POST", "/v1/checkouts/client/" + secret + "/confirm",
                   {{"customer_email", "lag@polar.sh"}}, false)
                .status,
            200);
  h.Settle();  // the success job ran: succeeded on the primary
  EXPECT_EQ(SimHarness::Body(h.Call("GET", "/v1/checkouts/client/" + secret,
                                    nullptr, false))["status"],
            "succeeded");
  // Just after confirm a poll of GET /v1/checkouts/{id} still sees open.
  EXPECT_EQ(SimHarness::Body(h.Call("GET", "/v1/checkouts/" + id))["status"],
            "open");
  h.Advance(499ms);
  EXPECT_EQ(SimHarness::Body(h.Call("GET", "/v1/checkouts/" + id))["status"],
            "open");
  h.Advance(1ms);
  EXPECT_EQ(SimHarness::Body(h.Call("GET", "/v1/checkouts/" + id))["status"],
            "succeeded");
  EXPECT_EQ(
      SimHarness::Body(h.Call(
          "GET",
          "/v1/checkouts/?status=succeeded"))["pagination"]["total_count"],
      1);
}

TEST(SimCheckouts, AStreamEndsWithReconnectAfterTenMinutesOfPolarTime) {
  SimHarness h([](SimOptions& o) {
    o.checkouts.scale = TimeScale(0.001);  // 10 min of Polar time: 600 ms
    o.checkouts.sse_ping = 1h;
  });
  json c = h.CreateCheckout();
  SimResponse r = h.Call("GET",
                         "/v1/checkouts/client/" +
                             c["client_secret"].get<std::string>() + "/stream",
                         nullptr, false);
  ASSERT_TRUE(r.stream);
  h.Advance(599ms);
  EXPECT_TRUE(r.stream->alive());
  EXPECT_TRUE(r.stream->queued().empty());
  h.Advance(1ms);
  EXPECT_FALSE(r.stream->alive());
  EXPECT_EQ(r.stream->queued(), std::vector<std::string>{
                                    "data: {\"type\": \"reconnect\"}\r\n\r\n"});
}

TEST(SimCheckouts, AnUpdateWhileConfirmHoldsTheRowIs409ThenNotOpenIs403) {
  SimHarness h([](SimOptions& o) {
    o.checkouts.confirm_time = Distribution::Fixed(1s);
  });
  json c = h.CreateCheckout();
  std::string secret = c["client_secret"];
  // The confirm is accepted and held (its deferred work not run yet).
  SimResponse held = h.sim->Handle(
      h.Request("POST", "/v1/checkouts/client/" + secret + "/confirm",
                json{{"customer_email", "a@polar.sh"}}.dump(), false));
  ASSERT_TRUE(held.finish);
  EXPECT_EQ(held.hold_until, h.clock.Now() + 1s);
  SimResponse locked = h.Call("PATCH", "/v1/checkouts/client/" + secret,
                              {{"customer_name", "B"}}, false);
  ASSERT_EQ(locked.status, 409);
  EXPECT_EQ(
      SimHarness::Body(locked),
      (json{{"error", "CheckoutLocked"},
            {"detail",
             "Checkout is currently being processed. Please try again."}}));
  SimResponse done = held.finish();
  EXPECT_EQ(done.status, 200);
  SimResponse after = h.Call("PATCH", "/v1/checkouts/client/" + secret,
                             {{"customer_name", "B"}}, false);
  EXPECT_EQ(after.status, 403);
}

TEST(SimCheckouts, PastItsTtlACheckoutIs410OnClientRoutesAndExpiredInTheSweep) {
  SimHarness h([](SimOptions& o) { o.checkouts.ttl = 20ms; });
  json c = h.CreateCheckout();
  std::string secret = c["client_secret"];
  h.Advance(40ms);
  SimResponse get =
      h.Call("GET", "/v1/checkouts/client/" + secret, nullptr, false);
  ASSERT_EQ(get.status, 410);
  EXPECT_EQ(SimHarness::Body(get),
            (json{{"error", "ExpiredCheckoutError"},
                  {"detail", "This checkout session has expired."}}));
  EXPECT_EQ(
      h.Call("PATCH", "/v1/checkouts/client/" + secret, json::object(), false)
          .status,
      410);
  EXPECT_EQ(h.Call("POST", "/v1/checkouts/client/" + secret + "/confirm",
                   {{"customer_email", "a@polar.sh"}}, false)
                .status,
            410);
  json other = h.CreateCheckout();
  h.Advance(40ms);
  SimResponse by_id =
      h.Call("GET", "/v1/checkouts/" + other["id"].get<std::string>());
  EXPECT_EQ(SimHarness::Body(by_id)["status"],
            "open");  // the sweep has not run
}

TEST(SimCheckouts, TheListFiltersByStatusAndPages) {
  SimHarness h;
  for (int i = 0; i < 3; ++i) h.CreateCheckout();
  json c = h.CreateCheckout();
  h.Call("POST",
         "/v1/checkouts/client/" + c["client_secret"].get<std::string>() +
             "/confirm",
         {{"customer_email", "l@polar.sh"}}, false);
  SimResponse open = h.Call("GET", "/v1/checkouts/?status=open&limit=2&page=2");
  ASSERT_EQ(open.status, 200);
  json body = SimHarness::Body(open);
  EXPECT_EQ(body["pagination"], (json{{"total_count", 3}, {"max_page", 2}}));
  EXPECT_EQ(body["items"].size(), 1u);
}

TEST(SimCheckouts, MemoryIsBoundedByEvictingTheOldestCheckouts) {
  SimHarness h([](SimOptions& o) { o.checkouts.max_checkouts = 3; });
  json first = h.CreateCheckout();
  for (int i = 0; i < 3; ++i) h.CreateCheckout();
  EXPECT_EQ(
      h.Call("GET", "/v1/checkouts/" + first["id"].get<std::string>()).status,
      404);
  std::string metrics = h.sim->Metrics();
  EXPECT_NE(metrics.find("polar_sim_checkouts{status=\"open\"} 3"),
            std::string::npos);
}

// ---- events ----

json Ev(const std::string& customer, const std::string& name, json metadata,
        const std::string& ts = "") {
  json e = {{"name", name},
            {"external_customer_id", customer},
            {"metadata", metadata}};
  if (!ts.empty()) e["timestamp"] = ts;
  return e;
}

TEST(SimEvents, AnIngestedEventIsListedOnlyAfterTheWorkerChainAndItsLag) {
  SimHarness h([](SimOptions& o) {
    o.events.visibility_lag = Distribution::Fixed(300ms);
  });
  ASSERT_EQ(h.Call("POST", "/v1/events/ingest",
                   {{"events", {Ev("probe", "p", {{"probe_id", "u1"}})}}})
                .status,
            200);
  const std::string q =
      "/v1/events/?external_customer_id=probe&metadata[probe_id]=u1";
  auto count = [&] {
    return SimHarness::Body(h.Call("GET", q))["pagination"]["total_count"];
  };
  EXPECT_EQ(count(), 0);
  // event.ingested waits out the 10 ms coalescing window, tinybird.ingest
  // follows at once, then Tinybird's 300 ms.
  h.Advance(10ms);
  EXPECT_EQ(count(), 0);
  h.Advance(299ms);
  EXPECT_EQ(count(), 0);
  h.Advance(1ms);
  EXPECT_EQ(count(), 1);
}

TEST(SimEvents, ASlowWorkerDelaysVisibility) {
  SimHarness h([](SimOptions& o) {
    o.worker.job_time["tinybird.ingest"] = Distribution::Fixed(10ms);
    o.faults.worker["tinybird"] = WorkerFault{30, Duration::zero()};  // 300 ms
  });
  h.Call("POST", "/v1/events/ingest",
         {{"events", {Ev("slow", "p", json::object())}}});
  const std::string q = "/v1/events/?external_customer_id=slow";
  auto count = [&] {
    return SimHarness::Body(h.Call("GET", q))["pagination"]["total_count"];
  };
  h.Advance(10ms);  // the coalescing window; tinybird.ingest starts
  h.Advance(150ms);
  EXPECT_EQ(count(), 0);
  h.Advance(150ms);  // 10 ms x 30 of tinybird.ingest are over
  EXPECT_EQ(count(), 1);
}

TEST(SimEvents, FiltersMatchCustomerNameStringMetadataAndAStrictStartTime) {
  SimHarness h;
  json events = {
      Ev("c1", "generate.text", {{"slug", "pack"}}, "2026-01-01T00:00:01Z"),
      Ev("c1", "generate.image", {{"slug", "tier"}}, "2026-01-01T00:00:02Z"),
      Ev("c2", "generate.text", {{"slug", "pack"}, {"price", 0.5}},
         "2026-01-01T00:00:03Z"),
      Ev("c1", "generate.text", {{"slug", "pack"}}, "2026-01-01T00:00:04Z")};
  ASSERT_EQ(h.Call("POST", "/v1/events/ingest", {{"events", events}}).status,
            200);
  h.Advance(10ms);  // the worker chain; no Tinybird lag in these tests
  auto count = [&](const std::string& query) {
    json body = SimHarness::Body(h.Call("GET", "/v1/events/?" + query));
    return body["pagination"]["total_count"].get<int>();
  };
  EXPECT_EQ(count("external_customer_id=c1"), 3);
  EXPECT_EQ(count("external_customer_id=c1&name=generate.text"), 2);
  EXPECT_EQ(count("metadata[slug]=pack"), 3);
  EXPECT_EQ(count("metadata[slug]=pack&metadata[slug]=tier"), 4);
  // Tinybird compares extracted strings: a number never matches.
  EXPECT_EQ(
      SimHarness::Body(h.Call(
          "GET",
          "/v1/events/?metadata[price]=0.5"))["pagination"]["total_count"],
      0);
  EXPECT_EQ(count("start_timestamp=2026-01-01T00:00:02Z"), 2);  // exclusive
  json page = SimHarness::Body(
      h.Call("GET", "/v1/events/?external_customer_id=c1&limit=2&page=1"));
  EXPECT_EQ(page["pagination"], (json{{"total_count", 3}, {"max_page", 2}}));
  // Newest first by default; external_id never appears.
  EXPECT_EQ(page["items"][0]["timestamp"], "2026-01-01T00:00:04.000000Z");
  EXPECT_FALSE(page["items"][0].contains("external_id"));
  EXPECT_EQ(page["items"][0]["customer"], nullptr);
  EXPECT_EQ(h.Call("GET", "/v1/events/?limit=0").status, 422);
  EXPECT_EQ(
      SimHarness::Body(h.Call("GET", "/v1/events/?limit=1000"))["items"].size(),
      4u);
}

TEST(SimEvents, EventsOfASeededCustomerCarryTheCustomer) {
  SimHarness h;
  h.Call("POST", "/v1/events/ingest",
         {{"events",
           {Ev("loadtest-customer-3", "generate.text", json::object())}}});
  h.Advance(10ms);
  json body = SimHarness::Body(
      h.Call("GET", "/v1/events/?external_customer_id=loadtest-customer-3"));
  ASSERT_EQ(body["pagination"]["total_count"], 1);
  EXPECT_EQ(body["items"][0]["customer_id"], h.sim->seeded().customer_ids[3]);
  EXPECT_EQ(body["items"][0]["customer"]["external_id"], "loadtest-customer-3");
}

TEST(SimEvents, AnUnknownCustomerIdRejectsTheBatchAndErrorsCollectPerEvent) {
  SimHarness h;
  json events = {
      {{"name", "a"}, {"customer_id", "00000000-0000-4000-8000-000000000001"}},
      {{"name", "b"}}};
  SimResponse r = h.Call("POST", "/v1/events/ingest", {{"events", events}});
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(SimHarness::Body(r)["detail"].size(),
            2u);  // both members of event 1
  SimResponse unknown =
      h.Call("POST", "/v1/events/ingest",
             {{"events",
               {{{"name", "a"},
                 {"customer_id", "00000000-0000-4000-8000-000000000001"}}}}});
  ASSERT_EQ(unknown.status, 422);
  EXPECT_EQ(SimHarness::Body(unknown)["detail"][0]["msg"],
            "Customer not found.");
}

TEST(SimEvents, TheFastParserAndTheFullValidatorStoreTheSameEvents) {
  // The first body takes the DOM-free path; the extra top-level key sends the
  // second through the full validator (it ignores unknown keys, like Polar).
  SimHarness h;
  json events = {Ev("fast", "generate.text",
                    {{"slug", "pack"}, {"price", 0.25}, {"ok", true}},
                    "2026-01-01T00:00:01Z")};
  events[0]["external_id"] = "same-1";
  json slow_events = events;
  slow_events[0]["external_customer_id"] = "slow";
  slow_events[0]["external_id"] = "same-2";
  EXPECT_EQ(SimHarness::Body(
                h.Call("POST", "/v1/events/ingest", {{"events", events}})),
            (json{{"inserted", 1}, {"duplicates", 0}}));
  EXPECT_EQ(SimHarness::Body(h.Call("POST", "/v1/events/ingest",
                                    {{"events", slow_events}, {"extra", 1}})),
            (json{{"inserted", 1}, {"duplicates", 0}}));
  // Duplicates are found whichever path stored the first copy.
  EXPECT_EQ(SimHarness::Body(
                h.Call("POST", "/v1/events/ingest", {{"events", slow_events}})),
            (json{{"inserted", 0}, {"duplicates", 1}}));
  h.Advance(10ms);
  auto item = [&](const std::string& customer) {
    json body = SimHarness::Body(
        h.Call("GET", "/v1/events/?external_customer_id=" + customer));
    EXPECT_EQ(body["pagination"]["total_count"], 1) << customer;
    json e = body["items"][0];
    e.erase("id");
    e.erase("external_customer_id");
    return e;
  };
  EXPECT_EQ(item("fast"), item("slow"));
  // A future timestamp is caught on either path.
  json future = events;
  future[0]["timestamp"] = "2999-01-01T00:00:00Z";
  future[0]["external_id"] = "f";
  EXPECT_EQ(h.Call("POST", "/v1/events/ingest", {{"events", future}}).status,
            422);
}

// ---- webhook endpoints ----

TEST(SimWebhookEndpoints, CreateGetUpdateListDeleteFollowPolarsCodes) {
  SimHarness h([](SimOptions& o) { o.webhooks.allow_loopback = true; });
  SimResponse created =
      h.Call("POST", "/v1/webhooks/endpoints",
             {{"url", "https://hooks.polar.sh/x"},
              {"format", "raw"},
              {"events", {"checkout.created", "order.paid"}}});
  ASSERT_EQ(created.status, 201) << created.body;
  json ep = SimHarness::Body(created);
  EXPECT_EQ(ep["secret"].get<std::string>().rfind("whsec_", 0), 0u);
  EXPECT_EQ(ep["enabled"], true);
  std::string path = "/v1/webhooks/endpoints/" + ep["id"].get<std::string>();
  EXPECT_EQ(h.Call("GET", path).status, 200);
  SimResponse patched =
      h.Call("PATCH", path, {{"enabled", false}, {"name", "n"}});
  EXPECT_EQ(SimHarness::Body(patched)["enabled"], false);
  EXPECT_EQ(SimHarness::Body(h.Call(
                "GET", "/v1/webhooks/endpoints"))["pagination"]["total_count"],
            1);
  SimResponse rotated = h.Call("PATCH", path + "/secret", json::object());
  EXPECT_NE(SimHarness::Body(rotated)["secret"], ep["secret"]);
  SimResponse deleted = h.Call("DELETE", path);
  EXPECT_EQ(deleted.status, 204);
  EXPECT_TRUE(deleted.body.empty());
  EXPECT_EQ(h.Call("GET", path).status, 404);
}

TEST(SimWebhookEndpoints, LoopbackUrlsNeedTheFlagAndHttpsIsRequiredElsewhere) {
  SimHarness strict;
  json body = {{"url", "http://127.0.0.1:9/hook"},
               {"format", "raw"},
               {"events", {"order.paid"}}};
  SimResponse refused = strict.Call("POST", "/v1/webhooks/endpoints", body);
  ASSERT_EQ(refused.status, 422);
  body["url"] = "https://127.0.0.1:9/hook";
  SimResponse blocked = strict.Call("POST", "/v1/webhooks/endpoints", body);
  ASSERT_EQ(blocked.status, 422);
  EXPECT_EQ(SimHarness::Body(blocked)["detail"][0]["msg"],
            "Value error, Webhook URLs cannot point to localhost or private IP "
            "addresses.");
  body["url"] = "https://10.1.2.3/hook";
  EXPECT_EQ(strict.Call("POST", "/v1/webhooks/endpoints", body).status, 422);
  SimHarness loose([](SimOptions& o) { o.webhooks.allow_loopback = true; });
  body["url"] = "http://127.0.0.1:9/hook";
  EXPECT_EQ(loose.Call("POST", "/v1/webhooks/endpoints", body).status, 201);
  body["url"] = "http://10.1.2.3/hook";  // only loopback is let through
  EXPECT_EQ(loose.Call("POST", "/v1/webhooks/endpoints", body).status, 422);
  SimResponse bad = loose.Call(
      "POST", "/v1/webhooks/endpoints",
      {{"url", "https://x.polar.sh"}, {"format", "xml"}, {"events", {"nope"}}});
  ASSERT_EQ(bad.status, 422);
  EXPECT_EQ(SimHarness::Body(bad)["detail"].size(), 2u);
}

// Regression (found by tests/fuzz/sim_request_fuzz.cc): a query value that is
// not UTF-8 went into a 422's "input" and nlohmann::json threw while
// serialising it: an uncaught exception, polar-sim gone. Bytes that are not
// UTF-8 are replaced (U+FFFD) in every JSON answer.
TEST(SimValidation, AQueryValueThatIsNotUtf8IsA422NotACrash) {
  SimHarness h;
  SimRequest r = h.Request("GET", "/v1/events/");
  r.query.emplace("start_timestamp", "2020\xa5\xcd");
  SimResponse out = h.Send(r);
  ASSERT_EQ(out.status, 422);
  json body = SimHarness::Body(out);
  ASSERT_FALSE(body.is_discarded()) << out.body;
  EXPECT_EQ(body["detail"][0]["input"], "2020\xef\xbf\xbd\xef\xbf\xbd");
}

// Regression (found by tests/fuzz/sim_request_fuzz.cc, an UBSan signed
// overflow): the lists computed (page - 1) * limit from the query as is, so
// page=2^62+1&limit=4 wrapped to offset 0 and answered page 1 again (and
// larger pages could index before the list). A page past the end is empty.
TEST(SimValidation, APagePastTheEndIsEmptyEvenWhenPageTimesLimitOverflows) {
  SimHarness h([](SimOptions& o) { o.webhooks.allow_loopback = true; });
  const std::string far = "limit=4&page=4611686018427387905";  // 2^62 + 1
  h.CreateCheckout();
  ASSERT_EQ(h.Call("POST", "/v1/events/ingest",
                   {{"events", {Ev("c1", "generate.text", json::object())}}})
                .status,
            200);
  h.Advance(10ms);
  ASSERT_EQ(SimHarness::Body(h.Call("GET", "/v1/events/"))["items"].size(), 1u);
  ASSERT_EQ(h.Call("POST", "/v1/webhooks/endpoints",
                   {{"url", "https://hooks.polar.sh/x"},
                    {"format", "raw"},
                    {"events", {"order.paid"}}})
                .status,
            201);
  for (const std::string path :
       {"/v1/checkouts/", "/v1/events/", "/v1/webhooks/endpoints"}) {
    SimResponse first = h.Call("GET", path + "?limit=4&page=1");
    ASSERT_EQ(first.status, 200) << path << " " << first.body;
    ASSERT_EQ(SimHarness::Body(first)["items"].size(), 1u) << path;
    SimResponse r = h.Call("GET", path + "?" + far);
    ASSERT_EQ(r.status, 200) << path << " " << r.body;
    json body = SimHarness::Body(r);
    EXPECT_EQ(body["items"], json::array()) << path;
    EXPECT_EQ(body["pagination"], (json{{"total_count", 1}, {"max_page", 1}}))
        << path;
  }
  // The same arithmetic at the extremes.
  EXPECT_EQ(PageOf(INT64_MAX, 100, 5).begin, 5u);
  EXPECT_EQ(PageOf(INT64_MAX, 100, 5).end, 5u);
  EXPECT_EQ(PageOf(1, INT64_MAX, 5).begin, 0u);
  EXPECT_EQ(PageOf(1, INT64_MAX, 5).end, 5u);
  EXPECT_EQ(PageOf(2, 2, 3).begin, 2u);
  EXPECT_EQ(PageOf(2, 2, 3).end, 3u);
  EXPECT_EQ(PageOf(3, 2, 4).begin, 4u);
  EXPECT_EQ(PageOf(3, 2, 4).end, 4u);
}

// ---- authentication and cross-cutting ----

TEST(SimAuth, NoTokenBadTokenAndMissingScopeGetPolarsBodies) {
  SimHarness h;
  SimResponse none = h.Call("GET", "/v1/events/", nullptr, false);
  ASSERT_EQ(none.status, 401);
  EXPECT_EQ(SimHarness::Body(none),
            (json{{"error", "Unauthorized"}, {"detail", "Unauthorized"}}));
  EXPECT_EQ(Header(none, "WWW-Authenticate"), "Bearer realm=\"polar\"");
  SimRequest bad = h.Request("GET", "/v1/events/");
  bad.headers["authorization"] = "bearer polar_oat_nope";
  SimResponse invalid = h.Send(bad);
  EXPECT_EQ(invalid.status, 401);
  EXPECT_EQ(SimHarness::Body(invalid)["error"], "invalid_token");
  // A bad token is refused even on routes that allow anonymous access.
  json c = h.CreateCheckout();
  SimRequest client = h.Request(
      "GET", "/v1/checkouts/client/" + c["client_secret"].get<std::string>());
  client.headers["authorization"] = "Bearer polar_oat_nope";
  EXPECT_EQ(h.Send(client).status, 401);
  SimRequest read = h.Request("POST", "/v1/events/ingest", R"({"events":[]})");
  read.headers["authorization"] = "Bearer " + h.sim->seeded().read_token;
  SimResponse scope = h.Send(read);
  ASSERT_EQ(scope.status, 403);
  EXPECT_EQ(SimHarness::Body(scope)["error"], "insufficient_scope");
  EXPECT_NE(Header(scope, "WWW-Authenticate").find("scope=\"events:write\""),
            std::string::npos);
  SimRequest list = h.Request("GET", "/v1/events/");
  list.headers["authorization"] = "Bearer " + h.sim->seeded().read_token;
  EXPECT_EQ(h.Send(list).status, 200);
}

TEST(SimCrossCutting, LengthSizeRoutesMethodsVersionsAndSlashes) {
  SimHarness h;
  SimRequest no_length = h.Request("POST", "/v1/checkouts/", "{}");
  no_length.has_content_length = false;
  SimResponse r411 = h.Send(no_length);
  EXPECT_EQ(r411.status, 411);
  EXPECT_EQ(SimHarness::Body(r411),
            (json{{"error", "LengthRequired"},
                  {"detail", "A Content-Length header is required."}}));
  SimRequest big = h.Request("POST", "/v1/events/ingest", "");
  big.body_too_large = true;
  EXPECT_EQ(h.Send(big).status, 413);
  SimResponse missing = h.Call("GET", "/v1/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, R"({"detail":"Not Found"})");
  SimResponse method = h.Call("DELETE", "/v1/events/ingest");
  EXPECT_EQ(method.status, 405);
  EXPECT_EQ(method.body, R"({"detail":"Method Not Allowed"})");
  EXPECT_EQ(Header(method, "Allow"), "POST");
  SimRequest v = h.Request("GET", "/v1/events/");
  v.headers["polar-version"] = "2026-10";
  SimResponse versioned = h.Send(v);
  EXPECT_EQ(versioned.status, 200);
  EXPECT_EQ(Header(versioned, "Polar-Version"), "2026-10");
  EXPECT_EQ(Header(versioned, "Cache-Control"), "private, no-store");
  v.headers["polar-version"] = "2025-01";
  EXPECT_EQ(h.Send(v).body, R"({"detail":"Not Found"})");
  SimResponse redirect = h.Call("GET", "/v1/events");
  EXPECT_EQ(redirect.status, 307);
  EXPECT_EQ(Header(redirect, "Location"), "/v1/events/");
  SimResponse legacy = h.Call("GET", "/api/v1/events/");
  EXPECT_EQ(legacy.status, 200);
  EXPECT_FALSE(Header(legacy, "X-Polar-Deprecation-Notice").empty());
  EXPECT_EQ(SimHarness::Body(h.Call("GET", "/healthz", nullptr, false)),
            (json{{"status", "ok"}}));
}

TEST(SimRateLimits, SandboxModeAnswers429WithAnEmptyBodyAndRetryAfter) {
  SimHarness h([](SimOptions& o) { o.rate_limit = RateLimitMode::kSandbox; });
  int ok = 0;
  SimResponse last;
  for (int i = 0; i < 200; ++i) {
    last = h.Call("GET", "/v1/events/");
    if (last.status == 200) ++ok;
  }
  // The first request authenticates under pending_auth (60/min); the rest
  // count against the organization's 100/min.
  EXPECT_EQ(ok, 101);
  EXPECT_EQ(last.status, 429);
  EXPECT_TRUE(last.body.empty());
  EXPECT_EQ(Header(last, "Retry-After"), "60");  // the whole minute
  EXPECT_TRUE(Header(last, "Cache-Control").empty());
  const std::string metrics = h.sim->Metrics();
  EXPECT_NE(metrics.find("polar_sim_rate_limited_total 99\n"),
            std::string::npos);
  EXPECT_NE(
      metrics.find("polar_sim_rate_limited_by_zone_total{reason=\"window\","
                   "zone=\"api\"} 99\n"),
      std::string::npos)
      << metrics;
}

TEST(SimRateLimits, AConfirmBlockRefusesEveryAnonymousRouteFromThatIp) {
  SimHarness h([](SimOptions& o) { o.rate_limit = RateLimitMode::kSandbox; });
  std::vector<std::string> secrets;
  for (int i = 0; i < 7; ++i)
    secrets.push_back(h.CreateCheckout()["client_secret"]);
  auto confirm = [&](const std::string& secret) {
    return h.Call("POST", "/v1/checkouts/client/" + secret + "/confirm",
                  {{"customer_email", "rl@polar.sh"}}, false);
  };
  for (int i = 0; i < 6; ++i) ASSERT_EQ(confirm(secrets[i]).status, 200) << i;
  SimResponse seventh = confirm(secrets[6]);
  ASSERT_EQ(seventh.status, 429);
  EXPECT_EQ(Header(seventh, "Retry-After"), "1800");
  h.Advance(1s);
  // The client GET of another checkout from the same IP: blocked too.
  SimResponse get =
      h.Call("GET", "/v1/checkouts/client/" + secrets[6], nullptr, false);
  ASSERT_EQ(get.status, 429);
  EXPECT_EQ(Header(get, "Retry-After"), "1799");
  // The organization's token counts as the organization, not the IP.
  EXPECT_EQ(h.Call("GET", "/v1/events/").status, 200);
  EXPECT_NE(h.sim->Metrics().find("polar_sim_rate_limit_blocks_total{zone="
                                  "\"checkout-confirm\"} 1\n"),
            std::string::npos);
  h.Advance(30min);
  EXPECT_EQ(h.Call("GET", "/v1/checkouts/client/" + secrets[6], nullptr, false)
                .status,
            200);
}

// ---- faults ----

TEST(SimFaultInjection, ErrorRatioOneAnswersEveryRequestAndSkipsTheHandler) {
  SimHarness h;
  RouteFaults f;
  f.error_ratio = 1;
  f.error_status = 503;
  h.sim->faults().SetRoute("checkouts:create", f);
  SimResponse r = h.Call("POST", "/v1/checkouts/",
                         {{"product_id", h.sim->seeded().free_product_id}});
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "Service Unavailable");
  EXPECT_EQ(SimHarness::Body(
                h.Call("GET", "/v1/checkouts/"))["pagination"]["total_count"],
            0);
  EXPECT_EQ(h.Call("GET", "/v1/events/").status,
            200);  // other routes untouched
}

TEST(SimFaultInjection, MalformedRatioCutsJsonBodiesAndLatencyHoldsResponses) {
  SimHarness h;
  RouteFaults f;
  f.malformed_ratio = 1;
  f.latency = Distribution::Fixed(250ms);
  h.sim->faults().SetRoute("*", f);
  SimResponse r = h.sim->Handle(h.Request("GET", "/v1/events/"));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(SimHarness::Body(r).is_discarded()) << r.body;
  EXPECT_EQ(r.hold_until, h.clock.Now() + 250ms);
  h.sim->faults().Stall(2s);
  h.sim->faults().ClearRoute("*");
  SimResponse stalled = h.sim->Handle(h.Request("GET", "/v1/events/"));
  EXPECT_EQ(stalled.hold_until, h.clock.Now() + 2s);
}

TEST(SimFaultInjection, AdminRoutesSetListAndRefuseBadFaults) {
  SimHarness h;
  SimResponse set = h.Call("PUT", "/_sim/faults/routes/events:ingest",
                           {{"latency", "fixed:5ms"}, {"error_ratio", 0.5}});
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(SimHarness::Body(set)["routes"]["events:ingest"]["latency"],
            "fixed:5ms");
  EXPECT_EQ(
      h.Call("PUT", "/_sim/faults/routes/events:nope", {{"error_ratio", 0.5}})
          .status,
      422);
  EXPECT_EQ(h.Call("PUT", "/_sim/faults/routes/*", {{"error_ratio", 5}}).status,
            422);
  SimResponse worker = h.Call("PUT", "/_sim/faults/worker/webhooks",
                              {{"factor", 10}, {"add", "100ms"}});
  EXPECT_EQ(SimHarness::Body(worker)["worker"]["webhooks"]["factor"], 10.0);
  // An outage from the API listener must say when it ends.
  EXPECT_EQ(h.Call("POST", "/_sim/faults/outage", {{"mode", "refuse"}}).status,
            422);
  SimResponse cleared = h.Call("DELETE", "/_sim/faults");
  EXPECT_EQ(SimHarness::Body(cleared)["routes"], json::object());
}

}  // namespace
}  // namespace polar::sim
