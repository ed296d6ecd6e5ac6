// CustomerStore: the organization's customers: the seeded ones (never
// evicted) and those created by checkout confirms, looked up by id, email and
// external id.
//
// Thread-safe (one mutex); lookups return copies. Bounded: beyond max_created
// confirm-created customers the oldest are forgotten, so a week-long demo
// stays flat.
#pragma once

#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "sim/api/model.h"
#include "sim/base/clock.h"

namespace polar::sim {

class CustomerStore {
 public:
  CustomerStore(std::size_t max_created, const Clock& clock)
      : clock_(clock), max_created_(max_created) {}

  void AddSeeded(Customer c);
  std::optional<Customer> ById(const std::string& id) const;
  std::optional<Customer> ByEmail(const std::string& email) const;
  std::optional<Customer> ByExternalId(const std::string& external_id) const;
  // What a confirm knows about its buyer.
  struct Buyer {
    std::optional<std::string> customer_id;  // set at create
    std::string email;
    std::optional<std::string> name;
    std::optional<std::string> billing_name;
    std::optional<std::string> external_id;
    json billing_address = nullptr;
  };
  enum class Match {
    kLinked,           // the checkout's customer_id
    kByEmail,          // the organization's customer with that e-mail
    kCreated,          // a new customer
    kExternalIdTaken,  // would be new, but another customer has the external
                       // id: Polar's 422 CheckoutCustomerExternalIdMismatch
  };
  // Confirm's _create_or_update_customer: the linked customer, else the one
  // with the e-mail, else a new one with the external id. An existing one gets
  // a name when it has none, and the billing name and address the checkout
  // carries (Polar then sends customer.updated). Atomic.
  std::optional<Customer> ForConfirm(const Buyer& buyer,
                                     const std::string& organization_id,
                                     Match* how);
  std::size_t size() const;

 private:
  void IndexLocked(const Customer& c);
  void UnindexLocked(const std::string& id);

  const Clock& clock_;
  mutable std::mutex mutex_;
  std::size_t max_created_;
  std::unordered_map<std::string, Customer> by_id_;
  std::unordered_map<std::string, std::string> by_email_;
  std::unordered_map<std::string, std::string> by_external_;
  std::deque<std::string> created_order_;
};

}  // namespace polar::sim
