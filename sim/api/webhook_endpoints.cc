// The webhook endpoint API: POST/GET/PATCH/DELETE /v1/webhooks/endpoints,
// PATCH .../{id}/secret and GET /v1/webhooks/deliveries.
#include <algorithm>

#include "sim/api/io.h"
#include "sim/api/webhook_urls.h"
#include "sim/api/webhooks.h"

namespace polar::sim {

json WebhookService::EndpointJson(const Endpoint& e) const {
  return {{"created_at", FormatTimestamp(e.created_at)},
          {"modified_at", e.modified_at ? json(FormatTimestamp(*e.modified_at))
                                        : json(nullptr)},
          {"id", e.id},
          {"url", e.url},
          {"name", e.name ? json(*e.name) : json(nullptr)},
          {"format", e.format},
          {"secret", e.secret},
          {"organization_id", org_.id},
          {"events", e.events},
          {"enabled", e.enabled}};
}

json WebhookService::EventJson(const Event& e) const {
  return {{"created_at", FormatTimestamp(e.created_at)},
          {"modified_at", nullptr},
          {"id", e.id},
          {"last_http_code",
           e.last_http_code ? json(*e.last_http_code) : json(nullptr)},
          {"succeeded", e.succeeded ? json(*e.succeeded) : json(nullptr)},
          {"skipped", e.skipped},
          {"payload", e.payload},
          {"type", e.type},
          {"is_archived", false}};
}

bool WebhookService::ValidateUrl(const json& body, const char* key,
                                 bool required,
                                 ValidationErrors& errors) const {
  auto it = body.find(key);
  if (it == body.end() || (!required && it->is_null())) {
    if (required) errors.Missing(body, key, Loc({"body"}));
    return false;
  }
  json loc = Loc({"body", key});
  if (!it->is_string()) {
    errors.Add(loc, "url_type", "URL input should be a string or URL", *it);
    return false;
  }
  std::string url = it->get<std::string>();
  ParsedUrl parsed;
  if (url.empty() || url.size() > 2083 || !ParseUrl(url, &parsed)) {
    errors.Add(loc, "url_parsing",
               "Input should be a valid URL, relative URL without a base", *it,
               {{"error", "relative URL without a base"}});
    return false;
  }
  const bool loopback_ok =
      options_.allow_loopback && IsLoopbackHost(parsed.host);
  if (parsed.scheme != "https" && !(loopback_ok && parsed.scheme == "http")) {
    errors.Add(loc, "url_scheme", "URL scheme should be 'https'", *it,
               {{"expected_schemes", "'https'"}});
    return false;
  }
  if (IsBlockedHost(parsed.host) && !loopback_ok) {
    errors.Add(loc, "value_error",
               "Value error, Webhook URLs cannot point to localhost or private "
               "IP addresses.",
               *it, {{"error", json::object()}});
    return false;
  }
  return true;
}

namespace {

bool ValidateEvents(const json& body, bool required, ValidationErrors& errors,
                    std::vector<std::string>* out) {
  auto it = body.find("events");
  if (it == body.end() || (!required && it->is_null())) {
    if (required) errors.Missing(body, "events", Loc({"body"}));
    return false;
  }
  if (!it->is_array()) {
    errors.Add(Loc({"body", "events"}), "list_type",
               "Input should be a valid list", *it);
    return false;
  }
  bool ok = true;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& t = (*it)[i];
    if (!t.is_string() || !IsEventType(t.get<std::string>())) {
      errors.Add(Loc({"body", "events", i}), "enum",
                 "Input should be a valid webhook event type", t);
      ok = false;
    } else {
      out->push_back(t.get<std::string>());
    }
  }
  return ok;
}

bool ValidateFormat(const json& body, bool required, ValidationErrors& errors) {
  auto it = body.find("format");
  if (it == body.end() || (!required && it->is_null())) {
    if (required) errors.Missing(body, "format", Loc({"body"}));
    return false;
  }
  if (!it->is_string() ||
      (*it != "raw" && *it != "discord" && *it != "slack")) {
    errors.Add(Loc({"body", "format"}), "enum",
               "Input should be 'raw', 'discord' or 'slack'", *it,
               {{"expected", "'raw', 'discord' or 'slack'"}});
    return false;
  }
  return true;
}

}  // namespace

SimResponse WebhookService::CreateEndpoint(const SimRequest& request) {
  json body;
  if (auto error = ReadObject(request, &body)) return *error;
  ValidationErrors errors;
  ValidateUrl(body, "url", true, errors);
  ValidateFormat(body, true, errors);
  std::vector<std::string> events;
  ValidateEvents(body, true, errors, &events);
  errors.OptString(body, "name", Loc({"body"}));
  errors.OptString(body, "secret", Loc({"body"}), 0, 32);
  errors.OptUuid(body, "organization_id", Loc({"body"}));
  if (!errors.empty()) return errors.Response();
  if (body.contains("organization_id") && !body["organization_id"].is_null()) {
    errors.Add(Loc({"body", "organization_id"}), "organization_token",
               "Setting organization_id is disallowed when using an "
               "organization token.",
               body["organization_id"]);
    return errors.Response("PolarRequestValidationError");
  }
  auto ep = std::make_shared<Endpoint>();
  ep->id = NewId();
  ep->created_at = clock_.WallNow();
  ep->url = body["url"].get<std::string>();
  ep->name = OptString(body.value("name", json()));
  ep->format = body["format"].get<std::string>();
  ep->events = std::move(events);
  ep->secret = body.contains("secret") && body["secret"].is_string()
                   ? body["secret"].get<std::string>()
                   : NewToken("whsec_");
  std::lock_guard lock(mutex_);
  std::size_t live =
      std::count_if(endpoints_.begin(), endpoints_.end(),
                    [](const auto& kv) { return !kv.second->deleted; });
  if (live >= options_.max_endpoints) {
    return JsonError(400, "BadRequest",
                     "polar-sim keeps at most " +
                         std::to_string(options_.max_endpoints) +
                         " webhook endpoints.");
  }
  endpoints_[ep->id] = ep;
  endpoint_order_.push_back(ep->id);
  return Json(201, EndpointJson(*ep));
}

SimResponse WebhookService::ListEndpoints(const SimRequest& request) {
  PageQuery q;
  if (auto error = ReadPage(request, &q)) return *error;
  std::lock_guard lock(mutex_);
  std::vector<const Endpoint*> live;
  for (const std::string& id : endpoint_order_) {
    const auto& ep = endpoints_.at(id);
    if (!ep->deleted) live.push_back(ep.get());
  }
  json items = json::array();
  const PageRange range = PageOf(q.page, q.limit, live.size());
  for (std::size_t i = range.begin; i < range.end; ++i)
    items.push_back(EndpointJson(*live[i]));
  return ListResponse(std::move(items), static_cast<int64_t>(live.size()),
                      q.limit);
}

SimResponse WebhookService::GetEndpoint(const std::string& id) {
  if (!IsUuid(id)) return PathUuidError("id", id);
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(id);
  if (it == endpoints_.end() || it->second->deleted) return ResourceNotFound();
  return Json(200, EndpointJson(*it->second));
}

SimResponse WebhookService::UpdateEndpoint(const SimRequest& request,
                                           const std::string& id) {
  if (!IsUuid(id)) return PathUuidError("id", id);
  json body;
  if (auto error = ReadObject(request, &body)) return *error;
  ValidationErrors errors;
  bool set_url = ValidateUrl(body, "url", false, errors);
  bool set_format = ValidateFormat(body, false, errors);
  std::vector<std::string> events;
  bool set_events = ValidateEvents(body, false, errors, &events);
  errors.OptString(body, "name", Loc({"body"}));
  bool set_enabled = errors.OptBool(body, "enabled", Loc({"body"}));
  bool set_secret = errors.OptString(body, "secret", Loc({"body"}), 0, 32);
  if (!errors.empty()) return errors.Response();
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(id);
  if (it == endpoints_.end() || it->second->deleted) return ResourceNotFound();
  Endpoint& ep = *it->second;
  if (set_url) ep.url = body["url"].get<std::string>();
  if (set_format) ep.format = body["format"].get<std::string>();
  if (set_events) ep.events = std::move(events);
  if (body.contains("name")) ep.name = OptString(body["name"]);
  if (set_enabled) {
    bool enable = body["enabled"].get<bool>();
    // Re-enabling starts a new failure streak.
    if (enable && !ep.enabled) ep.recent.clear();
    ep.enabled = enable;
  }
  if (set_secret) ep.secret = body["secret"].get<std::string>();
  ep.modified_at = clock_.WallNow();
  return Json(200, EndpointJson(ep));
}

SimResponse WebhookService::ResetSecret(const std::string& id) {
  if (!IsUuid(id)) return PathUuidError("id", id);
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(id);
  if (it == endpoints_.end() || it->second->deleted) return ResourceNotFound();
  it->second->secret = NewToken("whsec_");
  it->second->modified_at = clock_.WallNow();
  return Json(200, EndpointJson(*it->second));
}

SimResponse WebhookService::DeleteEndpoint(const std::string& id) {
  if (!IsUuid(id)) return PathUuidError("id", id);
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(id);
  if (it == endpoints_.end() || it->second->deleted) return ResourceNotFound();
  // Soft deletion, as Polar's; the entry is dropped so memory stays bounded.
  it->second->deleted = true;
  it->second->enabled = false;
  endpoints_.erase(it);
  endpoint_order_.erase(
      std::remove(endpoint_order_.begin(), endpoint_order_.end(), id),
      endpoint_order_.end());
  SimResponse r;
  r.status = 204;
  r.body.clear();
  return r;
}

SimResponse WebhookService::ListDeliveries(const SimRequest& request) {
  PageQuery q;
  if (auto error = ReadPage(request, &q)) return *error;
  const std::string* endpoint_id = request.Query("endpoint_id");
  const std::string* succeeded = request.Query("succeeded");
  std::vector<std::string> types = request.QueryAll("event_type");
  std::lock_guard lock(mutex_);
  std::vector<const Delivery*> hits;
  for (auto it = log_.rbegin(); it != log_.rend(); ++it) {
    if (endpoint_id && it->endpoint_id != *endpoint_id) continue;
    if (succeeded && (*succeeded == "true") != it->succeeded) continue;
    if (!types.empty() &&
        std::find(types.begin(), types.end(), it->event->type) == types.end())
      continue;
    hits.push_back(&*it);
  }
  json items = json::array();
  const PageRange range = PageOf(q.page, q.limit, hits.size());
  for (std::size_t i = range.begin; i < range.end; ++i) {
    const Delivery& d = *hits[i];
    items.push_back(
        {{"created_at", FormatTimestamp(d.created_at)},
         {"modified_at", nullptr},
         {"id", d.id},
         {"succeeded", d.succeeded},
         {"http_code", d.http_code ? json(*d.http_code) : json(nullptr)},
         {"response", d.response ? json(*d.response) : json(nullptr)},
         {"webhook_event", EventJson(*d.event)}});
  }
  return ListResponse(std::move(items), static_cast<int64_t>(hits.size()),
                      q.limit);
}

}  // namespace polar::sim
