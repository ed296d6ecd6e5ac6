#include "sim/api/model.h"

namespace polar::sim {
namespace {

json Opt(const std::optional<std::string>& v) {
  return v ? json(*v) : json(nullptr);
}

json OptTime(const std::optional<SysMicros>& v) {
  return v ? json(FormatTimestamp(*v)) : json(nullptr);
}

}  // namespace

json ProductJson(const Product& p);
json PriceJson(const Product& p);

namespace {

json ProductsJson(const Checkout& c) {
  json out = json::array();
  for (const Product* p : c.products) out.push_back(ProductJson(*p));
  return out;
}

json PricesJson(const Checkout& c) {
  json out = json::object();
  for (const Product* p : c.products) out[p->id] = json::array({PriceJson(*p)});
  return out;
}

}  // namespace

const char* ToString(CheckoutStatus s) {
  switch (s) {
    case CheckoutStatus::kOpen:
      return "open";
    case CheckoutStatus::kExpired:
      return "expired";
    case CheckoutStatus::kConfirmed:
      return "confirmed";
    case CheckoutStatus::kSucceeded:
      return "succeeded";
    case CheckoutStatus::kFailed:
      return "failed";
  }
  return "open";
}

std::optional<std::string> OptString(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  return std::nullopt;
}

json PriceJson(const Product& p) {
  return {{"created_at", FormatTimestamp(p.created_at)},
          {"modified_at", nullptr},
          {"id", p.price_id},
          {"source", "catalog"},
          {"amount_type", "fixed"},
          {"price_currency", p.currency},
          {"tax_behavior", nullptr},
          {"is_archived", false},
          {"product_id", p.id},
          {"price_amount", p.price_amount}};
}

json ProductJson(const Product& p) {
  return {{"id", p.id},
          {"created_at", FormatTimestamp(p.created_at)},
          {"modified_at", nullptr},
          {"trial_interval", nullptr},
          {"trial_interval_count", nullptr},
          {"name", p.name},
          {"description", nullptr},
          {"visibility", "public"},
          {"recurring_interval", nullptr},
          {"recurring_interval_count", nullptr},
          {"meter_interval", nullptr},
          {"meter_interval_count", nullptr},
          {"is_recurring", false},
          {"is_archived", false},
          {"organization_id", p.organization_id},
          {"prices", json::array({PriceJson(p)})},
          {"benefits", json::array()},
          {"medias", json::array()}};
}

json CustomerJson(const Customer& c) {
  return {{"id", c.id},
          {"created_at", FormatTimestamp(c.created_at)},
          {"modified_at", OptTime(c.modified_at)},
          {"metadata", json::object()},
          {"external_id", Opt(c.external_id)},
          {"email", c.email},
          {"email_verified", false},
          {"type", "individual"},
          {"name", Opt(c.name)},
          {"billing_name", Opt(c.billing_name)},
          {"billing_address", c.billing_address},
          {"tax_id", nullptr},
          {"locale", nullptr},
          {"organization_id", c.organization_id},
          {"default_payment_method_id", nullptr},
          {"deleted_at", nullptr},
          {"first_user_event_at", nullptr},
          {"avatar_url", nullptr}};
}

json CheckoutJson(const Checkout& c, const Organization& org,
                  CheckoutView view) {
  const Product& p = *c.product;
  const bool free = p.free();
  const int64_t amount = p.price_amount * c.seats.value_or(1);
  const bool confirmed_or_later = c.status == CheckoutStatus::kConfirmed ||
                                  c.status == CheckoutStatus::kSucceeded;
  // Tax is computed once an address is known; the simulator charges none.
  json tax = free || confirmed_or_later || !c.customer_billing_address.is_null()
                 ? json(0)
                 : json(nullptr);
  auto mode = [&](bool required) {
    return free && !c.require_billing_address
               ? "disabled"
               : (required ? "required" : "optional");
  };
  json out = {
      {"id", c.id},
      {"created_at", FormatTimestamp(c.created_at)},
      {"modified_at", OptTime(c.modified_at)},
      {"custom_field_data", c.custom_field_data},
      {"payment_processor", "stripe"},
      {"status", ToString(c.status)},
      {"client_secret", c.client_secret},
      {"url", std::string(kFrontendBaseUrl) + "/checkout/" + c.client_secret},
      {"expires_at", FormatTimestamp(c.expires_at)},
      {"success_url",
       c.success_url.value_or(std::string(kFrontendBaseUrl) + "/checkout/" +
                              c.client_secret + "/confirmation")},
      {"return_url", Opt(c.return_url)},
      {"embed_origin", Opt(c.embed_origin)},
      {"amount", amount},
      {"seats", c.seats ? json(*c.seats) : json(nullptr)},
      {"min_seats", nullptr},
      {"max_seats", nullptr},
      {"discount_amount", 0},
      {"net_amount", amount},
      {"tax_amount", tax},
      {"tax_behavior", nullptr},
      {"total_amount", amount},
      {"currency", p.currency},
      {"allow_trial", c.allow_trial},
      {"active_trial_interval", nullptr},
      {"active_trial_interval_count", nullptr},
      {"trial_end", nullptr},
      {"organization_id", org.id},
      {"product_id", p.id},
      {"product_price_id", p.price_id},
      {"discount_id", nullptr},
      {"allow_discount_codes", c.allow_discount_codes},
      {"require_billing_address", c.require_billing_address},
      {"is_discount_applicable", !free},
      {"is_free_product_price", free},
      {"is_payment_required", !free},
      {"is_payment_setup_required", false},
      {"is_payment_form_required", !free},
      {"customer_id", Opt(c.customer_id)},
      {"is_business_customer", c.is_business_customer},
      {"customer_name", Opt(c.customer_name)},
      {"customer_email", Opt(c.customer_email)},
      {"customer_ip_address", Opt(c.customer_ip_address)},
      {"customer_billing_name", Opt(c.customer_billing_name)},
      {"customer_billing_address", c.customer_billing_address},
      {"customer_tax_id", Opt(c.customer_tax_id)},
      {"locale", Opt(c.locale)},
      {"payment_method_type", Opt(c.payment_method_type)},
      {"payment_processor_metadata", c.payment_processor_metadata},
      {"billing_address_fields",
       {{"country", mode(true)},
        {"state", mode(false)},
        {"city", mode(false)},
        {"postal_code", mode(false)},
        {"line1", mode(false)},
        {"line2", mode(false)}}},
      {"products", ProductsJson(c)},
      {"product", ProductJson(p)},
      {"product_price", PriceJson(p)},
      {"prices", PricesJson(c)},
      {"discount", nullptr},
      {"attached_custom_fields", json::array()},
  };
  if (view == CheckoutView::kFull) {
    out["trial_interval"] = nullptr;
    out["trial_interval_count"] = nullptr;
    out["metadata"] = c.metadata;
    out["external_customer_id"] = Opt(c.external_customer_id);
    out["subscription_id"] = nullptr;
    out["customer_metadata"] = c.customer_metadata;
  } else {
    out["organization"] = {{"created_at", FormatTimestamp(org.created_at)},
                           {"modified_at", nullptr},
                           {"id", org.id},
                           {"name", org.name},
                           {"slug", org.slug},
                           {"avatar_url", nullptr},
                           {"proration_behavior", "prorate"},
                           {"allow_customer_updates", true}};
  }
  if (view == CheckoutView::kPublicConfirmed) {
    out["customer_session_token"] = Opt(c.customer_session_token);
  }
  return out;
}

json OrderJson(const Order& o, const Checkout& c, const Customer& customer) {
  const Product& p = *c.product;
  json order_customer = CustomerJson(customer);
  // The order's product is the product schema without its prices, benefits
  // and medias, and with its metadata.
  json product = ProductJson(p);
  for (const char* key : {"prices", "benefits", "medias"}) product.erase(key);
  product["metadata"] = json::object();
  return {{"id", o.id},
          {"created_at", FormatTimestamp(o.created_at)},
          {"modified_at", nullptr},
          {"status", o.status},
          {"paid", true},
          {"subtotal_amount", o.amount},
          {"discount_amount", 0},
          {"net_amount", o.amount},
          {"tax_amount", 0},
          {"total_amount", o.amount},
          {"applied_balance_amount", 0},
          {"due_amount", 0},
          {"refunded_amount", 0},
          {"refunded_tax_amount", 0},
          {"currency", o.currency},
          {"billing_reason", "purchase"},
          {"billing_name", Opt(c.customer_billing_name)},
          {"billing_address", c.customer_billing_address},
          {"invoice_number", nullptr},
          {"is_invoice_generated", false},
          {"receipt_number", nullptr},
          {"seats", c.seats ? json(*c.seats) : json(nullptr)},
          {"customer_id", customer.id},
          {"product_id", p.id},
          {"discount_id", nullptr},
          {"subscription_id", nullptr},
          {"checkout_id", c.id},
          {"next_payment_attempt_at", nullptr},
          {"metadata", c.metadata},
          {"custom_field_data", c.custom_field_data},
          {"platform_fee_amount", 0},
          {"platform_fee_currency", nullptr},
          {"customer", order_customer},
          {"product", product},
          {"discount", nullptr},
          {"subscription", nullptr},
          {"items", json::array({{{"created_at", FormatTimestamp(o.created_at)},
                                  {"modified_at", nullptr},
                                  {"id", NewId()},
                                  {"label", p.name},
                                  {"amount", o.amount},
                                  {"tax_amount", 0},
                                  {"proration", false},
                                  {"product_price_id", p.price_id}}})},
          {"description", p.name},
          {"refundable_amount", o.amount},
          {"refundable_tax_amount", 0}};
}

}  // namespace polar::sim
