// The client routes of a checkout (by its client secret, no token): GET,
// PATCH, POST .../confirm with its deferred finish, the success job, and the
// SSE stream.
#include "sim/api/checkout_fields.h"
#include "sim/api/checkouts.h"
#include "sim/api/io.h"

namespace polar::sim {
namespace {

// Checks Polar's _confirm_inner makes once the body is applied
// (checkout/service.py): the required fields (_get_required_confirm_fields,
// all reported together, each "Field is required."), a full billing address
// where one is required, and a confirmation token for a payment form.
void CheckConfirmFields(const Checkout& c, const json& body,
                        ValidationErrors& errors) {
  const bool payment_form = !c.product->free();  // is_payment_form_required
  const json& address = c.customer_billing_address;
  const std::string country =
      address.is_object() ? address.value("country", "") : "";
  auto missing = [&](std::initializer_list<json> loc) {
    json l = Loc({"body"});
    for (const json& part : loc) l.push_back(part);
    errors.Add(std::move(l), "missing", "Field is required.", nullptr);
  };
  auto address_field = [&](const char* f) {
    return address.is_object() && address.value(f, json()).is_string();
  };
  if (!c.customer_id && !c.customer_email) missing({"customer_email"});
  // is_billing_address_required; a US address always needs the full one.
  const bool full_address = c.require_billing_address || c.is_business_customer;
  if (payment_form || c.is_business_customer) {
    if (address.is_null()) missing({"customer_billing_address"});
  }
  if (payment_form) {
    // customer_billing_address_fields: country always, state in the US and
    // Canada, line1/city/postal_code with a full address or in the US.
    if (!address_field("country"))
      missing({"customer_billing_address", "country"});
    if ((country == "US" || country == "CA") && !address_field("state"))
      missing({"customer_billing_address", "state"});
    if (full_address || country == "US") {
      for (const char* f : {"line1", "city", "postal_code"})
        if (!address_field(f)) missing({"customer_billing_address", f});
    }
  }
  if (c.is_business_customer && !c.customer_billing_name)
    missing({"customer_billing_name"});
  if (full_address && !(address_field("line1") || address_field("line2") ||
                        address_field("city") || address_field("postal_code")))
    errors.Add(Loc({"body", "customer_billing_address"}), "value_error",
               "Full billing address is required.", address);
  if (payment_form && !OptString(body.value("confirmation_token_id", json())))
    errors.Add(Loc({"body", "confirmation_token_id"}), "missing",
               "Confirmation token is required.", nullptr);
}

// Stripe refused the confirmation token: PaymentError, 400.
SimResponse PaymentFailed(const std::string& token) {
  return JsonError(400, "PaymentError",
                   "The payment failed: No such confirmationtoken: '" + token +
                       "' Please try again with a different payment method.");
}

}  // namespace

bool CheckoutsApi::ExpireIfOverdueLocked(Checkout& c) {
  // get_by_client_secret refuses anything past expires_at, whatever its
  // status; an open one becomes expired.
  if (!(c.expires_at < clock_.WallNow())) return false;
  if (c.status == CheckoutStatus::kOpen) {
    c.status = CheckoutStatus::kExpired;
    ReplicateLocked(c);
  }
  return true;
}

SimResponse CheckoutsApi::ClientGet(const std::string& secret) {
  std::lock_guard lock(mutex_);
  Checkout* c = FindBySecretLocked(secret);
  if (!c) return ResourceNotFound();
  if (ExpireIfOverdueLocked(*c)) return Expired();
  return Json(200, CheckoutJson(*c, org_, CheckoutView::kPublic));
}

std::variant<Checkout*, SimResponse> CheckoutsApi::OpenForClientWriteLocked(
    const std::string& secret, const json& body, ValidationErrors& errors) {
  Checkout* c = FindBySecretLocked(secret);
  // Polar reads the row FOR UPDATE NOWAIT: a held lock answers first.
  if (c && c->lock_holders > 0) return Locked();
  if (!c) return ResourceNotFound();
  if (ExpireIfOverdueLocked(*c)) return Expired();
  if (c->status != CheckoutStatus::kOpen) return NotOpen(*c);
  CheckProductChoice(*c, body, errors);
  if (!errors.empty()) return errors.Response("PolarRequestValidationError");
  return c;
}

SimResponse CheckoutsApi::ClientUpdate(const SimRequest& request,
                                       const std::string& secret) {
  json body;
  if (auto error = ReadObject(request, &body)) return *error;
  ValidationErrors errors;
  ValidatePublicUpdate(body, errors);
  if (!errors.empty()) return errors.Response();
  json full, pub;
  std::string id;
  {
    std::lock_guard lock(mutex_);
    auto open = OpenForClientWriteLocked(secret, body, errors);
    if (auto* refusal = std::get_if<SimResponse>(&open)) return *refusal;
    Checkout* c = std::get<Checkout*>(open);
    ApplyPublicUpdate(*c, body, clock_.WallNow());
    ReplicateLocked(*c);
    full = CheckoutJson(*c, org_, CheckoutView::kFull);
    pub = CheckoutJson(*c, org_, CheckoutView::kPublic);
    id = c->id;
  }
  Publish(secret, "checkout.updated", StatusPayload(CheckoutStatus::kOpen));
  SendCheckoutUpdated(id, full, secret);
  return Json(200, pub);
}

SimResponse CheckoutsApi::ClientConfirm(const SimRequest& request,
                                        const std::string& secret) {
  json body;
  if (auto error = ReadObject(request, &body)) return *error;
  ValidationErrors errors;
  ValidatePublicUpdate(body, errors);
  errors.OptString(body, "confirmation_token_id", Loc({"body"}));
  if (!errors.empty()) return errors.Response();
  std::string id;
  Duration hold;
  bool payment_failed = false;
  {
    std::lock_guard lock(mutex_);
    auto open = OpenForClientWriteLocked(secret, body, errors);
    if (auto* refusal = std::get_if<SimResponse>(&open)) return *refusal;
    Checkout* c = std::get<Checkout*>(open);
    // The body's fields are applied first, as a PATCH would; on an error the
    // transaction rolls back, so work on a copy.
    Checkout next = *c;
    ApplyPublicUpdate(next, body, clock_.WallNow());
    CheckConfirmFields(next, body, errors);
    if (!errors.empty()) return errors.Response("PolarRequestValidationError");
    hold = options_.confirm_time.Sample(rng_);
    if (!next.product->free()) {
      // Stripe confirms the intent with the token: only one it made (and not
      // used yet) works. A made-up one fails after Stripe's round trips, and
      // the rollback leaves the checkout as it was.
      const std::string token =
          body["confirmation_token_id"].get<std::string>();
      if (confirmation_tokens_.erase(token) == 0) {
        payment_failed = true;
      }
    }
    if (!payment_failed) {
      *c = std::move(next);
      ReplicateLocked(*c);
      // Hold the row while "Stripe" works; FinishConfirm releases it.
      ++c->lock_holders;
      id = c->id;
    }
  }
  SimResponse r;
  r.hold_until = clock_.Now() + hold;
  if (payment_failed) {
    std::string token = body["confirmation_token_id"].get<std::string>();
    r.finish = [token] { return PaymentFailed(token); };
  } else {
    r.finish = [this, id] { return FinishConfirm(id); };
  }
  return r;
}

SimResponse CheckoutsApi::FinishConfirm(const std::string& id) {
  json full, confirmed, customer_json;
  std::string secret;
  bool free = true;
  CustomerStore::Match how = CustomerStore::Match::kCreated;
  {
    std::lock_guard lock(mutex_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return ResourceNotFound();
    Checkout& c = *it->second;
    --c.lock_holders;
    if (c.status != CheckoutStatus::kOpen) return NotOpen(c);
    CustomerStore::Buyer buyer;
    buyer.customer_id = c.customer_id;
    buyer.email = c.customer_email.value_or("");
    buyer.name =
        c.customer_billing_name ? c.customer_billing_name : c.customer_name;
    buyer.billing_name = c.customer_billing_name;
    buyer.external_id = c.external_customer_id;
    buyer.billing_address = c.customer_billing_address;
    std::optional<Customer> customer =
        customers_->ForConfirm(buyer, org_.id, &how);
    if (!customer) {
      return JsonError(422, "CheckoutCustomerExternalIdMismatch",
                       "A customer with this external ID already exists but "
                       "with a different email address.");
    }
    c.customer_id = customer->id;
    // No session for a customer matched by e-mail (it could be someone
    // else's account).
    c.customer_session_token =
        how != CustomerStore::Match::kByEmail
            ? std::optional<std::string>(NewToken("polar_cst_"))
            : std::nullopt;
    free = c.product->free();
    c.payment_processor_metadata["customer_id"] = RandomToken("cus_", 14);
    if (!free) {
      c.payment_processor_metadata["intent_client_secret"] =
          RandomToken("pi_", 24) + "_secret_" + RandomToken("", 25);
      c.payment_processor_metadata["intent_status"] = "succeeded";
    }
    c.status = CheckoutStatus::kConfirmed;
    c.modified_at = clock_.WallNow();
    ReplicateLocked(c);
    full = CheckoutJson(c, org_, CheckoutView::kFull);
    confirmed = CheckoutJson(c, org_, CheckoutView::kPublicConfirmed);
    secret = c.client_secret;
    customer_json = CustomerJson(*customer);
  }
  // CustomerRepository.create_context / update. Polar sends these from a
  // customer.webhook job on the medium queue, racing the success job; sent
  // here at once, they keep the order Polar documents (customer.* before the
  // confirmed checkout.updated and the order.* events).
  webhooks_->Send(how == CustomerStore::Match::kCreated ? "customer.created"
                                                        : "customer.updated",
                  customer_json);
  Publish(secret, "checkout.updated",
          StatusPayload(CheckoutStatus::kConfirmed));
  SendCheckoutUpdated(id, full, secret);
  SimResponse r = Json(200, confirmed);
  // The success job is pushed once the answer is on its way, as Polar
  // flushes a request's jobs after its handler returned.
  r.on_sent = [this, id, free] {
    auto job = [this, id](JobContext& ctx) { return HandleSuccess(id, ctx); };
    if (free) {
      worker_->Enqueue(kQueueHigh, "checkout.handle_free_success", job);
      return;
    }
    Duration delay;
    {
      std::lock_guard lock(mutex_);
      delay = options_.stripe_delay.Sample(rng_);
    }
    worker_->Enqueue(kQueueHigh, "stripe.webhook.charge.succeeded", job, delay);
  };
  return r;
}

JobResult CheckoutsApi::HandleSuccess(const std::string& id, JobContext& ctx) {
  {
    std::lock_guard lock(mutex_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return JobResult::Failed();
    if (it->second->status != CheckoutStatus::kConfirmed)
      return JobResult::Failed();  // NotConfirmedCheckout
    ++it->second->lock_holders;
  }
  ctx.Work();
  json order_json, full;
  std::string secret;
  {
    std::lock_guard lock(mutex_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return JobResult::Failed();
    Checkout& c = *it->second;
    --c.lock_holders;
    std::optional<Customer> customer =
        c.customer_id ? customers_->ById(*c.customer_id) : std::nullopt;
    if (!customer) return JobResult::Failed();
    Order o;
    o.id = NewId();
    o.created_at = clock_.WallNow();
    o.checkout_id = c.id;
    o.amount = c.product->price_amount * c.seats.value_or(1);
    o.currency = c.product->currency;
    order_json = OrderJson(o, c, *customer);
    c.status = CheckoutStatus::kSucceeded;
    c.modified_at = clock_.WallNow();
    ReplicateLocked(c);
    full = CheckoutJson(c, org_, CheckoutView::kFull);
    secret = c.client_secret;
  }
  succeeded_->Increment();
  webhooks_->Send("order.created", order_json);
  webhooks_->Send("order.updated", order_json);
  webhooks_->Send("order.paid", order_json);
  Publish(secret, "checkout.order_created", json::object());
  Publish(secret, "checkout.updated",
          StatusPayload(CheckoutStatus::kSucceeded));
  SendCheckoutUpdated(id, full, secret);
  return JobResult::Done();
}

SimResponse CheckoutsApi::ClientStream(const std::string& secret) {
  {
    std::lock_guard lock(mutex_);
    Checkout* c = FindBySecretLocked(secret);
    if (!c) return ResourceNotFound();
    if (c->expires_at < clock_.WallNow()) return Expired();
  }
  if (live_streams_->load() >= static_cast<int>(options_.max_streams)) {
    SimResponse r = JsonError(503, "ServiceUnavailable",
                              "polar-sim: too many open checkout streams.");
    return r;
  }
  ++*live_streams_;
  std::shared_ptr<SseStream> stream(new SseStream,
                                    [counter = live_streams_](SseStream* s) {
                                      --*counter;
                                      delete s;
                                    });
  {
    std::lock_guard lock(streams_mutex_);
    streams_[secret].push_back(stream);
  }
  // sse_starlette pings every 15 s; a ping also finds clients that left.
  std::weak_ptr<SseStream> weak = stream;
  auto ping = std::make_shared<std::function<void()>>();
  *ping = [this, weak, ping_weak = std::weak_ptr<std::function<void()>>(ping)] {
    auto s = weak.lock();
    if (!s || !s->alive()) return;
    std::string ts = FormatTimestamp(clock_.WallNow());
    s->Push(": ping - " + ts + "\r\n\r\n");
    if (auto again = ping_weak.lock())
      timer_->After(options_.sse_ping, [again] { (*again)(); });
  };
  timer_->After(options_.sse_ping, [ping] { (*ping)(); });
  // MAX_SSE_CONNECTION_LIFETIME: Polar's subscribe() yields this frame and
  // ends the stream; the client is expected to reconnect.
  timer_->After(options_.scale(options_.stream_lifetime), [weak] {
    if (auto s = weak.lock(); s && s->alive()) {
      s->Push("data: {\"type\": \"reconnect\"}\r\n\r\n");
      s->Close();
    }
  });
  SimResponse r;
  r.content_type = "text/event-stream; charset=utf-8";
  r.headers = {{"Cache-Control", "no-store"},
               {"Connection", "keep-alive"},
               {"X-Accel-Buffering", "no"}};
  r.stream = std::move(stream);
  return r;
}

}  // namespace polar::sim
