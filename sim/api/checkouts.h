// Checkouts: POST /v1/checkouts/, GET /v1/checkouts/, GET and PATCH
// /v1/checkouts/{id}, and the client routes GET/PATCH
// /v1/checkouts/client/{secret}, POST .../confirm and the SSE stream
// GET .../stream (docs/polar-api.md §2).
//
// The state machine is Polar's: open -> confirmed synchronously on confirm
// (after ConfirmOptions' processing time, during which the checkout is locked
// and concurrent updates get 409 CheckoutLocked), confirmed -> succeeded in a
// background job (checkout.handle_free_success for free products,
// stripe.webhook.charge.succeeded after the simulated Stripe delay for paid
// ones) that creates a paid order and fires order.created, order.updated,
// order.paid and checkout.updated. Overdue open checkouts expire on update or
// in the sweep every 15 min (time-scaled); client routes then answer 410.
//
// The authenticated routes, the store and the expiry sweep are in
// checkouts.cc, the client routes in checkout_client.cc, field checks in
// checkout_fields.h.
//
// Thread-safe: handlers run concurrently on HTTP threads, confirm's finish on
// the timer thread, jobs on worker threads. Times come from the timer's Clock.
// One mutex guards the checkouts, another the SSE streams; webhooks and SSE
// frames are sent outside both. Bounded: at most max_checkouts are kept (oldest
// evicted first) and at most max_streams SSE streams are open.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "sim/api/customers.h"
#include "sim/api/model.h"
#include "sim/api/validation.h"
#include "sim/api/webhooks.h"
#include "sim/base/distribution.h"
#include "sim/base/timer.h"
#include "sim/http/message.h"
#include "sim/worker/worker.h"

namespace polar::sim {

struct CheckoutOptions {
  Duration ttl = std::chrono::hours(24);  // CHECKOUT_TTL_SECONDS
  // How long confirm holds the row (Stripe customer + intent round trips).
  Distribution confirm_time;
  // Paid checkouts: from confirm to Stripe's charge.succeeded webhook.
  Distribution stripe_delay = Distribution::Fixed(std::chrono::seconds(1));
  std::size_t max_checkouts = 100'000;
  TimeScale scale;  // the expiry sweep and the stream lifetime
  Duration sse_ping = std::chrono::seconds(15);  // sse_starlette's default
  // MAX_SSE_CONNECTION_LIFETIME (server/polar/eventstream/endpoints.py): a
  // stream then sends {"type": "reconnect"} and ends. Polar time (scaled).
  Duration stream_lifetime = std::chrono::minutes(10);
  std::size_t max_streams = 1000;
  // How far the read replica behind GET /v1/checkouts/ and
  // GET /v1/checkouts/{id} trails the primary (get_db_read_session; sandbox
  // and production have one, docs/polar-api.md §2.3). Zero: reads see the
  // primary. Each write becomes visible there this long after it happened.
  Distribution replica_lag;
};

class CheckoutsApi {
 public:
  CheckoutsApi(const CheckoutOptions& options, const Organization& org,
               std::vector<const Product*> products, CustomerStore* customers,
               Worker* worker, WebhookService* webhooks, TimerThread* timer,
               prometheus::Registry& registry);

  SimResponse Create(const SimRequest& request);
  SimResponse List(const SimRequest& request);
  SimResponse Get(const std::string& id);
  SimResponse Update(const SimRequest& request, const std::string& id);
  SimResponse ClientGet(const std::string& secret);
  SimResponse ClientUpdate(const SimRequest& request,
                           const std::string& secret);
  SimResponse ClientConfirm(const SimRequest& request,
                            const std::string& secret);
  SimResponse ClientStream(const std::string& secret);

  // A Stripe ConfirmationToken for a paid confirm, as Stripe's test helpers
  // make one (polar-sim's POST /_sim/stripe/confirmation_tokens). Any other
  // token, or one used already, fails at Stripe: 400 PaymentError.
  std::string IssueConfirmationToken();

  // Starts the periodic expiry sweep on the timer thread.
  void StartSweeper();
  void SweepExpired();

  std::size_t size() const;
  // polar_sim_checkouts{status} and polar_sim_checkout_streams: call before a
  // scrape.
  void UpdateGauges();

 private:
  SimResponse FinishConfirm(const std::string& id);
  JobResult HandleSuccess(const std::string& id, JobContext& ctx);
  void Publish(const std::string& secret, const std::string& key,
               const json& payload);
  void SendCheckoutUpdated(const std::string& id, const json& full,
                           const std::string& secret);
  const Product* FindProduct(const std::string& id) const;
  const Product* FindProductByPrice(const std::string& price_id) const;
  Checkout* FindBySecretLocked(const std::string& secret);
  // Past expires_at: an open checkout becomes expired; true either way.
  bool ExpireIfOverdueLocked(Checkout& c);
  // What a client write (update, confirm) checks first, in Polar's order: the
  // row lock, the checkout by its client secret, expiry, that it is open and
  // the body's product choice. The checkout, or the answer that refuses it.
  std::variant<Checkout*, SimResponse> OpenForClientWriteLocked(
      const std::string& secret, const json& body, ValidationErrors& errors);
  void EvictLocked();
  // A write to `c` reaches the replica after the replica lag.
  void ReplicateLocked(const Checkout& c);
  // The full view of checkout `id` on the replica now; null when the replica
  // does not have it yet (or lag is off: then read the primary).
  const json* ReplicaLocked(const std::string& id) const;
  bool replicated() const { return !options_.replica_lag.IsZero(); }

  CheckoutOptions options_;
  const Organization& org_;
  std::vector<const Product*> products_;
  CustomerStore* customers_;
  Worker* worker_;
  WebhookService* webhooks_;
  TimerThread* timer_;
  const Clock& clock_;  // the timer's

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<Checkout>> by_id_;
  std::unordered_map<std::string, std::string> by_secret_;
  std::deque<std::string> order_;  // creation order, for eviction
  std::mt19937_64 rng_{11};
  struct ReplicaVersion {
    SteadyTime visible_at;
    json full;
  };
  // Per checkout, the writes the replica has not shown yet and the newest it
  // shows; only while replica_lag is set.
  std::unordered_map<std::string, std::deque<ReplicaVersion>> replica_;
  // Issued and unused Stripe confirmation tokens (FIFO-bounded).
  std::unordered_set<std::string> confirmation_tokens_;
  std::deque<std::string> confirmation_token_order_;

  std::mutex streams_mutex_;
  std::unordered_map<std::string, std::vector<std::weak_ptr<SseStream>>>
      streams_;
  std::shared_ptr<std::atomic<int>> live_streams_ =
      std::make_shared<std::atomic<int>>(0);

  prometheus::Counter* created_;    // polar_checkout_created_total
  prometheus::Counter* succeeded_;  // polar_checkout_succeeded_total
  prometheus::Family<prometheus::Gauge>& by_status_;
  prometheus::Gauge* streams_open_;
};

}  // namespace polar::sim
