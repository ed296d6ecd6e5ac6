#include "sim/api/customers.h"

namespace polar::sim {

void CustomerStore::IndexLocked(const Customer& c) {
  by_email_[c.email] = c.id;
  if (c.external_id) by_external_[*c.external_id] = c.id;
  by_id_[c.id] = c;
}

void CustomerStore::UnindexLocked(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  if (auto e = by_email_.find(it->second.email);
      e != by_email_.end() && e->second == id)
    by_email_.erase(e);
  if (it->second.external_id) {
    if (auto x = by_external_.find(*it->second.external_id);
        x != by_external_.end() && x->second == id)
      by_external_.erase(x);
  }
  by_id_.erase(it);
}

void CustomerStore::AddSeeded(Customer c) {
  std::lock_guard lock(mutex_);
  IndexLocked(c);
}

std::optional<Customer> CustomerStore::ById(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

std::optional<Customer> CustomerStore::ByEmail(const std::string& email) const {
  std::lock_guard lock(mutex_);
  auto it = by_email_.find(email);
  if (it == by_email_.end()) return std::nullopt;
  return by_id_.at(it->second);
}

std::optional<Customer> CustomerStore::ByExternalId(
    const std::string& external_id) const {
  std::lock_guard lock(mutex_);
  auto it = by_external_.find(external_id);
  if (it == by_external_.end()) return std::nullopt;
  return by_id_.at(it->second);
}

std::optional<Customer> CustomerStore::ForConfirm(
    const Buyer& buyer, const std::string& organization_id, Match* how) {
  std::lock_guard lock(mutex_);
  Customer* found = nullptr;
  if (buyer.customer_id) {
    if (auto it = by_id_.find(*buyer.customer_id); it != by_id_.end()) {
      found = &it->second;
      *how = Match::kLinked;
    }
  }
  if (!found) {
    if (auto it = by_email_.find(buyer.email); it != by_email_.end()) {
      found = &by_id_.at(it->second);
      *how = Match::kByEmail;
    }
  }
  if (found) {
    // Indexes (e-mail, external id) do not change on this path.
    if (!found->name) found->name = buyer.name;
    if (buyer.billing_name) found->billing_name = buyer.billing_name;
    if (!buyer.billing_address.is_null())
      found->billing_address = buyer.billing_address;
    found->modified_at = clock_.WallNow();
    return *found;
  }
  if (buyer.external_id && by_external_.count(*buyer.external_id)) {
    *how = Match::kExternalIdTaken;
    return std::nullopt;
  }
  Customer c;
  c.id = NewId();
  c.email = buyer.email;
  c.name = buyer.name;
  c.billing_name = buyer.billing_name;
  c.external_id = buyer.external_id;
  c.billing_address = buyer.billing_address;
  c.organization_id = organization_id;
  c.created_at = clock_.WallNow();
  IndexLocked(c);
  created_order_.push_back(c.id);
  while (created_order_.size() > max_created_) {
    UnindexLocked(created_order_.front());
    created_order_.pop_front();
  }
  *how = Match::kCreated;
  return c;
}

std::size_t CustomerStore::size() const {
  std::lock_guard lock(mutex_);
  return by_id_.size();
}

}  // namespace polar::sim
