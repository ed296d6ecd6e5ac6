// Polar's objects as polar-sim stores them (organization, products, customers,
// checkouts, orders) and their JSON renderings, shaped to validate against the
// OpenAPI schemas (Checkout, CheckoutPublic, CheckoutPublicConfirmed,
// CustomerIndividual, Order).
//
// Plain values and pure functions; the stores that own these values guard
// them with their own mutexes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sim/base/ids.h"
#include "sim/base/time.h"

namespace polar::sim {

using nlohmann::json;

struct Organization {
  std::string id;
  std::string name = "polar-sim";
  std::string slug = "polar-sim";
  SysMicros created_at{};
};

struct Product {
  std::string id;
  std::string price_id;
  std::string name;
  int64_t price_amount = 0;  // cents; 0 is the free product
  std::string currency = "usd";
  std::string organization_id;
  SysMicros created_at{};
  bool free() const { return price_amount == 0; }
};

struct Customer {
  std::string id;
  std::optional<std::string> external_id;
  std::string email;
  std::optional<std::string> name;
  std::optional<std::string> billing_name;
  json billing_address = nullptr;
  std::string organization_id;
  SysMicros created_at{};
  std::optional<SysMicros> modified_at;
};

enum class CheckoutStatus { kOpen, kExpired, kConfirmed, kSucceeded, kFailed };
const char* ToString(CheckoutStatus s);

struct Checkout {
  std::string id;
  std::string client_secret;  // polar_c_ + 43 characters
  SysMicros created_at{};
  std::optional<SysMicros> modified_at;
  SysMicros expires_at{};
  CheckoutStatus status = CheckoutStatus::kOpen;
  const Product* product = nullptr;      // the selected one; seeded products
                                         // live for the process
  std::vector<const Product*> products;  // offered in this checkout

  std::optional<std::string> customer_id;
  std::optional<std::string> external_customer_id;
  std::optional<std::string> customer_email;
  std::optional<std::string> customer_name;
  std::optional<std::string> customer_billing_name;
  json customer_billing_address = nullptr;
  std::optional<std::string> customer_tax_id;
  std::optional<std::string> customer_ip_address;
  bool is_business_customer = false;
  std::optional<std::string> locale;
  std::optional<int64_t> seats;
  std::optional<std::string> success_url;
  std::optional<std::string> return_url;
  std::optional<std::string> embed_origin;
  bool allow_discount_codes = true;
  bool require_billing_address = false;
  bool allow_trial = true;
  std::optional<std::string> payment_method_type;
  json metadata = json::object();
  json customer_metadata = json::object();
  json custom_field_data = json::object();
  json payment_processor_metadata = json::object();
  std::optional<std::string> customer_session_token;  // set by confirm

  // Polar locks the row FOR UPDATE NOWAIT while a confirm or the success job
  // runs; a concurrent update then gets 409 CheckoutLocked.
  int lock_holders = 0;
};

struct Order {
  std::string id;
  SysMicros created_at{};
  std::string checkout_id;
  int64_t amount = 0;
  std::string currency = "usd";
  std::string status = "paid";
};

// Polar's frontend base URL in development (checkout links point there).
inline constexpr const char* kFrontendBaseUrl = "http://127.0.0.1:3000";

enum class CheckoutView { kFull, kPublic, kPublicConfirmed };
json CheckoutJson(const Checkout& c, const Organization& org,
                  CheckoutView view);
json ProductJson(const Product& p);    // CheckoutProduct
json PriceJson(const Product& p);      // ProductPriceFixed
json CustomerJson(const Customer& c);  // CustomerIndividual
json OrderJson(const Order& o, const Checkout& c, const Customer& customer);

std::optional<std::string> OptString(const json& j);

}  // namespace polar::sim
