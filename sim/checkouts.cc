#include "sim/checkouts.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>

#include "sim/validation.h"

namespace polar::sim {
namespace {

// The expiry cron runs at minutes 0, 15, 30 and 45
// (checkout.expire_open_checkouts).
constexpr auto kSweepInterval = std::chrono::minutes(15);

SimResponse Expired() {
  return JsonError(410, "ExpiredCheckoutError",
                   "This checkout session has expired.");
}
SimResponse Locked() {
  return JsonError(409, "CheckoutLocked",
                   "Checkout is currently being processed. Please try again.");
}
SimResponse NotOpen(const Checkout& c) {
  return JsonError(403, "NotOpenCheckout",
                   "Checkout " + c.id + " is not open: " + ToString(c.status));
}

SimResponse ObjectExpected(const json& body) {
  ValidationErrors e;
  e.Add(Loc({"body"}), "model_attributes_type",
        "Input should be a valid dictionary or object to extract fields from",
        body);
  return e.Response();
}

SimResponse Json(int status, const json& body) {
  SimResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

bool IsIp(const std::string& s) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, s.c_str(), &a4) == 1 ||
         inet_pton(AF_INET6, s.c_str(), &a6) == 1;
}

// CheckoutCreateBase's optional fields (the products/product_id/price part is
// checked by Create itself).
void ValidateCreateFields(const json& b, ValidationErrors& e) {
  const json loc = Loc({"body"});
  e.OptEmail(b, "customer_email", loc);
  e.OptString(b, "customer_name", loc, 256);
  e.OptUuid(b, "customer_id", loc);
  e.OptString(b, "external_customer_id", loc);
  e.OptString(b, "customer_external_id", loc);
  e.OptString(b, "customer_billing_name", loc);
  e.OptAddress(b, "customer_billing_address", loc);
  e.OptString(b, "customer_tax_id", loc);
  if (e.OptString(b, "customer_ip_address", loc) &&
      !IsIp(b["customer_ip_address"].get<std::string>())) {
    e.Add(Loc({"body", "customer_ip_address"}), "ip_any_address",
          "value is not a valid IPv4 or IPv6 address",
          b["customer_ip_address"]);
  }
  e.OptMetadata(b, "metadata", loc);
  e.OptMetadata(b, "customer_metadata", loc);
  for (const char* f : {"is_business_customer", "allow_discount_codes",
                        "require_billing_address", "allow_trial"})
    e.OptBool(b, f, loc);
  e.OptInt(b, "amount", loc, 0);
  for (const char* f : {"seats", "min_seats", "max_seats"})
    e.OptInt(b, f, loc, 1, 10000);
  e.OptInt(b, "trial_interval_count", loc, 1, 1000);
  e.OptString(b, "success_url", loc, 2083, 1);
  e.OptString(b, "return_url", loc, 2083, 1);
  e.OptString(b, "embed_origin", loc);
  e.OptString(b, "locale", loc);
  e.OptString(b, "currency", loc);
  e.OptUuid(b, "discount_id", loc);
  e.OptUuid(b, "subscription_id", loc);
}

json StatusPayload(CheckoutStatus s) { return {{"status", ToString(s)}}; }

}  // namespace

CheckoutsApi::CheckoutsApi(const CheckoutOptions& options,
                           const Organization& org,
                           std::vector<const Product*> products,
                           CustomerStore* customers, Worker* worker,
                           WebhookService* webhooks, TimerThread* timer)
    : options_(options),
      org_(org),
      products_(std::move(products)),
      customers_(customers),
      worker_(worker),
      webhooks_(webhooks),
      timer_(timer) {}

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
    by_id_.erase(it);
  }
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
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) return JsonDecodeError("Expecting value");
  if (!body.is_object()) return ObjectExpected(body);
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
  c->client_secret = RandomToken("polar_c_", 43);
  c->created_at = NowMicros();
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
  c->customer_billing_address = body.value("customer_billing_address", json());
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
    by_id_[c->id] = std::move(c);
    EvictLocked();
  }
  ++created_;
  webhooks_->Send("checkout.created", full);
  return Json(201, full);
}

SimResponse CheckoutsApi::List(const SimRequest& request) {
  int64_t page = 1, limit = 10;
  ValidationErrors errors;
  for (auto [name, out] :
       {std::pair<const char*, int64_t*>{"page", &page}, {"limit", &limit}}) {
    if (const std::string* v = request.Query(name)) {
      char* end = nullptr;
      long long n = std::strtoll(v->c_str(), &end, 10);
      if (end == v->c_str() || *end || n <= 0) {
        errors.Add(Loc({"query", name}), "greater_than",
                   "Input should be greater than 0", *v, {{"gt", 0}});
      } else {
        *out = n;
      }
    }
  }
  if (!errors.empty()) return errors.Response();
  limit = std::min(limit, kMaxPageLimit);
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
  std::lock_guard lock(mutex_);
  std::vector<const Checkout*> hits;
  // Newest first (default sorting -created_at).
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    auto c = by_id_.find(*it);
    if (c == by_id_.end()) continue;
    const Checkout& k = *c->second;
    if (!any(product_ids, k.product->id)) continue;
    if (!any(customer_ids, k.customer_id)) continue;
    if (!any(external_ids, k.external_customer_id)) continue;
    if (!any(statuses, std::string(ToString(k.status)))) continue;
    if (query && (!k.customer_email ||
                  k.customer_email->find(*query) == std::string::npos))
      continue;
    hits.push_back(&k);
  }
  json items = json::array();
  const PageRange range = PageOf(page, limit, hits.size());
  for (std::size_t i = range.begin; i < range.end; ++i)
    items.push_back(CheckoutJson(*hits[i], org_, CheckoutView::kFull));
  int64_t total = static_cast<int64_t>(hits.size());
  return Json(
      200,
      {{"items", std::move(items)},
       {"pagination",
        {{"total_count", total}, {"max_page", (total + limit - 1) / limit}}}});
}

SimResponse CheckoutsApi::Get(const std::string& id) {
  if (!IsUuid(id)) {
    ValidationErrors e;
    e.Add(Loc({"path", "id"}), "uuid_parsing", "Input should be a valid UUID",
          id);
    return e.Response();
  }
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return ResourceNotFound();
  return Json(200, CheckoutJson(*it->second, org_, CheckoutView::kFull));
}

void CheckoutsApi::ValidatePublicUpdate(const json& b,
                                        ValidationErrors& e) const {
  const json loc = Loc({"body"});
  e.OptUuid(b, "product_id", loc);
  e.OptUuid(b, "product_price_id", loc);
  e.OptInt(b, "amount", loc, 0);
  e.OptInt(b, "seats", loc, 1, 10000);
  e.OptBool(b, "is_business_customer", loc);
  e.OptString(b, "customer_name", loc, 256);
  e.OptEmail(b, "customer_email", loc);
  e.OptString(b, "customer_billing_name", loc);
  e.OptAddress(b, "customer_billing_address", loc);
  e.OptString(b, "customer_tax_id", loc);
  e.OptString(b, "locale", loc);
  e.OptString(b, "payment_method_type", loc);
  e.OptString(b, "discount_code", loc);
  if (e.OptBool(b, "allow_trial", loc) && b["allow_trial"].get<bool>()) {
    e.Add(Loc({"body", "allow_trial"}), "literal_error",
          "Input should be False", b["allow_trial"], {{"expected", "False"}});
  }
  if (auto it = b.find("custom_field_data");
      it != b.end() && !it->is_null() && !it->is_object()) {
    e.Add(Loc({"body", "custom_field_data"}), "dict_type",
          "Input should be a valid dictionary", *it);
  }
}

void CheckoutsApi::ApplyPublicUpdate(Checkout& c, const json& b) const {
  // Only keys present in the body change; unknown keys are ignored (Polar's
  // schemas allow extras), so {"customer": {...}} is a no-op update.
  auto set = [&](const char* key, std::optional<std::string>& field) {
    if (b.contains(key)) field = OptString(b[key]);
  };
  set("customer_name", c.customer_name);
  set("customer_email", c.customer_email);
  set("customer_billing_name", c.customer_billing_name);
  set("customer_tax_id", c.customer_tax_id);
  set("locale", c.locale);
  set("payment_method_type", c.payment_method_type);
  if (b.contains("customer_billing_address"))
    c.customer_billing_address = b["customer_billing_address"];
  if (b.contains("is_business_customer") &&
      b["is_business_customer"].is_boolean())
    c.is_business_customer = b["is_business_customer"].get<bool>();
  if (b.contains("allow_trial") && b["allow_trial"].is_boolean())
    c.allow_trial = false;
  if (b.contains("custom_field_data") && b["custom_field_data"].is_object())
    c.custom_field_data = b["custom_field_data"];
  if (auto id = OptString(b.value("product_id", json()))) {
    for (const Product* p : c.products)
      if (p->id == *id) c.product = p;
  }
  if (auto id = OptString(b.value("product_price_id", json()))) {
    for (const Product* p : c.products)
      if (p->price_id == *id) c.product = p;
  }
  c.modified_at = NowMicros();
}

namespace {

// Product choices a checkout does not offer: the service's 422.
void CheckProductChoice(const Checkout& c, const json& b, ValidationErrors& e) {
  if (auto id = OptString(b.value("product_id", json()))) {
    bool ok = std::any_of(c.products.begin(), c.products.end(),
                          [&](const Product* p) { return p->id == *id; });
    if (!ok)
      e.Add(Loc({"body", "product_id"}), "value_error",
            "Product is not available in this checkout.", *id);
  }
  if (auto id = OptString(b.value("product_price_id", json()))) {
    bool ok = std::any_of(c.products.begin(), c.products.end(),
                          [&](const Product* p) { return p->price_id == *id; });
    if (!ok)
      e.Add(Loc({"body", "product_price_id"}), "value_error",
            "Price is not available in this checkout.", *id);
  }
  if (b.contains("seats") && !b["seats"].is_null())
    e.Add(Loc({"body", "seats"}), "value_error",
          "Seats are only supported for seat-based pricing.", b["seats"]);
  if (auto code = OptString(b.value("discount_code", json())))
    e.Add(Loc({"body", "discount_code"}), "value_error",
          "Discount code not found.", *code);
}

}  // namespace

SimResponse CheckoutsApi::Update(const SimRequest& request,
                                 const std::string& id) {
  if (!IsUuid(id)) {
    ValidationErrors e;
    e.Add(Loc({"path", "id"}), "uuid_parsing", "Input should be a valid UUID",
          id);
    return e.Response();
  }
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) return JsonDecodeError("Expecting value");
  if (!body.is_object()) return ObjectExpected(body);
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
    if (c.status == CheckoutStatus::kOpen && c.expires_at < NowMicros())
      c.status = CheckoutStatus::kExpired;
    if (c.status != CheckoutStatus::kOpen) return NotOpen(c);
    CheckProductChoice(c, body, errors);
    if (!errors.empty()) return errors.Response("PolarRequestValidationError");
    ApplyPublicUpdate(c, body);
    if (body.contains("metadata") && body["metadata"].is_object())
      c.metadata = body["metadata"];
    if (body.contains("customer_metadata") &&
        body["customer_metadata"].is_object())
      c.customer_metadata = body["customer_metadata"];
    full = CheckoutJson(c, org_, CheckoutView::kFull);
    secret = c.client_secret;
  }
  Publish(secret, "checkout.updated", StatusPayload(CheckoutStatus::kOpen));
  SendCheckoutUpdated(id, full, secret);
  return Json(200, full);
}

SimResponse CheckoutsApi::ClientGet(const std::string& secret) {
  std::lock_guard lock(mutex_);
  Checkout* c = FindBySecretLocked(secret);
  if (!c) return ResourceNotFound();
  // get_by_client_secret refuses anything past expires_at, whatever its status.
  if (c->expires_at < NowMicros()) {
    if (c->status == CheckoutStatus::kOpen)
      c->status = CheckoutStatus::kExpired;
    return Expired();
  }
  return Json(200, CheckoutJson(*c, org_, CheckoutView::kPublic));
}

SimResponse CheckoutsApi::ClientUpdate(const SimRequest& request,
                                       const std::string& secret) {
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) return JsonDecodeError("Expecting value");
  if (!body.is_object()) return ObjectExpected(body);
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
    if (c->expires_at < NowMicros()) {
      if (c->status == CheckoutStatus::kOpen)
        c->status = CheckoutStatus::kExpired;
      return Expired();
    }
    if (c->status != CheckoutStatus::kOpen) return NotOpen(*c);
    CheckProductChoice(*c, body, errors);
    if (!errors.empty()) return errors.Response("PolarRequestValidationError");
    ApplyPublicUpdate(*c, body);
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
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) return JsonDecodeError("Expecting value");
  if (!body.is_object()) return ObjectExpected(body);
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
    if (c->expires_at < NowMicros()) {
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
    ApplyPublicUpdate(next, body);
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
  r.hold_until = SteadyClock::now() + hold;
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
    c.modified_at = NowMicros();
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
    o.created_at = NowMicros();
    o.checkout_id = c.id;
    o.amount = c.product->price_amount * c.seats.value_or(1);
    o.currency = c.product->currency;
    order_json = OrderJson(o, c, *customer);
    c.status = CheckoutStatus::kSucceeded;
    c.modified_at = NowMicros();
    full = CheckoutJson(c, org_, CheckoutView::kFull);
    secret = c.client_secret;
  }
  ++orders_;
  ++succeeded_;
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
    if (c->expires_at < NowMicros()) return Expired();
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
    std::string ts = FormatTimestamp(NowMicros());
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
    auto now = NowMicros();
    for (auto& [id, c] : by_id_) {
      if (c->status == CheckoutStatus::kOpen && c->expires_at < now &&
          c->lock_holders == 0) {
        c->status = CheckoutStatus::kExpired;
        c->modified_at = now;
        expired.push_back(CheckoutJson(*c, org_, CheckoutView::kFull));
      }
    }
  }
  expired_ += expired.size();
  for (auto& full : expired) {
    worker_->Enqueue(kQueueHigh, "checkout.expired",
                     [this, full = std::move(full)](JobContext& ctx) {
                       ctx.Work();
                       webhooks_->Send("checkout.expired", full);
                       return JobResult::Done();
                     });
  }
}

void CheckoutsApi::AppendMetrics(std::string* out) const {
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
  *out +=
      "# HELP polar_checkout_created_total Checkouts created.\n"
      "# TYPE polar_checkout_created_total counter\n";
  *out += fmt::format("polar_checkout_created_total {}\n", created_.load());
  *out +=
      "# HELP polar_checkout_succeeded_total Checkouts that reached "
      "succeeded.\n# TYPE polar_checkout_succeeded_total counter\n";
  *out += fmt::format("polar_checkout_succeeded_total {}\n", succeeded_.load());
  *out +=
      "# HELP polar_sim_checkouts Checkouts held in memory by status.\n"
      "# TYPE polar_sim_checkouts gauge\n";
  *out += fmt::format("polar_sim_checkouts{{status=\"open\"}} {}\n", open);
  *out += fmt::format("polar_sim_checkouts{{status=\"confirmed\"}} {}\n",
                      confirmed);
  *out += fmt::format("polar_sim_checkouts{{status=\"succeeded\"}} {}\n",
                      succeeded);
  *out +=
      fmt::format("polar_sim_checkouts{{status=\"expired\"}} {}\n", expired);
  *out +=
      "# HELP polar_sim_checkout_streams Open checkout SSE streams.\n"
      "# TYPE polar_sim_checkout_streams gauge\n";
  *out += fmt::format("polar_sim_checkout_streams {}\n", live_streams_->load());
}

}  // namespace polar::sim
