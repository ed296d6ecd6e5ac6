// Polar's API as polar-sim serves it: one line per route, in the order the
// router tries them (the client routes before /v1/checkouts/{id}). A new route:
// a line here and the handler in its service (sim/api/).
#include "sim/simulator.h"

namespace polar::sim {

std::vector<Route> PolarRoutes(CheckoutsApi* checkouts, EventsApi* events,
                               WebhookService* webhooks) {
  using Params = std::vector<std::string>;
  std::vector<Route> routes;
  auto add = [&](const char* name, const char* method, const char* pattern,
                 std::vector<std::string> scopes, Route::Handler handler) {
    Route r;
    r.id = static_cast<int>(routes.size());
    r.name = name;
    r.method = method;
    r.pattern = pattern;
    r.needs_token = !scopes.empty();
    r.scopes = std::move(scopes);
    r.handler = std::move(handler);
    routes.push_back(std::move(r));
  };
  const std::vector<std::string> anonymous;
  const std::vector<std::string> checkouts_read = {"checkouts:read",
                                                   "checkouts:write"};
  const std::vector<std::string> checkouts_write = {"checkouts:write"};
  const std::vector<std::string> events_read = {"events:read", "events:write"};
  const std::vector<std::string> webhooks_read = {"webhooks:read",
                                                  "webhooks:write"};
  const std::vector<std::string> webhooks_write = {"webhooks:write"};

  add("health", "GET", "/healthz", anonymous,
      [](const SimRequest&, const Params&) {
        return Json(200, {{"status", "ok"}});
      });
  add("checkouts:list", "GET", "/v1/checkouts/", checkouts_read,
      [=](const SimRequest& r, const Params&) { return checkouts->List(r); });
  add("checkouts:create", "POST", "/v1/checkouts/", checkouts_write,
      [=](const SimRequest& r, const Params&) { return checkouts->Create(r); });
  add("checkouts:client_get", "GET", "/v1/checkouts/client/{}", anonymous,
      [=](const SimRequest&, const Params& p) {
        return checkouts->ClientGet(p[0]);
      });
  add("checkouts:client_update", "PATCH", "/v1/checkouts/client/{}", anonymous,
      [=](const SimRequest& r, const Params& p) {
        return checkouts->ClientUpdate(r, p[0]);
      });
  add("checkouts:client_confirm", "POST", "/v1/checkouts/client/{}/confirm",
      anonymous, [=](const SimRequest& r, const Params& p) {
        return checkouts->ClientConfirm(r, p[0]);
      });
  add("checkouts:client_stream", "GET", "/v1/checkouts/client/{}/stream",
      anonymous, [=](const SimRequest&, const Params& p) {
        return checkouts->ClientStream(p[0]);
      });
  add("checkouts:get", "GET", "/v1/checkouts/{}", checkouts_read,
      [=](const SimRequest&, const Params& p) { return checkouts->Get(p[0]); });
  add("checkouts:update", "PATCH", "/v1/checkouts/{}", checkouts_write,
      [=](const SimRequest& r, const Params& p) {
        return checkouts->Update(r, p[0]);
      });
  add("events:ingest", "POST", "/v1/events/ingest", {"events:write"},
      [=](const SimRequest& r, const Params&) { return events->Ingest(r); });
  add("events:list", "GET", "/v1/events/", events_read,
      [=](const SimRequest& r, const Params&) { return events->List(r); });
  add("webhooks:list_webhook_endpoints", "GET", "/v1/webhooks/endpoints",
      webhooks_read, [=](const SimRequest& r, const Params&) {
        return webhooks->ListEndpoints(r);
      });
  add("webhooks:create_webhook_endpoint", "POST", "/v1/webhooks/endpoints",
      webhooks_write, [=](const SimRequest& r, const Params&) {
        return webhooks->CreateEndpoint(r);
      });
  add("webhooks:get_webhook_endpoint", "GET", "/v1/webhooks/endpoints/{}",
      webhooks_read, [=](const SimRequest&, const Params& p) {
        return webhooks->GetEndpoint(p[0]);
      });
  add("webhooks:update_webhook_endpoint", "PATCH", "/v1/webhooks/endpoints/{}",
      webhooks_write, [=](const SimRequest& r, const Params& p) {
        return webhooks->UpdateEndpoint(r, p[0]);
      });
  add("webhooks:delete_webhook_endpoint", "DELETE", "/v1/webhooks/endpoints/{}",
      webhooks_write, [=](const SimRequest&, const Params& p) {
        return webhooks->DeleteEndpoint(p[0]);
      });
  add("webhooks:reset_webhook_endpoint_secret", "PATCH",
      "/v1/webhooks/endpoints/{}/secret", webhooks_write,
      [=](const SimRequest&, const Params& p) {
        return webhooks->ResetSecret(p[0]);
      });
  add("webhooks:list_webhook_deliveries", "GET", "/v1/webhooks/deliveries",
      webhooks_read, [=](const SimRequest& r, const Params&) {
        return webhooks->ListDeliveries(r);
      });
  return routes;
}

}  // namespace polar::sim
