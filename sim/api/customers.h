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
  // Returns the customer with `email`, or creates it; *created says which.
  Customer GetOrCreate(const std::string& email,
                       const std::optional<std::string>& name,
                       const std::optional<std::string>& external_id,
                       const json& billing_address,
                       const std::string& organization_id, bool* created);
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
