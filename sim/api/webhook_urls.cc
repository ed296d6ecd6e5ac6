#include "sim/api/webhook_urls.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <iterator>

namespace polar::sim {
namespace {

// Polar's WebhookEventType enum (OpenAPI), the values an endpoint may list.
constexpr const char* kEventTypes[] = {
    "checkout.created",       "checkout.updated",
    "checkout.expired",       "customer.created",
    "customer.updated",       "customer.deleted",
    "customer.state_changed", "customer_seat.assigned",
    "customer_seat.claimed",  "customer_seat.revoked",
    "member.created",         "member.updated",
    "member.deleted",         "order.created",
    "order.updated",          "order.paid",
    "order.refunded",         "subscription.created",
    "subscription.updated",   "subscription.active",
    "subscription.canceled",  "subscription.uncanceled",
    "subscription.cycled",    "subscription.revoked",
    "subscription.past_due",  "subscription.paused",
    "subscription.resumed",   "refund.created",
    "refund.updated",         "product.created",
    "product.updated",        "discount.created",
    "discount.updated",       "discount.deleted",
    "benefit.created",        "benefit.updated",
    "benefit_grant.created",  "benefit_grant.cycled",
    "benefit_grant.updated",  "benefit_grant.revoked",
    "organization.updated"};

}  // namespace

bool IsEventType(const std::string& t) {
  return std::any_of(std::begin(kEventTypes), std::end(kEventTypes),
                     [&](const char* e) { return t == e; });
}

bool ParseUrl(const std::string& url, ParsedUrl* out) {
  auto sep = url.find("://");
  if (sep == std::string::npos || sep == 0) return false;
  out->scheme = url.substr(0, sep);
  for (char& c : out->scheme)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string rest = url.substr(sep + 3);
  auto end = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, end);
  if (auto at = authority.rfind('@'); at != std::string::npos)
    authority = authority.substr(at + 1);
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos) return false;
    out->host = authority.substr(1, close - 1);
  } else {
    out->host = authority.substr(0, authority.find(':'));
  }
  for (char& c : out->host)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return !out->host.empty();
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  return false;
}

bool IsBlockedHost(const std::string& host) {
  if (host == "localhost" || host == "0.0.0.0" || IsLoopbackHost(host))
    return true;
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    uint32_t ip = ntohl(a4.s_addr);
    auto in = [&](uint32_t net, int bits) {
      return (ip >> (32 - bits)) == (net >> (32 - bits));
    };
    return in(0x0A000000, 8) || in(0xAC100000, 12) || in(0xC0A80000, 16) ||
           in(0xA9FE0000, 16) || in(0x64400000, 10) || in(0x00000000, 8) ||
           in(0xE0000000, 3);
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    // Only 2000::/3 is global unicast.
    return (a6.s6_addr[0] & 0xE0) != 0x20;
  }
  return false;
}

}  // namespace polar::sim
