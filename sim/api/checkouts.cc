#include "sim/api/checkouts.h"

#include <algorithm>

#include "sim/api/checkout_fields.h"
#include "sim/api/io.h"
#include "sim/api/validation.h"

namespace polar::sim {
namespace {

// The expiry cron runs at minutes 0, 15, 30 and 45
// (checkout.expire_open_checkouts).
constexpr auto kSweepInterval = std::chrono::minutes(15);

}  // namespace

CheckoutsApi::CheckoutsApi(const CheckoutOptions& options,
                           const Organization& org,
                           std::vector<const Product*> products,
                           CustomerStore* customers, Worker* worker,
                           WebhookService* webhooks, TimerThread* timer,
                           prometheus::Registry& registry)
    : options_(options),
      org_(org),
      products_(std::move(products)),
      customers_(customers),
      worker_(worker),
      webhooks_(webhooks),
      timer_(timer),
      clock_(timer->clock()),
      created_(&prometheus::BuildCounter()
                    .Name("polar_checkout_created_total")
                    .Help("Checkouts created.")
                    .Register(registry)
                    .Add({})),
      succeeded_(&prometheus::BuildCounter()
                      .Name("polar_checkout_succeeded_total")
                      .Help("Checkouts that reached succeeded.")
                      .Register(registry)
                      .Add({})),
      by_status_(prometheus::BuildGauge()
                     .Name("polar_sim_checkouts")
                     .Help("Checkouts held in memory by status.")
                     .Register(registry)),
      streams_open_(&prometheus::BuildGauge()
                         .Name("polar_sim_checkout_streams")
                         .Help("Open checkout SSE streams.")
                         .Register(registry)
                         .Add({})) {}

const Product* CheckoutsApi::FindProduct(const std::string& id) const {
  for (const Product* p : products_)
    if (p->id == id) return p;
  return nullptr;
}

const Product* CheckoutsApi::FindProductByPrice(
    const std::string& price_id) const {
  for (const Product* p : products_)
    if (p->price_id == price_id) return p;
  return nullptr;
}

Checkout* CheckoutsApi::FindBySecretLocked(const std::string& secret) {
  auto it = by_secret_.find(secret);
  if (it == by_secret_.end()) return nullptr;
  auto c = by_id_.find(it->second);
  return c == by_id_.end() ? nullptr : c->second.get();
}

void CheckoutsApi::EvictLocked() {
  while (by_id_.size() > options_.max_checkouts && !order_.empty()) {
    auto it = by_id_.find(order_.front());
    order_.pop_front();
    if (it == by_id_.end()) continue;
    // A locked checkout has work in flight; keep it and evict the next one.
    if (it->second->lock_holders > 0) {
      order_.push_back(it->first);
      continue;
    }
    by_secret_.erase(it->second->client_secret);
    replica_.erase(it->first);
    by_id_.erase(it);
  }
}

void CheckoutsApi::ReplicateLocked(const Checkout& c) {
  if (!replicated()) return;
  const SteadyTime now = clock_.Now();
  auto& versions = replica_[c.id];
  // Replication applies writes in order: a write never shows before an
  // earlier one.
  SteadyTime at = now + options_.replica_lag.Sample(rng_);
  if (!versions.empty()) at = std::max(at, versions.back().visible_at);
  versions.push_back({at, CheckoutJson(c, org_, CheckoutView::kFull)});
  // Keep the newest version the replica shows and the ones it will.
  while (versions.size() >= 2 && versions[1].visible_at <= now)
    versions.pop_front();
}

const json* CheckoutsApi::ReplicaLocked(const std::string& id) const {
  auto it = replica_.find(id);
  if (it == replica_.end()) return nullptr;
  const SteadyTime now = clock_.Now();
  const json* shown = nullptr;
  for (const ReplicaVersion& v : it->second) {
    if (v.visible_at > now) break;
    shown = &v.full;
  }
  return shown;
}

std::string CheckoutsApi::IssueConfirmationToken() {
  std::string token = RandomToken("ctoken_", 24);
  std::lock_guard lock(mutex_);
  confirmation_tokens_.insert(token);
  confirmation_token_order_.push_back(token);
  while (confirmation_token_order_.size() > 10'000) {
    confirmation_tokens_.erase(confirmation_token_order_.front());
    confirmation_token_order_.pop_front();
  }
  return token;
}

std::size_t CheckoutsApi::size() const {
  std::lock_guard lock(mutex_);
  return by_id_.size();
}

void CheckoutsApi::Publish(const std::string& secret, const std::string& key,
                           const json& payload) {
  // polar.eventstream.service.Event: {"id","key","payload"}, one SSE data line.
  std::string frame =
      "data: " +
      json{{"id", NewId()}, {"key", key}, {"payload", payload}}.dump(
          -1, ' ', false, nlohmann::json::error_handler_t::replace) +
      "\r\n\r\n";
  std::vector<std::shared_ptr<SseStream>> targets;
  {
    std::lock_guard lock(streams_mutex_);
    auto it = streams_.find(secret);
    if (it == streams_.end()) return;
    auto& list = it->second;
    for (auto w = list.begin(); w != list.end();) {
      if (auto s = w->lock(); s && s->alive()) {
        targets.push_back(std::move(s));
        ++w;
      } else {
        w = list.erase(w);
      }
    }
    if (list.empty()) streams_.erase(it);
  }
  for (auto& s : targets) s->Push(frame);
}

void CheckoutsApi::SendCheckoutUpdated(const std::string& id, const json& full,
                                       const std::string& secret) {
  // checkout.webhook_event_delivered fires when the merchant's raw
  // checkout.updated webhook got through, with the status at that time.
  webhooks_->Send("checkout.updated", full, [this, id, secret] {
    CheckoutStatus status;
    {
      std::lock_guard lock(mutex_);
      auto it = by_id_.find(id);
      if (it == by_id_.end()) return;
      status = it->second->status;
    }
    Publish(secret, "checkout.webhook_event_delivered", StatusPayload(status));
  });
}

SimResponse CheckoutsApi::Create(const SimRequest& request) {
  json body;
  if (auto error = ReadObject(request, &body)) return *error;
  ValidationErrors errors;
  // CheckoutCreate is a union tried in order: products, product_id (the
  // deprecated form the Locust suite uses), product_price_id.
  std::vector<std::string> wanted;
  json product_loc;
  bool by_price = false;
  if (auto it = body.find("products"); it != body.end()) {
    if (!it->is_array()) {
      errors.Add(Loc({"body", "products"}), "list_type",
                 "Input should be a valid list", *it);
    } else if (it->empty()) {
      errors.Add(
          Loc({"body", "products"}), "too_short",
          "List should have at least 1 item after validation, not 0", *it,
          {{"field_type", "List"}, {"min_length", 1}, {"actual_length", 0}});
    } else {
      for (std::size_t i = 0; i < it->size(); ++i) {
        const json& v = (*it)[i];
        if (!v.is_string() || !IsUuid(v.get_ref<const std::string&>())) {
          errors.Add(Loc({"body", "products", i}), "uuid_parsing",
                     "Input should be a valid UUID", v);
        } else if (std::find(wanted.begin(), wanted.end(),
                             v.get<std::string>()) != wanted.end()) {
          errors.Add(Loc({"body", "products"}), "value_error",
                     "Value error, List items must be unique", *it);
        } else {
          wanted.push_back(v.get<std::string>());
        }
      }
    }
    product_loc = Loc({"body", "products", 0});
  } else if (body.contains("product_id")) {
    if (errors.OptUuid(body, "product_id", Loc({"body"})))
      wanted.push_back(body["product_id"].get<std::string>());
    else if (body["product_id"].is_null())
      errors.Add(Loc({"body", "product_id"}), "uuid_type",
                 "UUID input should be a string, bytes or UUID object",
                 nullptr);
    product_loc = Loc({"body", "product_id"});
  } else if (body.contains("product_price_id")) {
    if (errors.OptUuid(body, "product_price_id", Loc({"body"})))
      wanted.push_back(body["product_price_id"].get<std::string>());
    else if (body["product_price_id"].is_null())
      errors.Add(Loc({"body", "product_price_id"}), "uuid_type",
                 "UUID input should be a string, bytes or UUID object",
                 nullptr);
    product_loc = Loc({"body", "product_price_id"});
    by_price = true;
  } else {
    errors.Missing(body, "products", Loc({"body", "CheckoutProductsCreate"}));
    errors.Missing(body, "product_id", Loc({"body", "CheckoutProductCreate"}));
    errors.Missing(body, "product_price_id",
                   Loc({"body", "CheckoutPriceCreate"}));
  }
  ValidateCreateFields(body, errors);
  if (!errors.empty()) return errors.Response();

  // The service's checks.
  std::vector<const Product*> products;
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const Product* p =
        by_price ? FindProductByPrice(wanted[i]) : FindProduct(wanted[i]);
    if (!p) {
      json loc = body.contains("products") ? Loc({"body", "products", i})
                                           : product_loc;
      errors.Add(loc, "value_error",
                 by_price ? "Price does not exist." : "Product does not exist.",
                 wanted[i]);
    } else {
      products.push_back(p);
    }
  }
  std::optional<Customer> customer;
  if (auto id = OptString(body.value("customer_id", json()))) {
    customer = customers_->ById(*id);
    if (!customer)
      errors.Add(Loc({"body", "customer_id"}), "value_error",
                 "Customer does not exist.", *id);
  }
  std::optional<std::string> external =
      OptString(body.value("external_customer_id", json()));
  if (!external)
    external = OptString(body.value("customer_external_id", json()));
  if (!customer && external) customer = customers_->ByExternalId(*external);
  if (body.contains("seats") && !body["seats"].is_null()) {
    errors.Add(Loc({"body", "seats"}), "value_error",
               "Seats are only supported for seat-based pricing.",
               body["seats"]);
  }
  if (auto d = OptString(body.value("discount_id", json())))
    errors.Add(Loc({"body", "discount_id"}), "value_error",
               "Discount does not exist.", *d);
  if (auto s = OptString(body.value("subscription_id", json())))
    errors.Add(Loc({"body", "subscription_id"}), "value_error",
               "Subscription does not exist.", *s);
  if (OptString(body.value("customer_tax_id", json())) &&
      body.value("customer_billing_address", json()).is_null()) {
    errors.Add(Loc({"body", "customer_tax_id"}), "value_error",
               "Country is required to validate tax ID.",
               body["customer_tax_id"]);
  }
  if (!errors.empty()) return errors.Response("PolarRequestValidationError");

  auto c = std::make_unique<Checkout>();
  c->id = NewId();
  c->client_secret = NewToken("polar_c_");
  c->created_at = clock_.WallNow();
  c->expires_at =
      c->created_at +
      std::chrono::duration_cast<std::chrono::microseconds>(options_.ttl);
  c->products = products;
  c->product = products.front();
  c->external_customer_id = external;
  if (customer) {
    c->customer_id = customer->id;
    c->customer_email = customer->email;
    c->customer_name = customer->name;
  }
  if (auto v = OptString(body.value("customer_email", json())))
    c->customer_email = v;
  if (auto v = OptString(body.value("customer_name", json())))
    c->customer_name = v;
  c->customer_billing_name =
      OptString(body.value("customer_billing_name", json()));
  if (const json& a = body.value("customer_billing_address", json());
      a.is_object())
    c->customer_billing_address = NormalizeAddress(a);
  c->customer_tax_id = OptString(body.value("customer_tax_id", json()));
  c->customer_ip_address = OptString(body.value("customer_ip_address", json()));
  c->is_business_customer = body.value("is_business_customer", false);
  c->allow_discount_codes = body.value("allow_discount_codes", true);
  c->require_billing_address = body.value("require_billing_address", false);
  c->allow_trial = body.value("allow_trial", true);
  c->locale = OptString(body.value("locale", json()));
  c->success_url = OptString(body.value("success_url", json()));
  c->return_url = OptString(body.value("return_url", json()));
  c->embed_origin = OptString(body.value("embed_origin", json()));
  if (body.contains("metadata") && body["metadata"].is_object())
    c->metadata = body["metadata"];
  if (body.contains("customer_metadata") &&
      body["customer_metadata"].is_object())
    c->customer_metadata = body["customer_metadata"];
  if (body.contains("custom_field_data") &&
      body["custom_field_data"].is_object())
    c->custom_field_data = body["custom_field_data"];
  c->payment_processor_metadata = {{"publishable_key", "pk_test_polarsim"}};
  json full = CheckoutJson(*c, org_, CheckoutView::kFull);
  {
    std::lock_guard lock(mutex_);
    by_secret_[c->client_secret] = c->id;
    order_.push_back(c->id);
    ReplicateLocked(*c);
    by_id_[c->id] = std::move(c);
    EvictLocked();
  }
  created_->Increment();
  webhooks_->Send("checkout.created", full);
  return Json(201, full);
}

SimResponse CheckoutsApi::List(const SimRequest& request) {
  PageQuery q;
  if (auto error = ReadPage(request, &q)) return *error;
  auto product_ids = request.QueryAll("product_id");
  auto customer_ids = request.QueryAll("customer_id");
  auto external_ids = request.QueryAll("external_customer_id");
  auto statuses = request.QueryAll("status");
  const std::string* query = request.Query("query");
  auto any = [](const std::vector<std::string>& wanted,
                const std::optional<std::string>& v) {
    return wanted.empty() ||
           (v && std::find(wanted.begin(), wanted.end(), *v) != wanted.end());
  };
  auto matches = [&](const std::optional<std::string>& product,
                     const std::optional<std::string>& customer,
                     const std::optional<std::string>& external,
                     const std::optional<std::string>& status,
                     const std::optional<std::string>& email) {
    return any(product_ids, product) && any(customer_ids, customer) &&
           any(external_ids, external) && any(statuses, status) &&
           (!query || (email && email->find(*query) != std::string::npos));
  };
  auto str = [](const json& v) {
    return v.is_string() ? std::optional<std::string>(v.get<std::string>())
                         : std::nullopt;
  };
  std::lock_guard lock(mutex_);
  // Newest first (default sorting -created_at). get_db_read_session: with
  // replication modelled, the rows and values the replica shows.
  std::vector<const Checkout*> hits;
  std::vector<const json*> shown_hits;
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    auto c = by_id_.find(*it);
    if (c == by_id_.end()) continue;
    if (replicated()) {
      const json* shown = ReplicaLocked(*it);
      if (shown &&
          matches(str((*shown)["product_id"]), str((*shown)["customer_id"]),
                  str((*shown)["external_customer_id"]),
                  str((*shown)["status"]), str((*shown)["customer_email"])))
        shown_hits.push_back(shown);
      continue;
    }
    const Checkout& k = *c->second;
    if (matches(k.product->id, k.customer_id, k.external_customer_id,
                std::string(ToString(k.status)), k.customer_email))
      hits.push_back(&k);
  }
  const std::size_t total = replicated() ? shown_hits.size() : hits.size();
  json items = json::array();
  const PageRange range = PageOf(q.page, q.limit, total);
  for (std::size_t i = range.begin; i < range.end; ++i) {
    items.push_back(replicated()
                        ? *shown_hits[i]
                        : CheckoutJson(*hits[i], org_, CheckoutView::kFull));
  }
  return ListResponse(std::move(items), static_cast<int64_t>(total), q.limit);
}

SimResponse CheckoutsApi::Get(const std::string& id) {
  if (!IsUuid(id)) return PathUuidError("id", id);
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return ResourceNotFound();
  // get_db_read_session: just after create the replica may not have the row
  // (404), just after confirm it may still say open.
  if (replicated()) {
    const json* shown = ReplicaLocked(id);
    return shown ? Json(200, *shown) : ResourceNotFound();
  }
  return Json(200, CheckoutJson(*it->second, org_, CheckoutView::kFull));
}

SimResponse CheckoutsApi::Update(const SimRequest& request,
                                 const std::string& id) {
  if (!IsUuid(id)) return PathUuidError("id", id);
  json body;
  if (auto error = ReadObject(request, &body)) return *error;
  ValidationErrors errors;
  ValidatePublicUpdate(body, errors);
  errors.OptMetadata(body, "metadata", Loc({"body"}));
  errors.OptMetadata(body, "customer_metadata", Loc({"body"}));
  if (!errors.empty()) return errors.Response();
  json full;
  std::string secret;
  {
    std::lock_guard lock(mutex_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return ResourceNotFound();
    Checkout& c = *it->second;
    if (c.lock_holders > 0) return Locked();
    if (c.status == CheckoutStatus::kOpen && c.expires_at < clock_.WallNow()) {
      c.status = CheckoutStatus::kExpired;
      ReplicateLocked(c);
    }
    if (c.status != CheckoutStatus::kOpen) return NotOpen(c);
    CheckProductChoice(c, body, errors);
    if (!errors.empty()) return errors.Response("PolarRequestValidationError");
    ApplyPublicUpdate(c, body, clock_.WallNow());
    if (body.contains("metadata") && body["metadata"].is_object())
      c.metadata = body["metadata"];
    if (body.contains("customer_metadata") &&
        body["customer_metadata"].is_object())
      c.customer_metadata = body["customer_metadata"];
    ReplicateLocked(c);
    full = CheckoutJson(c, org_, CheckoutView::kFull);
    secret = c.client_secret;
  }
  Publish(secret, "checkout.updated", StatusPayload(CheckoutStatus::kOpen));
  SendCheckoutUpdated(id, full, secret);
  return Json(200, full);
}

void CheckoutsApi::StartSweeper() {
  timer_->After(options_.scale(kSweepInterval), [this] {
    SweepExpired();
    StartSweeper();
  });
}

void CheckoutsApi::SweepExpired() {
  std::vector<json> expired;
  {
    std::lock_guard lock(mutex_);
    auto now = clock_.WallNow();
    for (auto& [id, c] : by_id_) {
      if (c->status == CheckoutStatus::kOpen && c->expires_at < now &&
          c->lock_holders == 0) {
        c->status = CheckoutStatus::kExpired;
        c->modified_at = now;
        ReplicateLocked(*c);
        expired.push_back(CheckoutJson(*c, org_, CheckoutView::kFull));
      }
    }
  }
  for (auto& full : expired) {
    worker_->Enqueue(kQueueHigh, "checkout.expired",
                     [this, full = std::move(full)](JobContext& ctx) {
                       ctx.Work();
                       webhooks_->Send("checkout.expired", full);
                       return JobResult::Done();
                     });
  }
}

void CheckoutsApi::UpdateGauges() {
  std::size_t open = 0, confirmed = 0, succeeded = 0, expired = 0;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, c] : by_id_) {
      switch (c->status) {
        case CheckoutStatus::kOpen:
          ++open;
          break;
        case CheckoutStatus::kConfirmed:
          ++confirmed;
          break;
        case CheckoutStatus::kSucceeded:
          ++succeeded;
          break;
        default:
          ++expired;
      }
    }
  }
  by_status_.Add({{"status", "open"}}).Set(static_cast<double>(open));
  by_status_.Add({{"status", "confirmed"}}).Set(static_cast<double>(confirmed));
  by_status_.Add({{"status", "succeeded"}}).Set(static_cast<double>(succeeded));
  by_status_.Add({{"status", "expired"}}).Set(static_cast<double>(expired));
  streams_open_->Set(static_cast<double>(live_streams_->load()));
}

}  // namespace polar::sim
