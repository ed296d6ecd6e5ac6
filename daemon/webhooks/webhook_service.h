// WebhookService: the daemon's webhook receiver: its own HttpServer on the
// event loop serving `POST /webhooks/polar`, the WebhookReceiver that judges
// each delivery, the WebhookCorrelator the scenarios announce their calls to,
// and, with webhooks.register_url, the endpoint it creates in Polar at start
// and deletes at stop.
//
// Owned by App, created when [webhooks] first appears in the config and kept
// for the App's lifetime: a reload applies the new [webhooks] table to it
// (limits, key, listener, registration) and keeps its state (remembered ids,
// pending expectations, counters). Without [webhooks] after a reload it stops
// serving and drops what it expected (not counted as lost), but stays
// allocated, because retired scenarios may still call Expect() on it.
// Loop thread only; every handler is a few microseconds of work (an HMAC over
// the body, one JSON parse, a hash lookup), so it answers on the loop.
//
// Test hooks (POLAR_LOADD_TEST_HOOKS=1 only; never in production):
//   POST /_test/webhooks/expect on the webhook listener, body
//     {"expectations":[{"type","key","caused_at_unix_ms"}...]}: announces
//     expectations as a scenario would, for end-to-end tests that create
//     objects in polar-sim themselves. caused_at is wall time, converted to
//     the loop's monotonic clock on arrival.
//   POLAR_LOADD_TEST_WEBHOOK_FAIL_FIRST=N: the first N deliveries the
//     receiver accepted (judged and counted as usual) are answered 503, as if
//     the 2xx had been lost on the way back, so the sender retries them.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/net/event_loop.h"
#include "daemon/net/http_server.h"
#include "daemon/webhooks/webhook_correlator.h"
#include "daemon/webhooks/webhook_metrics.h"
#include "daemon/webhooks/webhook_receiver.h"
#include "daemon/webhooks/webhooks_config.h"
#include "scenarios/transport.h"

namespace polar {

class WebhookService {
 public:
  // Where registration requests go: the current engine (a reload may replace
  // it).
  using TransportGetter = std::function<Transport&()>;

  WebhookService(EventLoop& loop, const Clock& clock,
                 prometheus::Registry& registry, TransportGetter transport);
  ~WebhookService();
  WebhookService(const WebhookService&) = delete;
  WebhookService& operator=(const WebhookService&) = delete;

  // Step one of applying `config`: binds the listener it asks for if the
  // service is not already serving that address. On success *server is the
  // new listener, or null when the current one stays (or none is wanted).
  // On failure nothing changed and *error says why.
  bool Prepare(const WebhooksConfig& config,
               std::unique_ptr<HttpServer>* server, std::string* error);
  // Step two: switches to `config` with the listener from Prepare().
  void Apply(const WebhooksConfig& config, std::unique_ptr<HttpServer> server);
  // At shutdown: deletes the registered endpoint (the request joins the
  // engine's in-flight requests, which the drain waits for) and stops
  // registering.
  void Stop();

  // What scenarios get as ScenarioContext::webhooks; null while disabled.
  WebhookExpectations* expectations();
  // The receiver's bound address, or null while disabled.
  const ListenAddress* address() const;

 private:
  // 404 / 405 for what is not a delivery (nor the test hook); nullopt
  // otherwise.
  std::optional<HttpServerResponse> Route(
      const HttpServerRequest& request) const;
  static WebhookDelivery DeliveryOf(const HttpServerRequest& request);
  // On the head, before the body is read: the route, then the receiver's
  // size, id and timestamp checks (HttpHeadHandler).
  std::optional<HttpServerResponse> HandleHead(
      const HttpServerRequest& request);
  HttpServerResponse Handle(const HttpServerRequest& request);
  // The receiver's verdict as an HTTP answer, logged (rate-limited) when it
  // is a refusal.
  HttpServerResponse Answer(const WebhookAnswer& answer);
  HttpServerResponse HandleTestExpect(const HttpServerRequest& request);
  void Tick();
  // Lets the correlator take expectations only while deliveries can be
  // verified (enabled, a key known); otherwise drops them unjudged.
  void SyncCorrelator();
  // Registration (webhooks.register_url).
  void StartRegistration();
  // Lists page `page` of the organization's endpoints, collecting the ones
  // with our URL into `stale`; after the last page deletes them and creates
  // ours.
  void ListStaleEndpoints(int64_t page,
                          std::shared_ptr<std::vector<std::string>> stale);
  void CreateEndpoint();
  void OnCreated(Response&& response, uint64_t generation);
  void ScheduleRetry(uint64_t generation);
  void DeleteEndpoint(const std::string& id, const std::string& url);

  EventLoop& loop_;
  const Clock& clock_;
  prometheus::Registry& registry_;  // the listener's metrics
  TransportGetter transport_;
  WebhookMetrics metrics_;
  WebhookCorrelator correlator_;
  WebhookReceiver receiver_;
  std::unique_ptr<HttpServer> server_;
  WebhooksConfig config_;  // what is applied; enabled=false when none
  Timer tick_timer_;

  // Registration state. `generation_` changes whenever the wanted URL does (or
  // at Stop), so answers to an older attempt are recognised.
  uint64_t generation_ = 0;
  std::string endpoint_id_;   // the endpoint we created, "" when none
  std::string endpoint_url_;  // its URL
  Timer retry_timer_;
  Duration retry_delay_{};
  bool stopped_ = false;

  // Test hooks (see the header comment).
  bool test_hooks_ = false;
  long fail_first_ = 0;
};

}  // namespace polar
