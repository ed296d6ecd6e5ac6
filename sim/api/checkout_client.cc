// The client routes of a checkout (by its client secret, no token): GET,
// PATCH, POST .../confirm with its deferred finish, the success job, and the
// SSE stream.
#include "sim/api/checkout_fields.h"
#include "sim/api/checkouts.h"
#include "sim/api/io.h"

namespace polar::sim {

SimResponse CheckoutsApi::ClientGet(const std::string& secret) {
  std::lock_guard lock(mutex_);
  Checkout* c = FindBySecretLocked(secret);
  if (!c) return ResourceNotFound();
  // get_by_client_secret refuses anything past expires_at, whatever its status.
  if (c->expires_at < clock_.WallNow()) {
    if (c->status == CheckoutStatus::kOpen)
      c->status = CheckoutStatus::kExpired;
    return Expired();
  }
  return Json(200, CheckoutJson(*c, org_, CheckoutView::kPublic));
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
    Checkout* c = FindBySecretLocked(secret);
    // Polar reads the row FOR UPDATE NOWAIT: a held lock answers first.
    if (c && c->lock_holders > 0) return Locked();
    if (!c) return ResourceNotFound();
    if (c->expires_at < clock_.WallNow()) {
      if (c->status == CheckoutStatus::kOpen)
        c->status = CheckoutStatus::kExpired;
      return Expired();
    }
    if (c->status != CheckoutStatus::kOpen) return NotOpen(*c);
    CheckProductChoice(*c, body, errors);
    if (!errors.empty()) return errors.Response("PolarRequestValidationError");
    ApplyPublicUpdate(*c, body, clock_.WallNow());
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
  {
    std::lock_guard lock(mutex_);
    Checkout* c = FindBySecretLocked(secret);
    if (c && c->lock_holders > 0) return Locked();
    if (!c) return ResourceNotFound();
    if (c->expires_at < clock_.WallNow()) {
      if (c->status == CheckoutStatus::kOpen)
        c->status = CheckoutStatus::kExpired;
      return Expired();
    }
    if (c->status != CheckoutStatus::kOpen) return NotOpen(*c);
    CheckProductChoice(*c, body, errors);
    if (!errors.empty()) return errors.Response("PolarRequestValidationError");
    // The body's fields are applied first, as a PATCH would; on a validation
    // error the transaction rolls back, so work on a copy.
    Checkout next = *c;
    ApplyPublicUpdate(next, body, clock_.WallNow());
    const bool paid = !next.product->free();
    if (!next.customer_id && !next.customer_email)
      errors.Add(Loc({"body", "customer_email"}), "missing", "Field required",
                 nullptr);
    if (paid || next.require_billing_address || next.is_business_customer) {
      if (next.customer_billing_address.is_null()) {
        errors.Add(Loc({"body", "customer_billing_address"}), "missing",
                   "Field required", nullptr);
      } else if (next.customer_billing_address.value("country", "") == "US") {
        // A full address is always required in the US.
        for (const char* f : {"line1", "postal_code", "city", "state"}) {
          if (!next.customer_billing_address.value(f, json()).is_string())
            errors.Add(Loc({"body", "customer_billing_address", f}), "missing",
                       "Field required", nullptr);
        }
      }
    }
    if (next.is_business_customer && !next.customer_billing_name)
      errors.Add(Loc({"body", "customer_billing_name"}), "missing",
                 "Field required", nullptr);
    if (paid && !OptString(body.value("confirmation_token_id", json())))
      errors.Add(Loc({"body", "confirmation_token_id"}), "missing",
                 "Confirmation token is required.", nullptr);
    if (!errors.empty()) return errors.Response("PolarRequestValidationError");
    *c = std::move(next);
    // Hold the row while "Stripe" works; FinishConfirm releases it.
    ++c->lock_holders;
    id = c->id;
    hold = options_.confirm_time.Sample(rng_);
  }
  SimResponse r;
  r.hold_until = clock_.Now() + hold;
  r.finish = [this, id] { return FinishConfirm(id); };
  return r;
}

SimResponse CheckoutsApi::FinishConfirm(const std::string& id) {
  json full, confirmed, customer_json;
  std::string secret;
  bool free = true;
  bool new_customer = false;
  {
    std::lock_guard lock(mutex_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return ResourceNotFound();
    Checkout& c = *it->second;
    --c.lock_holders;
    if (c.status != CheckoutStatus::kOpen) return NotOpen(c);
    std::optional<Customer> customer;
    if (c.customer_id) customer = customers_->ById(*c.customer_id);
    if (!customer) {
      // Matched by email, otherwise created with the external id.
      customer = customers_->GetOrCreate(
          c.customer_email.value_or(""), c.customer_name,
          c.external_customer_id, c.customer_billing_address, org_.id,
          &new_customer);
    }
    c.customer_id = customer->id;
    c.customer_session_token =
        new_customer ? std::optional<std::string>(RandomToken("polar_cst_", 43))
                     : std::nullopt;
    free = c.product->free();
    if (!free) {
      c.payment_processor_metadata["customer_id"] = RandomToken("cus_", 14);
      c.payment_processor_metadata["intent_client_secret"] =
          RandomToken("pi_", 24) + "_secret_" + RandomToken("", 25);
      c.payment_processor_metadata["intent_status"] = "succeeded";
    }
    c.status = CheckoutStatus::kConfirmed;
    c.modified_at = clock_.WallNow();
    full = CheckoutJson(c, org_, CheckoutView::kFull);
    confirmed = CheckoutJson(c, org_, CheckoutView::kPublicConfirmed);
    secret = c.client_secret;
    if (new_customer) customer_json = CustomerJson(*customer);
  }
  if (new_customer) webhooks_->Send("customer.created", customer_json);
  Publish(secret, "checkout.updated",
          StatusPayload(CheckoutStatus::kConfirmed));
  SendCheckoutUpdated(id, full, secret);
  auto job = [this, id](JobContext& ctx) { return HandleSuccess(id, ctx); };
  if (free) {
    worker_->Enqueue(kQueueHigh, "checkout.handle_free_success", job);
  } else {
    Duration delay;
    {
      std::lock_guard lock(mutex_);
      delay = options_.stripe_delay.Sample(rng_);
    }
    worker_->Enqueue(kQueueHigh, "stripe.webhook.charge.succeeded", job, delay);
  }
  return Json(200, confirmed);
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
  SimResponse r;
  r.content_type = "text/event-stream; charset=utf-8";
  r.headers = {{"Cache-Control", "no-store"},
               {"Connection", "keep-alive"},
               {"X-Accel-Buffering", "no"}};
  r.stream = std::move(stream);
  return r;
}

}  // namespace polar::sim
