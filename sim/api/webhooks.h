// Webhooks: the endpoint API (POST/GET/PATCH/DELETE /v1/webhooks/endpoints,
// GET /v1/webhooks/deliveries) and delivery as Polar's worker does it
// (docs/polar-api.md §4): one webhook_event.send job per (event, endpoint) on
// the `webhooks` queue; Standard Webhooks headers signed with HMAC-SHA256 keyed
// by the UTF-8 bytes of the whole `whsec_...` secret; a 10 s timeout; 3xx
// counts as failure; up to 10 attempts with dramatiq's jittered 2 s·2^n backoff
// (capped at 20 min, multiplied by the time scale); per-endpoint FIFO of first
// attempts (an event waits, in 300 ms x pending steps times the time scale,
// while older ones from the last real minute are unattempted); an endpoint
// whose last 10 events all failed is disabled.
//
// Real Polar refuses loopback URLs; polar-sim accepts them only with
// allow_loopback (--allow-loopback-webhooks). URLs that are not loopback are
// never called unless deliver_external is set: like Polar in development, the
// attempt is recorded as a 200 without any network traffic.
//
// The endpoint API lives in webhook_endpoints.cc, delivery in
// webhook_delivery.cc, the URL and event-type rules in webhook_urls.h.
//
// Thread-safe: the API runs on HTTP threads, Send() on any thread, deliveries
// on the worker's `webhooks` threads (libcurl, blocking, one handle per
// thread). One mutex guards endpoints and events; no call-out happens under it.
// Times come from the Clock given at construction. Bounded: per endpoint at
// most max_pending unfinished events (more are dropped and counted); the
// delivery log keeps the last delivery_log entries.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/api/model.h"
#include "sim/api/validation.h"
#include "sim/base/clock.h"
#include "sim/http/message.h"
#include "sim/worker/worker.h"

namespace polar::sim {

struct WebhookOptions {
  bool allow_loopback = false;
  bool deliver_external = false;
  Duration timeout = std::chrono::seconds(10);
  TimeScale scale;
  std::size_t max_endpoints = 100;
  std::size_t max_pending = 10'000;
  std::size_t delivery_log = 1000;
};

// settings.WEBHOOK_* (server/polar/config.py).
inline constexpr int kWebhookMaxAttempts = 10;
inline constexpr int kWebhookFailureThreshold = 10;
inline constexpr auto kFifoGuardDelay = std::chrono::milliseconds(300);
inline constexpr auto kFifoGuardMaxAge = std::chrono::minutes(1);

// "v1,<base64(HMAC-SHA256(key, id.timestamp.body))>" with key = the UTF-8
// bytes of `secret` (the whole whsec_... string, as Polar uses it).
std::string SignWebhook(const std::string& secret, const std::string& msg_id,
                        int64_t timestamp, const std::string& body);

// Backoff before retry n (n = attempts so far, from 1), in Polar time:
// dramatiq compute_backoff(n, factor=2000 ms, max_backoff=20 min) with jitter
// uniform in [x/2, x].
Duration WebhookBackoff(int attempts, std::mt19937_64& rng);

class WebhookService {
 public:
  WebhookService(const WebhookOptions& options, const Organization& org,
                 Worker* worker, const Clock& clock,
                 prometheus::Registry& registry);

  // Queues `type` with `data` for every enabled endpoint subscribed to it.
  // `on_delivered` runs on a worker thread after a raw-format endpoint got it
  // (Polar's webhook_event.success hook). Returns how many endpoints it
  // targets.
  int Send(const std::string& type, const json& data,
           std::function<void()> on_delivered = nullptr);

  SimResponse CreateEndpoint(const SimRequest& request);
  SimResponse ListEndpoints(const SimRequest& request);
  SimResponse GetEndpoint(const std::string& id);
  SimResponse UpdateEndpoint(const SimRequest& request, const std::string& id);
  SimResponse ResetSecret(const std::string& id);
  SimResponse DeleteEndpoint(const std::string& id);
  SimResponse ListDeliveries(const SimRequest& request);

  // Delivery state (definitions below the class).
  struct Event;
  struct Endpoint;

 private:
  struct Delivery {
    std::string id;
    SysMicros created_at{};
    bool succeeded = false;
    std::optional<int> http_code;
    std::optional<std::string> response;
    std::shared_ptr<Event> event;
    std::string endpoint_id;
  };
  struct PostResult {
    std::optional<int> http_code;
    std::string response;
    bool ok = false;
  };

  JobResult RunSend(const std::shared_ptr<Event>& event, JobContext& ctx);
  JobResult RunFailed(const std::string& endpoint_id);
  PostResult Post(const std::string& url, const std::string& id,
                  const std::string& secret, const std::string& payload,
                  JobContext& ctx);
  json EndpointJson(const Endpoint& e) const;
  json EventJson(const Event& e) const;
  bool ValidateUrl(const json& body, const char* key, bool required,
                   ValidationErrors& errors) const;

  WebhookOptions options_;
  const Organization& org_;
  Worker* worker_;
  const Clock& clock_;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Endpoint>> endpoints_;
  std::vector<std::string> endpoint_order_;
  std::deque<Delivery> log_;
  std::mt19937_64 rng_{7};

  // polar_sim_webhook_attempts_total{result}, _events_total{state},
  // _endpoints_disabled_total.
  prometheus::Counter *delivered_, *failed_attempts_, *gave_up_, *dropped_,
      *skipped_, *disabled_, *simulated_;
};

struct WebhookService::Event {
  std::string id;
  std::string endpoint_id;
  std::string type;
  SysMicros created_at{};
  SteadyTime created_steady{};
  std::string payload;
  int attempts = 0;
  int ordering_retries = 0;
  bool attempted = false;
  std::optional<bool> succeeded;
  bool skipped = false;
  std::optional<int> last_http_code;
  std::function<void()> on_delivered;
};

struct WebhookService::Endpoint {
  std::string id;
  SysMicros created_at{};
  std::optional<SysMicros> modified_at;
  std::string url;
  std::optional<std::string> name;
  std::string format;
  std::string secret;
  std::vector<std::string> events;
  bool enabled = true;
  bool deleted = false;
  // Events not attempted yet, oldest first: the FIFO guard.
  std::deque<std::shared_ptr<Event>> unattempted;
  std::size_t unfinished = 0;
  std::deque<bool> recent;  // outcomes of the last completed events
};

}  // namespace polar::sim
