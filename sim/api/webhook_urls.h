// Webhook endpoint rules: the event types an endpoint may subscribe to and
// which URLs Polar accepts (https only; no localhost or non-global IP
// literals, docs/polar-api.md §4.1), with polar-sim's loopback exception.
//
// Pure functions; any thread.
#pragma once

#include <string>

namespace polar::sim {

struct ParsedUrl {
  std::string scheme;  // lower-cased
  std::string host;    // lower-cased, without brackets
};

bool ParseUrl(const std::string& url, ParsedUrl* out);
bool IsLoopbackHost(const std::string& host);
// Polar's _is_blocked_webhook_host: localhost names and any IP literal that is
// not globally routable.
bool IsBlockedHost(const std::string& host);
// One of Polar's WebhookEventType values.
bool IsEventType(const std::string& type);

}  // namespace polar::sim
