// The checkout scenario type: its keys, parser, factory and load
// (scenarios/scenario_type.h). What it sends: scenarios/checkout.h.
#include <fmt/format.h>

#include <cctype>

#include "scenarios/billing_address.h"
#include "scenarios/checkout.h"
#include "scenarios/generators.h"
#include "scenarios/scenario_type.h"

namespace polar {
namespace {

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (ch != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(ch))) {
      return false;
    }
  }
  return true;
}

void ParseProductAndCustomer(ScenarioConfigReader& r, CheckoutOptions& o) {
  bool product_from_env = false;
  if (auto v = r.String("product_id")) o.product_id = *v;
  if (auto id = r.Env("LOAD_TEST_PRODUCT_ID"); id && !id->empty()) {
    o.product_id = *id;
    product_from_env = true;
    r.Note(
        fmt::format("LOAD_TEST_PRODUCT_ID overrides {}.product_id", r.path()));
  }
  if (o.product_id.empty()) {
    if (!r.Has("product_id"))
      r.Error("product_id",
              "missing; the id of the product to check out (a free one "
              "completes without payment), or LOAD_TEST_PRODUCT_ID");
  } else if (!IsUuid(o.product_id)) {
    const std::string why =
        fmt::format("\"{}\" is not a product id (a UUID)", o.product_id);
    if (product_from_env)
      r.EnvError("LOAD_TEST_PRODUCT_ID", why);
    else
      r.Error("product_id", why);
  }
  if (auto v = r.String("create_form")) {
    if (*v == "products") {
      o.create_form = CreateForm::kProducts;
    } else if (*v == "product_id") {
      o.create_form = CreateForm::kProductId;
    } else {
      r.Error("create_form",
              fmt::format("\"{}\" is not products or product_id", *v));
    }
  }
  bool email_from_env = false;
  if (auto v = r.String("customer_email")) o.customer_email = *v;
  if (auto e = r.Env("LOAD_TEST_CUSTOMER_EMAIL"); e && !e->empty()) {
    o.customer_email = *e;
    email_from_env = true;
    r.Note(fmt::format("LOAD_TEST_CUSTOMER_EMAIL overrides {}.customer_email",
                       r.path()));
  }
  if (std::string why; !CheckCustomerEmail(o.customer_email, &why)) {
    why = fmt::format("\"{}\" {}", o.customer_email, why);
    if (email_from_env)
      r.EnvError("LOAD_TEST_CUSTOMER_EMAIL", why);
    else
      r.Error("customer_email", why);
  }
  if (auto v = r.Int("customer_pool", 1, 1'000'000))
    o.customer_pool = static_cast<int>(*v);
  // Each shard draws customers from its own slice of the pool (index % N ==
  // i), so the pool must give every shard at least one.
  const Shard shard = r.shard();
  if (shard.sharded() && o.customer_pool < static_cast<int>(shard.count)) {
    r.Error(
        "customer_pool",
        fmt::format("{} customers cannot be split over {} shards (each "
                    "takes the addresses whose index % {} is its own); "
                    "use at least {}",
                    o.customer_pool, shard.count, shard.count, shard.count));
  }
}

void ParseBillingAddress(ScenarioConfigReader& r, CheckoutOptions& o) {
  if (!r.Has("billing_address")) return;
  if (r.IsFalse("billing_address")) {
    o.billing_address.reset();
    return;
  }
  if (!r.IsTable("billing_address")) {
    r.Error("billing_address",
            "must be a table like { country = \"SE\", city = \"Stockholm\" "
            "}, or false to send none");
    return;
  }
  BillingAddress address;
  auto country = r.String("billing_address.country");
  if (!country) {
    if (!r.Has("billing_address.country"))
      r.Error("billing_address.country", "missing; e.g. \"SE\"");
  } else {
    address.country = *country;
  }
  if (auto v = r.String("billing_address.line1")) address.line1 = *v;
  if (auto v = r.String("billing_address.line2")) address.line2 = *v;
  if (auto v = r.String("billing_address.postal_code"))
    address.postal_code = *v;
  if (auto v = r.String("billing_address.city")) address.city = *v;
  if (auto v = r.String("billing_address.state")) address.state = *v;
  if (country) {
    // Polar's AddressInput rules: what Polar would refuse is refused here.
    for (const auto& [field, why] : NormalizeBillingAddress(address)) {
      const std::string key = "billing_address." + field;
      r.Error(r.Has(key) ? key : "billing_address", why);
    }
  }
  if (address.country == "US" &&
      (address.line1.empty() || address.postal_code.empty() ||
       address.city.empty() || address.state.empty())) {
    r.Error("billing_address",
            "a US address needs line1, postal_code, city and state: Polar "
            "requires a full address in the US");
  }
  o.billing_address = address;
}

void ParseFunnel(ScenarioConfigReader& r, CheckoutOptions& o) {
  if (!r.Has("funnel")) return;
  if (!r.IsTable("funnel")) {
    r.Error("funnel",
            "must be a table like { update = 0.5, status = 0.3, confirm = "
            "0.1 }");
    return;
  }
  if (auto v = r.Share("funnel.update")) o.update_ratio = *v;
  if (auto v = r.Share("funnel.status")) o.status_ratio = *v;
  if (auto v = r.Share("funnel.confirm")) o.confirm_ratio = *v;
  if (!(o.update_ratio >= o.status_ratio &&
        o.status_ratio >= o.confirm_ratio)) {
    r.Error("funnel",
            fmt::format("shares of created checkouts reaching each step "
                        "must not grow along the flow (update {:g} >= "
                        "status {:g} >= confirm {:g})",
                        o.update_ratio, o.status_ratio, o.confirm_ratio));
  }
}

void ParseCompletion(ScenarioConfigReader& r, CheckoutOptions& o) {
  if (auto v = r.DurationIn("think_time", Duration::zero(),
                            std::chrono::minutes(10))) {
    o.think_time = *v;
  }
  if (auto v = r.String("completion")) {
    if (*v == "stream") {
      o.completion = CompletionMode::kStream;
    } else if (*v == "poll") {
      o.completion = CompletionMode::kPoll;
    } else {
      r.Error("completion", fmt::format("\"{}\" is not stream or poll", *v));
    }
  }
  if (auto v = r.DurationIn("poll_interval", std::chrono::milliseconds(50),
                            std::chrono::minutes(1))) {
    o.poll_interval = *v;
  }
  if (auto v = r.DurationIn("completion_deadline", std::chrono::seconds(1),
                            std::chrono::hours(1))) {
    o.completion_deadline = *v;
  }
}

std::any ParseCheckout(ScenarioConfigReader& r) {
  CheckoutOptions o;
  ParseProductAndCustomer(r, o);
  ParseBillingAddress(r, o);
  ParseFunnel(r, o);
  ParseCompletion(r, o);
  return o;
}

std::unique_ptr<Scenario> MakeCheckout(ScenarioContext context,
                                       const std::any& options) {
  return std::make_unique<CheckoutScenario>(
      std::move(context), std::any_cast<const CheckoutOptions&>(options));
}

// How long a poll waits in the estimate: Polar's success job usually takes a
// second or two after the confirm.
constexpr double kCompletionWaitSeconds = 2;

// The create carries the token; the checkout page's steps carry only the
// client secret, so Polar counts them per IP, the confirm in its own zone. The
// completion is one stream (per IP) or polls of GET /v1/checkouts/{id} (with
// the token).
PolarLoad CheckoutLoad(const std::any& options) {
  const auto& o = std::any_cast<const CheckoutOptions&>(options);
  PolarLoad load;
  load.parts = {{PolarBucket::kOrganization, 1, 1},
                {PolarBucket::kClientIp, o.update_ratio, 1},
                {PolarBucket::kClientIp, o.status_ratio, 1},
                {PolarBucket::kConfirm, o.confirm_ratio, 1}};
  if (o.completion == CompletionMode::kStream) {
    load.parts.push_back({PolarBucket::kClientIp, o.confirm_ratio, 1});
  } else {
    load.parts.push_back({PolarBucket::kOrganization, o.confirm_ratio,
                          PollsForWait(o.poll_interval, o.completion_deadline,
                                       kCompletionWaitSeconds)});
    load.wait_note = fmt::format("{:.0f} s of polling per confirmed checkout",
                                 kCompletionWaitSeconds);
  }
  return load;
}

}  // namespace

const ScenarioType& CheckoutType() {
  static const ScenarioType kType{
      "checkout",
      "one checkout flow per arrival: create, update, status, confirm, then "
      "completion seen on the SSE stream or by polling",
      {
          {"product_id", "string", ""},
          {"create_form", "string", "\"products\""},
          {"customer_email", "string", "\"loadtest@polar.sh\""},
          {"customer_pool", "integer", "100"},
          {"billing_address", "inline table or false",
           "{ country = \"SE\", line1 = \"Drottninggatan 1\", postal_code = "
           "\"111 51\", city = \"Stockholm\" }"},
          {"billing_address.country", "string", ""},
          {"billing_address.line1", "string", ""},
          {"billing_address.line2", "string", ""},
          {"billing_address.postal_code", "string", ""},
          {"billing_address.city", "string", ""},
          {"billing_address.state", "string", ""},
          {"funnel", "inline table",
           "{ update = 0.5, status = 0.3, confirm = 0.1 }"},
          {"funnel.update", "share", "0.5"},
          {"funnel.status", "share", "0.3"},
          {"funnel.confirm", "share", "0.1"},
          {"think_time", "duration", "\"1s\""},
          {"completion", "string", "\"stream\""},
          {"poll_interval", "duration", "\"1s\""},
          {"completion_deadline", "duration", "\"60s\""},
      },
      {"create", "update", "status", "confirm", "stream", "get"},
      "product_id = \"77d5072c-f7be-48fd-8bd4-abf9451d0bf0\"",
      &ParseCheckout,
      &MakeCheckout,
      &CheckoutLoad,
      &SameOptions<CheckoutOptions>,
  };
  return kType;
}

}  // namespace polar
