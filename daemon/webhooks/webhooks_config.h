// WebhooksConfig: the [webhooks] table of the config file, as validated by
// LoadConfig (daemon/config/config.h) and applied by WebhookService
// (daemon/webhooks/webhook_service.h). Plain data; immutable once in a Config.
#pragma once

#include <cstddef>
#include <string>

#include "daemon/net/listen_address.h"
#include "daemon/webhooks/webhook_signature.h"
#include "exporters/clock.h"

namespace polar {

// [webhooks]: the receiver of Polar's webhooks
// (daemon/webhooks/webhook_service.h). Absent table: no receiver, and scenarios
// get no WebhookExpectations.
struct WebhooksConfig {
  bool enabled = false;
  ListenAddress listen{"127.0.0.1", 9478, false};
  // The secret text (from secret or secret_file) and the HMAC key derived from
  // it by secret_format; both secret, never logged. Empty with register_url:
  // the key then comes from Polar's answer.
  std::string secret;
  std::string key;
  WebhookSecretFormat secret_format = WebhookSecretFormat::kPolar;
  Duration tolerance = std::chrono::minutes(5);
  std::size_t max_body_bytes = 256 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t remember_ids = 100'000;
  Duration deadline = std::chrono::minutes(10);
  std::size_t max_expectations = 100'000;
  Duration unmatched_after = std::chrono::seconds(10);
  // The public URL Polar should call; when set, the endpoint is created at
  // start (POST /v1/webhooks/endpoints) and deleted at stop.
  std::string register_url;
  // Lets register_url be http:// or https:// on a loopback host, which only
  // polar-sim (with --allow-loopback-webhooks) accepts.
  bool register_allow_loopback = false;
};

}  // namespace polar
