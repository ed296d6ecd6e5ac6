#include "sim/webhooks.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cmath>

#include "sim/validation.h"

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

// settings.WEBHOOK_* (server/polar/config.py).
constexpr int kMaxAttempts = 10;
constexpr int kFailureThreshold = 10;
constexpr auto kFifoGuardDelay = std::chrono::milliseconds(300);
constexpr auto kFifoGuardMaxAge = std::chrono::minutes(1);

bool IsEventType(const std::string& t) {
  return std::any_of(std::begin(kEventTypes), std::end(kEventTypes),
                     [&](const char* e) { return t == e; });
}

struct ParsedUrl {
  std::string scheme;
  std::string host;  // without brackets
};

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

// Polar's _is_blocked_webhook_host: localhost names and any IP literal that is
// not globally routable.
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

std::string Base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                            static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

std::size_t CollectBody(char* data, std::size_t size, std::size_t n,
                        void* user) {
  auto* out = static_cast<std::string*>(user);
  // Polar keeps the first 2048 characters of the receiver's answer.
  std::size_t room = out->size() < 2048 ? 2048 - out->size() : 0;
  out->append(data, std::min(room, size * n));
  return size * n;
}

int AbortOnStop(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<JobContext*>(user)->stopping() ? 1 : 0;
}

}  // namespace

struct WebhookService::Event {
  std::string id;
  std::string endpoint_id;
  std::string type;
  SysMicros created_at{};
  SteadyClock::time_point created_steady{};
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

std::string SignWebhook(const std::string& secret, const std::string& msg_id,
                        int64_t timestamp, const std::string& body) {
  std::string to_sign = msg_id + "." + std::to_string(timestamp) + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(to_sign.data()), to_sign.size(),
       mac, &mac_len);
  return "v1," + Base64(mac, mac_len);
}

Duration WebhookBackoff(int attempts, std::mt19937_64& rng) {
  double ms = std::min(2000.0 * std::pow(2.0, std::min(attempts, 32)), 1.2e6);
  ms = ms / 2 + std::uniform_real_distribution<double>(0, ms / 2)(rng);
  return std::chrono::duration_cast<Duration>(
      std::chrono::duration<double, std::milli>(ms));
}

WebhookService::WebhookService(const WebhookOptions& options,
                               const Organization& org, Worker* worker)
    : options_(options), org_(org), worker_(worker) {}

int WebhookService::Send(const std::string& type, const json& data,
                         std::function<void()> on_delivered) {
  const SysMicros now = NowMicros();
  nlohmann::ordered_json envelope;
  envelope["type"] = type;
  envelope["timestamp"] = FormatTimestamp(now);
  envelope["data"] = data;
  // Frozen at enqueue: every retry resends identical bytes.
  std::string payload =
      envelope.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::vector<std::shared_ptr<Event>> queued;
  {
    std::lock_guard lock(mutex_);
    for (const std::string& id : endpoint_order_) {
      auto& ep = endpoints_.at(id);
      if (!ep->enabled || std::find(ep->events.begin(), ep->events.end(),
                                    type) == ep->events.end()) {
        continue;
      }
      if (ep->unfinished >= options_.max_pending) {
        ++dropped_;
        continue;
      }
      auto ev = std::make_shared<Event>();
      ev->id = NewId();
      ev->endpoint_id = ep->id;
      ev->type = type;
      ev->created_at = now;
      ev->created_steady = SteadyClock::now();
      ev->payload = payload;
      if (ep->format == "raw") ev->on_delivered = on_delivered;
      ep->unattempted.push_back(ev);
      ++ep->unfinished;
      queued.push_back(ev);
    }
  }
  for (auto& ev : queued) {
    if (!worker_->Enqueue(
            kQueueWebhooks, "webhook_event.send",
            [this, ev](JobContext& ctx) { return RunSend(ev, ctx); })) {
      std::lock_guard lock(mutex_);
      if (auto it = endpoints_.find(ev->endpoint_id); it != endpoints_.end()) {
        auto& q = it->second->unattempted;
        q.erase(std::remove(q.begin(), q.end(), ev), q.end());
        --it->second->unfinished;
      }
      ++dropped_;
    }
  }
  // With no endpoint to deliver to, Polar's checkout stream still says
  // "delivered" right away (docs/polar-api.md §2.6, the checkout
  // stream).
  if (queued.empty() && on_delivered) on_delivered();
  return static_cast<int>(queued.size());
}

JobResult WebhookService::RunSend(const std::shared_ptr<Event>& ev,
                                  JobContext& ctx) {
  std::string url, secret;
  {
    std::lock_guard lock(mutex_);
    auto it = endpoints_.find(ev->endpoint_id);
    if (it == endpoints_.end() || it->second->deleted)
      return JobResult::Skipped();
    Endpoint& ep = *it->second;
    auto finish_skipped = [&] {
      ev->skipped = true;
      ep.unattempted.erase(
          std::remove(ep.unattempted.begin(), ep.unattempted.end(), ev),
          ep.unattempted.end());
      --ep.unfinished;
      ++skipped_;
      return JobResult::Skipped();
    };
    if (!ep.enabled) return finish_skipped();
    if (ev->succeeded) return JobResult::Done();
    // FIFO guard: wait while older events of this endpoint from the last
    // minute have not been attempted. The delay is time-scaled; the one-minute
    // window is not, so ordering holds whatever the receiver's real speed
    // (Polar's retry budget, 200 x 300 ms, is that same minute).
    auto now = SteadyClock::now();
    auto age_limit = now - kFifoGuardMaxAge;
    int earlier = 0;
    for (const auto& other : ep.unattempted) {
      if (other == ev) break;
      if (other->created_steady >= age_limit) ++earlier;
    }
    if (earlier > 0 && now - ev->created_steady < kFifoGuardMaxAge) {
      ++ev->ordering_retries;
      Duration delay =
          std::min<Duration>(kFifoGuardDelay * earlier, kFifoGuardMaxAge);
      return JobResult::Retry(std::max<Duration>(options_.scale(delay),
                                                 std::chrono::milliseconds(1)));
    }
    url = ep.url;
    secret = ep.secret;
  }
  ctx.Work();
  PostResult result = Post(url, ev->id, secret, ev->payload, ctx);

  std::function<void()> delivered;
  std::optional<JobResult> out;
  {
    std::lock_guard lock(mutex_);
    ++ev->attempts;
    ev->last_http_code = result.http_code;
    Delivery d;
    d.id = NewId();
    d.created_at = NowMicros();
    d.succeeded = result.ok;
    d.http_code = result.http_code;
    if (!result.response.empty()) d.response = result.response;
    d.event = ev;
    d.endpoint_id = ev->endpoint_id;
    log_.push_back(std::move(d));
    while (log_.size() > options_.delivery_log) log_.pop_front();

    auto it = endpoints_.find(ev->endpoint_id);
    Endpoint* ep = it == endpoints_.end() ? nullptr : it->second.get();
    if (ep && !ev->attempted) {
      ep->unattempted.erase(
          std::remove(ep->unattempted.begin(), ep->unattempted.end(), ev),
          ep->unattempted.end());
    }
    ev->attempted = true;
    auto complete = [&](bool ok) {
      ev->succeeded = ok;
      if (!ep) return;
      --ep->unfinished;
      ep->recent.push_back(ok);
      while (ep->recent.size() > kFailureThreshold) ep->recent.pop_front();
    };
    if (result.ok) {
      ++delivered_;
      complete(true);
      delivered = std::move(ev->on_delivered);
      out = JobResult::Done();
    } else {
      ++failed_attempts_;
      if (ev->attempts >= kMaxAttempts) {
        ++gave_up_;
        complete(false);
        out = JobResult::Failed();
      } else {
        out = JobResult::Retry(
            options_.scale(WebhookBackoff(ev->attempts, rng_)));
      }
    }
  }
  if (delivered) {
    worker_->Enqueue(kQueueHigh, "webhook_event.success",
                     [delivered = std::move(delivered)](JobContext& c) {
                       c.Work();
                       delivered();
                       return JobResult::Done();
                     });
  }
  if (out->kind == JobResult::Kind::kFailed) {
    std::string endpoint_id = ev->endpoint_id;
    worker_->Enqueue(kQueueHigh, "webhook_event.failed",
                     [this, endpoint_id](JobContext& c) {
                       c.Work();
                       return RunFailed(endpoint_id);
                     });
  }
  return *out;
}

JobResult WebhookService::RunFailed(const std::string& endpoint_id) {
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(endpoint_id);
  if (it == endpoints_.end()) return JobResult::Done();
  Endpoint& ep = *it->second;
  if (!ep.enabled) return JobResult::Done();
  if (ep.recent.size() >= kFailureThreshold &&
      std::all_of(ep.recent.begin(), ep.recent.end(),
                  [](bool ok) { return !ok; })) {
    // Polar disables the endpoint and marks its pending events skipped (they
    // are skipped when their job next runs).
    ep.enabled = false;
    ep.modified_at = NowMicros();
    ++disabled_;
  }
  return JobResult::Done();
}

WebhookService::PostResult WebhookService::Post(const std::string& url,
                                                const std::string& id,
                                                const std::string& secret,
                                                const std::string& payload,
                                                JobContext& ctx) {
  PostResult out;
  ParsedUrl parsed;
  if (!ParseUrl(url, &parsed)) {
    out.response = "invalid URL";
    return out;
  }
  if (!IsLoopbackHost(parsed.host) && !options_.deliver_external) {
    // Polar in development: "never makes the HTTP call and records a fake
    // 200". polar-sim never sends traffic off the machine unless told to.
    out.http_code = 200;
    out.ok = true;
    ++simulated_;
    return out;
  }
  thread_local struct Handle {
    CURL* curl = curl_easy_init();
    ~Handle() { curl_easy_cleanup(curl); }
  } handle;
  CURL* curl = handle.curl;
  if (!curl) {
    out.response = "curl_easy_init failed";
    return out;
  }
  curl_easy_reset(curl);
  const int64_t ts = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  curl_slist* headers = nullptr;
  for (const std::string& h :
       {std::string("user-agent: polar.sh webhooks"),
        std::string("content-type: application/json"), "webhook-id: " + id,
        "webhook-timestamp: " + std::to_string(ts),
        "webhook-signature: " + SignWebhook(secret, id, ts, payload),
        std::string("Expect:")}) {
    headers = curl_slist_append(headers, h.c_str());
  }
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(payload.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(
      curl, CURLOPT_TIMEOUT_MS,
      static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                            options_.timeout)
                            .count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &CollectBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &AbortOnStop);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &ctx);
  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    out.response = curl_easy_strerror(rc);
    return out;
  }
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  out.http_code = static_cast<int>(code);
  out.response = std::move(body);
  // httpx raise_for_status: anything outside 2xx (redirects included) fails.
  out.ok = code >= 200 && code < 300;
  return out;
}

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

SimResponse PathUuidError(const std::string& id) {
  ValidationErrors e;
  e.Add(Loc({"path", "id"}), "uuid_parsing", "Input should be a valid UUID",
        id);
  return e.Response();
}

}  // namespace

SimResponse WebhookService::CreateEndpoint(const SimRequest& request) {
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) return JsonDecodeError("Expecting value");
  ValidationErrors errors;
  if (!body.is_object()) {
    errors.Add(Loc({"body"}), "model_attributes_type",
               "Input should be a valid dictionary or object to extract fields "
               "from",
               body);
    return errors.Response();
  }
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
  ep->created_at = NowMicros();
  ep->url = body["url"].get<std::string>();
  ep->name = OptString(body.value("name", json()));
  ep->format = body["format"].get<std::string>();
  ep->events = std::move(events);
  ep->secret = body.contains("secret") && body["secret"].is_string()
                   ? body["secret"].get<std::string>()
                   : RandomToken("whsec_", 43);
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
  SimResponse r;
  r.status = 201;
  r.body = EndpointJson(*ep).dump(-1, ' ', false,
                                  nlohmann::json::error_handler_t::replace);
  return r;
}

SimResponse WebhookService::ListEndpoints(const SimRequest& request) {
  int64_t page = 1, limit = 10;
  ValidationErrors errors;
  for (auto [name, out] :
       {std::pair<const char*, int64_t*>{"page", &page}, {"limit", &limit}}) {
    if (const std::string* v = request.Query(name)) {
      char* end = nullptr;
      long long n = std::strtoll(v->c_str(), &end, 10);
      if (end == v->c_str() || *end || n <= 0) {
        errors.Add(Loc({"query", name}), "greater_than",
                   "Input should be greater than 0", *v, {{"gt", 0}});
      } else {
        *out = n;
      }
    }
  }
  if (!errors.empty()) return errors.Response();
  limit = std::min(limit, kMaxPageLimit);
  std::lock_guard lock(mutex_);
  std::vector<const Endpoint*> live;
  for (const std::string& id : endpoint_order_) {
    const auto& ep = endpoints_.at(id);
    if (!ep->deleted) live.push_back(ep.get());
  }
  json items = json::array();
  const PageRange range = PageOf(page, limit, live.size());
  for (std::size_t i = range.begin; i < range.end; ++i)
    items.push_back(EndpointJson(*live[i]));
  int64_t total = static_cast<int64_t>(live.size());
  SimResponse r;
  r.body =
      json{
          {"items", items},
          {"pagination",
           {{"total_count", total}, {"max_page", (total + limit - 1) / limit}}}}
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

SimResponse WebhookService::GetEndpoint(const std::string& id) {
  if (!IsUuid(id)) return PathUuidError(id);
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(id);
  if (it == endpoints_.end() || it->second->deleted) return ResourceNotFound();
  SimResponse r;
  r.body = EndpointJson(*it->second)
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

SimResponse WebhookService::UpdateEndpoint(const SimRequest& request,
                                           const std::string& id) {
  if (!IsUuid(id)) return PathUuidError(id);
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) return JsonDecodeError("Expecting value");
  ValidationErrors errors;
  if (!body.is_object()) {
    errors.Add(Loc({"body"}), "model_attributes_type",
               "Input should be a valid dictionary or object to extract fields "
               "from",
               body);
    return errors.Response();
  }
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
  ep.modified_at = NowMicros();
  SimResponse r;
  r.body = EndpointJson(ep).dump(-1, ' ', false,
                                 nlohmann::json::error_handler_t::replace);
  return r;
}

SimResponse WebhookService::ResetSecret(const std::string& id) {
  if (!IsUuid(id)) return PathUuidError(id);
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(id);
  if (it == endpoints_.end() || it->second->deleted) return ResourceNotFound();
  it->second->secret = RandomToken("whsec_", 43);
  it->second->modified_at = NowMicros();
  SimResponse r;
  r.body = EndpointJson(*it->second)
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

SimResponse WebhookService::DeleteEndpoint(const std::string& id) {
  if (!IsUuid(id)) return PathUuidError(id);
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
  int64_t page = 1, limit = 10;
  if (const std::string* v = request.Query("page"))
    page = std::max(1LL, std::strtoll(v->c_str(), nullptr, 10));
  if (const std::string* v = request.Query("limit"))
    limit = std::clamp<int64_t>(std::strtoll(v->c_str(), nullptr, 10), 1,
                                kMaxPageLimit);
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
  const PageRange range = PageOf(page, limit, hits.size());
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
  int64_t total = static_cast<int64_t>(hits.size());
  SimResponse r;
  r.body =
      json{
          {"items", items},
          {"pagination",
           {{"total_count", total}, {"max_page", (total + limit - 1) / limit}}}}
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

void WebhookService::AppendMetrics(std::string* out) const {
  *out +=
      "# HELP polar_sim_webhook_attempts_total Webhook HTTP attempts by "
      "result.\n# TYPE polar_sim_webhook_attempts_total counter\n";
  *out += fmt::format(
      "polar_sim_webhook_attempts_total{{result=\"delivered\"}} {}\n",
      delivered_.load());
  *out +=
      fmt::format("polar_sim_webhook_attempts_total{{result=\"failed\"}} {}\n",
                  failed_attempts_.load());
  *out +=
      "# HELP polar_sim_webhook_events_total Webhook events by final state.\n"
      "# TYPE polar_sim_webhook_events_total counter\n";
  *out +=
      fmt::format("polar_sim_webhook_events_total{{state=\"gave_up\"}} {}\n",
                  gave_up_.load());
  *out +=
      fmt::format("polar_sim_webhook_events_total{{state=\"skipped\"}} {}\n",
                  skipped_.load());
  *out +=
      fmt::format("polar_sim_webhook_events_total{{state=\"dropped\"}} {}\n",
                  dropped_.load());
  *out += fmt::format(
      "polar_sim_webhook_events_total{{state=\"simulated_external\"}} {}\n",
      simulated_.load());
  *out +=
      "# HELP polar_sim_webhook_endpoints_disabled_total Endpoints disabled "
      "after consecutive failures.\n"
      "# TYPE polar_sim_webhook_endpoints_disabled_total counter\n";
  *out += fmt::format("polar_sim_webhook_endpoints_disabled_total {}\n",
                      disabled_.load());
}

}  // namespace polar::sim
