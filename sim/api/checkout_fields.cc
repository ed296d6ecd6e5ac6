// Checkout fields: the schema checks of CheckoutCreate and
// CheckoutUpdatePublic, applying an update, and the checkout errors the routes
// share.
#include "sim/api/checkout_fields.h"

#include <arpa/inet.h>

#include <algorithm>

#include "sim/api/checkouts.h"

namespace polar::sim {
namespace {

bool IsIp(const std::string& s) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, s.c_str(), &a4) == 1 ||
         inet_pton(AF_INET6, s.c_str(), &a6) == 1;
}

// CheckoutCreateBase's optional fields (the products/product_id/price part is

}  // namespace

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

json StatusPayload(CheckoutStatus s) { return {{"status", ToString(s)}}; }

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

void ValidatePublicUpdate(const json& b, ValidationErrors& e) {
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

void ApplyPublicUpdate(Checkout& c, const json& b, SysMicros now) {
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
  if (b.contains("customer_billing_address")) {
    const json& a = b["customer_billing_address"];
    c.customer_billing_address = a.is_object() ? NormalizeAddress(a) : json();
  }
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
  c.modified_at = now;
}

}  // namespace polar::sim
