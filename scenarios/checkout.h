// CheckoutScenario: one checkout flow per arrival, the way a customer walks
// Polar's checkout page, and the background job that completes it.
//
// Built by its type's factory (scenarios/checkout_type.cc) on the loop thread
// and used only there; it needs ScenarioContext::timers. Each flow:
//   create   POST /v1/checkouts/ (token; `products` form, or `product_id` for
//            older servers)                                  -> 201, open
//   update   PATCH /v1/checkouts/client/{secret} with the customer's e-mail,
//            name and billing address (no token, like the checkout page)
//                                                -> 200, open, e-mail applied
//   status   GET /v1/checkouts/client/{secret}               -> 200, open
//   confirm  POST /v1/checkouts/client/{secret}/confirm      -> 200, confirmed
//   then the checkout must reach `succeeded` (Polar's worker): watched on the
//   SSE stream GET /v1/checkouts/client/{secret}/stream (step `stream`,
//   opened right after create, as the page subscribes when it loads, so the
//   event cannot be missed), or polled with GET /v1/checkouts/{id} (step
//   `get`, a merchant's server asking). Confirm answered -> succeeded seen is
//   polar_loadd_completion_seconds{kind="checkout_succeeded"}; past the
//   deadline it counts in polar_loadd_probes_lost_total and the flow ends
//   `timeout`. A stream that the server closes early falls back to polling;
//   one that says {"type": "reconnect"} first (Polar ends streams after 10
//   minutes) is opened again. A poll that still sees `open` after confirm
//   (Polar's read replica) waits. A create for a product that needs a payment
//   is check_failed, said once in the journal, and no confirm is sent.
// The funnel is drawn per flow from the seeded generator: by default
// (10/5/3/1, docs/scenarios.md) half the flows stop after create, and of
// every 10 created 5 are updated, 3 polled, 1 confirmed; the rest are abandoned
// as real carts are. A step that does not end ok ends its flow with that step's
// outcome; a wrong body is check_failed. Each step's latency runs from its own
// intended start: the previous step's end plus the think time. The whole flow
// (intended start to its last step) is polar_loadd_flow_duration_seconds by
// outcome. With ScenarioContext::webhooks set, every flow registers the
// webhooks its calls must cause (scenarios/webhook_expectations.h).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "scenarios/generators.h"
#include "scenarios/random.h"
#include "scenarios/scenario.h"
#include "scenarios/sse.h"
#include "scenarios/timers.h"

namespace polar {

enum class CreateForm : unsigned char {
  kProducts,   // {"products": [id]}: the documented form
  kProductId,  // {"product_id": id}: deprecated, for older servers
};
enum class CompletionMode : unsigned char { kStream, kPoll };

struct BillingAddress {
  std::string country;  // ISO 3166-1 alpha-2; required by Polar
  std::string line1, line2, postal_code, city, state;  // empty: not sent
  bool operator==(const BillingAddress&) const = default;
};

struct CheckoutOptions {
  std::string product_id;  // LOAD_TEST_PRODUCT_ID; a free product completes
                           // without a payment (docs/polar-api.md §2.6)
  CreateForm create_form = CreateForm::kProducts;
  // The base address (LOAD_TEST_CUSTOMER_EMAIL). Each flow uses
  // base+<run>-<i>@domain, i < customer_pool, so Polar's e-mail check sees a
  // deliverable domain and at most customer_pool customers are created per
  // run of the daemon. Shard k of N uses only the i with i % N == k, so a
  // cluster creates at most customer_pool in all and no two shards share one.
  std::string customer_email = "loadtest@polar.sh";
  int customer_pool = 100;
  // Sent with update and confirm; nullopt: none. Outside the US Polar needs
  // only the country for a free product.
  std::optional<BillingAddress> billing_address =
      BillingAddress{"SE", "Drottninggatan 1", "", "111 51", "Stockholm", ""};
  // Shares of created checkouts that get this far (nested, 1 >= update >=
  // status >= confirm >= 0): 10/5/3/1 by default (not Locust's 4/2/1/1,
  // which are repeat counts; docs/scenarios.md).
  double update_ratio = 0.5;
  double status_ratio = 0.3;
  double confirm_ratio = 0.1;
  Duration think_time = std::chrono::seconds(1);
  CompletionMode completion = CompletionMode::kStream;
  Duration poll_interval = std::chrono::seconds(1);
  Duration completion_deadline = std::chrono::seconds(60);
  bool operator==(const CheckoutOptions&) const = default;
};

class CheckoutScenario final : public Scenario {
 public:
  CheckoutScenario(ScenarioContext context, CheckoutOptions options);
  ~CheckoutScenario() override;

  const std::string& name() const override { return context_.name; }
  void Start(const Arrival& arrival) override;
  std::size_t in_flight() const override { return flows_.size(); }

 private:
  enum class Step : unsigned char { kCreate, kUpdate, kStatus, kConfirm, kGet };
  struct Flow;

  Flow* Find(uint64_t id);
  void SendStep(Flow& flow, Step step, MonoTime intended);
  void After(Flow& flow, Step step, MonoTime previous_end);
  void OnResponse(uint64_t id, Step step, Response&& response);
  // The outcome of a step's answer; `body` gets the parsed JSON.
  Outcome Judge(const Flow& flow, Step step, const Response& response,
                nlohmann::json* body) const;
  void OnCreated(Flow& flow, const Response& response);
  void OnConfirmed(Flow& flow, const Response& response);
  void Poll(Flow& flow, MonoTime at);

  void OpenStream(Flow& flow, MonoTime intended);
  void OnStreamHead(uint64_t id, const Response& head);
  void OnStreamData(uint64_t id, std::string_view chunk);
  void OnStreamEnd(uint64_t id, Response&& end);
  // The stream failed with `outcome`: records it, closes it, and ends the
  // flow now if it was waiting for the stream, else at its next step.
  void FailStream(Flow& flow, Outcome outcome, MonoTime at);
  void RecordStream(Flow& flow, Outcome outcome);
  // The server ended the stream before `succeeded` (or the transport's
  // deadline passed): carry on by polling.
  void StreamGone(Flow& flow, MonoTime at);

  // A create answered for a product that needs a payment: said once.
  void ReportPaidProduct(const nlohmann::json& body);

  void OnDeadline(uint64_t id);
  void Complete(Flow& flow, MonoTime seen);
  void Lost(Flow& flow, MonoTime at);
  void End(Flow& flow, Outcome outcome, MonoTime at);

  StepRecorder& Recorder(Step step);
  std::string CustomerBody(const Flow& flow) const;

  ScenarioContext context_;
  CheckoutOptions options_;
  Timers& timers_;
  Rng rng_;
  std::string run_id_;
  // By pool index: whether a confirm with that address succeeded (Polar
  // then has the customer), is on the wire, or neither.
  enum class EmailState : unsigned char { kUnused, kConfirming, kUsed };
  std::vector<EmailState> email_state_;
  bool paid_product_reported_ = false;
  StepRecorder create_;
  StepRecorder update_;
  StepRecorder status_;
  StepRecorder confirm_;
  std::optional<StepRecorder> stream_;  // made on first use
  std::optional<StepRecorder> get_;
  ScenarioSeries& series_;
  CompletionSeries& completion_;
  std::array<prometheus::Histogram*, kOutcomeCount> flow_duration_{};
  std::unordered_map<uint64_t, std::unique_ptr<Flow>> flows_;
  uint64_t next_flow_ = 1;
};

}  // namespace polar
