#include "daemon/webhooks/webhook_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "daemon/schedule/units.h"
#include "daemon/webhooks/webhook_types.h"
#include "exporters/log.h"

namespace polar {
namespace {

constexpr std::string_view kPath = "/webhooks/polar";
constexpr std::string_view kTestExpectPath = "/_test/webhooks/expect";
constexpr std::string_view kEndpoints = "/v1/webhooks/endpoints";
// Polar keeps at most a few hundred endpoints per organization; past 100
// pages of 100 the listing is not ours to walk.
constexpr int64_t kMaxEndpointPages = 100;

// The listener's limits (daemon/net/http_server.h; docs/webhooks.md,
// "Limits"). Polar's production worker runs 16 threads on the webhooks
// queue: 64 connections from one address leave room for several workers
// behind one NAT or proxy and for retries while connections close; 512 in all
// hold 260 slow bodies (the tested attack) with room to spare, and an idle
// or half-sent connection is evicted, oldest first, when they are all taken.
// Memory: at most 512 x (head + max_body_bytes) in buffers, 140 MiB with the
// defaults, only while that many bodies arrive at the minimum rate.
constexpr std::size_t kMaxConnections = 512;
constexpr std::size_t kMaxConnectionsPerIp = 64;
// Room for the request line on top of webhooks.max_header_bytes, so that the
// receiver's own check (431, counted as a malformed delivery) is what refuses
// oversized headers; only a head over both is refused by the server.
constexpr std::size_t kRequestLineBytes = 8 * 1024;

// Registration retries: 5 s, doubling, at most 5 min apart. A 4xx (bad URL,
// missing webhooks:write scope) will not fix itself, but retrying slowly
// costs one request per 5 min and picks up a fixed token after a reload.
constexpr Duration kRetryFirst = std::chrono::seconds(5);
constexpr Duration kRetryMax = std::chrono::minutes(5);

WebhookCorrelatorOptions CorrelatorOptions(const WebhooksConfig& c) {
  WebhookCorrelatorOptions o;
  o.deadline = c.deadline;
  o.max_expectations = c.max_expectations;
  o.unmatched_after = c.unmatched_after;
  return o;
}

WebhookReceiverOptions ReceiverOptions(const WebhooksConfig& c) {
  WebhookReceiverOptions o;
  o.tolerance = c.tolerance;
  o.max_body_bytes = c.max_body_bytes;
  o.max_header_bytes = c.max_header_bytes;
  o.remember_ids = c.remember_ids;
  return o;
}

// The start of a response body for a log line, printable ASCII only.
std::string Excerpt(const std::string& body) {
  std::string out;
  for (char c : body.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  return out;
}

}  // namespace

WebhookService::WebhookService(EventLoop& loop, const Clock& clock,
                               prometheus::Registry& registry,
                               TransportGetter transport)
    : loop_(loop),
      clock_(clock),
      registry_(registry),
      transport_(std::move(transport)),
      metrics_(registry),
      correlator_(metrics_, WebhookCorrelatorOptions{}),
      receiver_(clock, metrics_, correlator_, WebhookReceiverOptions{}) {
  const char* hooks = std::getenv("POLAR_LOADD_TEST_HOOKS");
  test_hooks_ = hooks && std::string_view(hooks) == "1";
  if (test_hooks_) {
    if (const char* n = std::getenv("POLAR_LOADD_TEST_WEBHOOK_FAIL_FIRST"))
      fail_first_ = std::strtol(n, nullptr, 10);
    SPDLOG_WARN(
        "test hooks enabled: {} on the webhook listener; the first {} "
        "accepted deliveries are answered 503",
        kTestExpectPath, fail_first_);
  }
  tick_timer_ = loop_.Every(std::chrono::seconds(1), [this] { Tick(); });
}

WebhookService::~WebhookService() {
  tick_timer_.Cancel();
  retry_timer_.Cancel();
}

bool WebhookService::Prepare(const WebhooksConfig& config,
                             std::unique_ptr<HttpServer>* server,
                             std::string* error) {
  server->reset();
  if (!config.enabled) return true;
  if (server_ && config_.enabled && config_.listen == config.listen)
    return true;
  HttpServerOptions options;
  options.listen = config.listen;
  options.name = "webhooks";
  options.registry = &registry_;
  options.max_body_bytes = config.max_body_bytes;
  options.max_head_bytes = config.max_header_bytes + kRequestLineBytes;
  options.max_connections = kMaxConnections;
  options.max_connections_per_ip = kMaxConnectionsPerIp;
  options.head_handler = [this](const HttpServerRequest& request) {
    return HandleHead(request);
  };
  *server = HttpServer::Start(
      loop_, options,
      [this](const HttpServerRequest& request) { return Handle(request); },
      error);
  if (!*server) {
    *error = "webhooks.listen: " + *error;
    return false;
  }
  return true;
}

void WebhookService::Apply(const WebhooksConfig& config,
                           std::unique_ptr<HttpServer> server) {
  if (!config.enabled) {
    if (config_.enabled) {
      SPDLOG_INFO("webhook receiver stopped ([webhooks] removed)");
      server_.reset();
      correlator_.Disable();
      ++generation_;
      retry_timer_.Cancel();
      if (!endpoint_id_.empty()) DeleteEndpoint(endpoint_id_, endpoint_url_);
      endpoint_id_.clear();
    }
    config_ = config;
    return;
  }
  const bool was_enabled = config_.enabled;
  const std::string old_url = was_enabled ? config_.register_url : "";
  if (server) {
    server_ = std::move(server);  // the old listener, if any, closes here
    SPDLOG_INFO("webhook receiver on http://{}{}",
                server_->address().ToString(), kPath);
  }
  server_->set_max_body_bytes(config.max_body_bytes);
  server_->set_max_head_bytes(config.max_header_bytes + kRequestLineBytes);
  correlator_.SetOptions(CorrelatorOptions(config));
  receiver_.SetOptions(ReceiverOptions(config));
  config_ = config;
  if (config.register_url.empty()) {
    if (!old_url.empty()) {
      ++generation_;
      retry_timer_.Cancel();
      if (!endpoint_id_.empty()) DeleteEndpoint(endpoint_id_, endpoint_url_);
      endpoint_id_.clear();
    }
    receiver_.SetKey(config.key);
  } else if (config.register_url != old_url) {
    StartRegistration();
  }
  SyncCorrelator();
}

void WebhookService::SyncCorrelator() {
  // Without a key every delivery is refused, so a webhook that "never
  // arrives" then says nothing about Polar: while registration is pending
  // or failing (e.g. Polar refuses the URL), calls are not announced and
  // nothing can turn lost. Without this, a box whose registration failed
  // counted every expected webhook as lost after the deadline and paged
  // PolarLoaddWebhookLoss.
  if (config_.enabled && receiver_.has_key() && !stopped_) {
    correlator_.Enable();
  } else {
    correlator_.Disable();
  }
}

void WebhookService::Stop() {
  stopped_ = true;
  ++generation_;
  retry_timer_.Cancel();
  if (!endpoint_id_.empty()) DeleteEndpoint(endpoint_id_, endpoint_url_);
  endpoint_id_.clear();
}

WebhookExpectations* WebhookService::expectations() {
  return config_.enabled ? &correlator_ : nullptr;
}

const ListenAddress* WebhookService::address() const {
  return server_ && config_.enabled ? &server_->address() : nullptr;
}

void WebhookService::Tick() { correlator_.Expire(clock_.Now()); }

std::optional<HttpServerResponse> WebhookService::Route(
    const HttpServerRequest& request) const {
  HttpServerResponse response;
  if (request.path != kPath) {
    if (test_hooks_ && request.path == kTestExpectPath) return std::nullopt;
    response.status = 404;
    response.body = "not found; Polar's webhooks go to POST /webhooks/polar\n";
    return response;
  }
  if (request.method != "POST") {
    response.status = 405;
    response.headers.emplace_back("Allow", "POST");
    return response;
  }
  return std::nullopt;
}

WebhookDelivery WebhookService::DeliveryOf(const HttpServerRequest& request) {
  WebhookDelivery delivery;
  delivery.id = request.Header("webhook-id");
  delivery.timestamp = request.Header("webhook-timestamp");
  delivery.signature = request.Header("webhook-signature");
  delivery.body = request.body;
  delivery.header_bytes = request.header_bytes;
  return delivery;
}

std::optional<HttpServerResponse> WebhookService::HandleHead(
    const HttpServerRequest& request) {
  if (std::optional<HttpServerResponse> other = Route(request)) return other;
  if (request.path != kPath) return std::nullopt;  // the test hook
  WebhookDelivery head = DeliveryOf(request);
  head.body_too_large = request.content_length &&
                        *request.content_length > config_.max_body_bytes;
  if (std::optional<WebhookAnswer> answer = receiver_.HandleHead(head))
    return Answer(*answer);
  return std::nullopt;
}

HttpServerResponse WebhookService::Handle(const HttpServerRequest& request) {
  if (std::optional<HttpServerResponse> other = Route(request)) return *other;
  if (request.path != kPath) return HandleTestExpect(request);
  return Answer(receiver_.Handle(DeliveryOf(request)));
}

HttpServerResponse WebhookService::Answer(const WebhookAnswer& answer) {
  HttpServerResponse response;
  response.status = answer.status;
  // Polar stores the first 2 KiB of the answer with the delivery: the
  // verdict shows up in its delivery log.
  response.body = std::string(WebhookVerdictName(answer.verdict)) + "\n";
  if (answer.status >= 400) {
    // Error details go to the log, rate-limited per verdict; nothing from
    // the request is quoted.
    uint64_t suppressed = 0;
    std::string key =
        fmt::format("webhooks/{}", WebhookVerdictName(answer.verdict));
    if (AllowErrorLog(key, clock_.Now(), &suppressed)) {
      std::string why;
      switch (answer.verdict) {
        case WebhookVerdict::kBadSignature:
          why = receiver_.has_key()
                    ? "no v1 signature matched the key from webhooks.secret "
                      "(is it this endpoint's secret, in the right "
                      "secret_format?)"
                    : "no key yet (the endpoint registration has not "
                      "completed)";
          break;
        case WebhookVerdict::kStale:
          why = fmt::format(
              "webhook-timestamp is more than {} from this machine's clock "
              "(NTP?)",
              FormatDuration(config_.tolerance));
          break;
        case WebhookVerdict::kReplayed:
          why =
              "a delivery with the same webhook-id and timestamp was already "
              "accepted";
          break;
        default:
          why = fmt::format(
              "HTTP {}: body over webhooks.max_body_bytes, headers over "
              "max_header_bytes, missing webhook-id/webhook-timestamp, or a "
              "body that is not Polar's envelope",
              answer.status);
          break;
      }
      ScopedLogFields fields(
          {{"POLAR_EVENT", "webhook_rejected"},
           {"POLAR_WEBHOOK_VERDICT",
            std::string(WebhookVerdictName(answer.verdict))}});
      SPDLOG_WARN("webhook rejected ({}, type {}): {}{}",
                  WebhookVerdictName(answer.verdict),
                  WebhookTypeName(answer.type), why,
                  SuppressedSuffix(suppressed));
    }
  } else if (fail_first_ > 0) {
    --fail_first_;
    response.status = 503;
    response.body = "test hook: answer withheld\n";
  }
  return response;
}

HttpServerResponse WebhookService::HandleTestExpect(
    const HttpServerRequest& request) {
  HttpServerResponse response;
  response.content_type = "application/json";
  if (request.method != "POST") {
    response.status = 405;
    response.headers.emplace_back("Allow", "POST");
    return response;
  }
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() ||
      !body.contains("expectations") || !body["expectations"].is_array()) {
    response.status = 400;
    response.body = R"({"error":"expected {\"expectations\":[...]}"})";
    return response;
  }
  const MonoTime now = clock_.Now();
  const WallTime wall_now = clock_.WallNow();
  int accepted = 0;
  for (const auto& e : body["expectations"]) {
    if (!e.is_object() || !e.contains("type") || !e["type"].is_string() ||
        !e.contains("key") || !e["key"].is_string() ||
        !e.contains("caused_at_unix_ms") ||
        !e["caused_at_unix_ms"].is_number()) {
      continue;
    }
    WallTime caused_wall{std::chrono::duration_cast<WallTime::duration>(
        std::chrono::milliseconds(e["caused_at_unix_ms"].get<int64_t>()))};
    MonoTime caused =
        now - std::chrono::duration_cast<Duration>(wall_now - caused_wall);
    correlator_.Expect(e["type"].get<std::string>(),
                       e["key"].get<std::string>(), caused);
    ++accepted;
  }
  response.body = fmt::format(R"({{"accepted":{}}})", accepted);
  return response;
}

// ---- Registration -----------------------------------------------------------

void WebhookService::StartRegistration() {
  ++generation_;
  retry_timer_.Cancel();
  retry_delay_ = Duration::zero();
  if (!endpoint_id_.empty()) DeleteEndpoint(endpoint_id_, endpoint_url_);
  endpoint_id_.clear();
  receiver_.SetKey("");
  SyncCorrelator();
  metrics_.registered().Set(0);
  // Endpoints with our URL left by an earlier run (a crash skips the delete
  // at stop) would keep delivering with a secret we no longer know: every
  // one a bad_signature. They are ours by definition (they point at this
  // receiver), so they go first; then ours is created.
  ListStaleEndpoints(1, std::make_shared<std::vector<std::string>>());
}

void WebhookService::ListStaleEndpoints(
    int64_t page, std::shared_ptr<std::vector<std::string>> stale) {
  // Every page (Polar answers at most 100 a page, docs/polar-api.md §0), and
  // the deletes only after the last one: deleting while paging would move
  // later endpoints onto pages already read.
  const uint64_t generation = generation_;
  const std::string url = config_.register_url;
  Request list;
  list.method = Method::kGet;
  list.path = fmt::format("{}?limit=100&page={}", kEndpoints, page);
  list.intended = clock_.Now();
  transport_().Send(std::move(list), [this, generation, url, page,
                                      stale](Response&& response) {
    if (generation != generation_) return;
    int64_t max_page = 0;
    bool read = false;
    if (response.transport == Outcome::kOk && response.status == 200) {
      auto body = nlohmann::json::parse(response.body, nullptr, false);
      if (body.is_object() && body.contains("items") &&
          body["items"].is_array()) {
        read = true;
        for (const auto& item : body["items"]) {
          if (item.is_object() && item.value("url", "") == url &&
              item.contains("id") && item["id"].is_string())
            stale->push_back(item["id"].get<std::string>());
        }
        if (auto p = body.find("pagination");
            p != body.end() && p->is_object() &&
            p->value("max_page", nlohmann::json()).is_number_integer())
          max_page = (*p)["max_page"].get<int64_t>();
      }
    }
    if (!read) {
      SPDLOG_WARN(
          "listing webhook endpoints failed (HTTP {}{}{}); endpoints left by "
          "an earlier run, if any, stay",
          response.status, response.error.empty() ? "" : ", ", response.error);
    } else if (page < max_page && page < kMaxEndpointPages) {
      ListStaleEndpoints(page + 1, stale);
      return;
    }
    for (const std::string& id : *stale) {
      SPDLOG_INFO("deleting webhook endpoint {} left by an earlier run for {}",
                  id, url);
      DeleteEndpoint(id, url);
    }
    CreateEndpoint();
  });
}

void WebhookService::CreateEndpoint() {
  nlohmann::json events = nlohmann::json::array();
  for (WebhookType type : CorrelatedWebhookTypes())
    events.push_back(std::string(WebhookTypeName(type)));
  nlohmann::json body = {{"url", config_.register_url},
                         {"format", "raw"},
                         {"events", events},
                         {"name", "polar-loadd"}};
  Request request;
  request.method = Method::kPost;
  request.path = std::string(kEndpoints);
  request.body = body.dump();
  request.intended = clock_.Now();
  const uint64_t generation = generation_;
  transport_().Send(std::move(request),
                    [this, generation](Response&& response) {
                      OnCreated(std::move(response), generation);
                    });
}

void WebhookService::OnCreated(Response&& response, uint64_t generation) {
  std::string id, secret;
  if (response.transport == Outcome::kOk && response.status == 201) {
    auto body = nlohmann::json::parse(response.body, nullptr, false);
    if (body.is_object() && body.contains("id") && body["id"].is_string() &&
        body.contains("secret") && body["secret"].is_string()) {
      id = body["id"].get<std::string>();
      secret = body["secret"].get<std::string>();
    }
  }
  // Polar's answer carries the secret in clear: from here on no log line may
  // show it.
  if (!secret.empty()) RegisterSecret(secret);
  if (generation != generation_) {
    // Stopped, or the URL changed while this was in flight: the endpoint is
    // not wanted any more.
    if (!id.empty()) DeleteEndpoint(id, "");
    return;
  }
  if (id.empty() || secret.empty()) {
    SPDLOG_WARN(
        "registering the webhook endpoint {} failed (HTTP {}{}{}): {}; "
        "retrying",
        config_.register_url, response.status,
        response.error.empty() ? "" : ", ", response.error,
        Excerpt(response.body));
    ScheduleRetry(generation);
    return;
  }
  endpoint_id_ = id;
  endpoint_url_ = config_.register_url;
  receiver_.SetKey(secret);  // Polar's form: the UTF-8 bytes of the string
  SyncCorrelator();
  metrics_.registered().Set(1);
  retry_delay_ = Duration::zero();
  SPDLOG_INFO("webhook endpoint {} registered in Polar for {}", id,
              config_.register_url);
}

void WebhookService::ScheduleRetry(uint64_t generation) {
  retry_delay_ = retry_delay_ == Duration::zero()
                     ? kRetryFirst
                     : std::min<Duration>(retry_delay_ * 2, kRetryMax);
  retry_timer_ = loop_.After(retry_delay_, [this, generation] {
    if (generation == generation_) CreateEndpoint();
  });
}

void WebhookService::DeleteEndpoint(const std::string& id,
                                    const std::string& url) {
  Request request;
  request.method = Method::kDelete;
  request.path = std::string(kEndpoints) + "/" + id;
  request.intended = clock_.Now();
  transport_().Send(std::move(request), [this, id, url](Response&& response) {
    if (response.transport == Outcome::kOk &&
        (response.status == 204 || response.status == 404)) {
      SPDLOG_INFO("webhook endpoint {}{}{} deleted", id,
                  url.empty() ? "" : " for ", url);
      if (endpoint_id_.empty()) metrics_.registered().Set(0);
    } else {
      SPDLOG_WARN(
          "deleting webhook endpoint {} failed (HTTP {}{}{}); delete it in "
          "Polar's dashboard",
          id, response.status, response.error.empty() ? "" : ", ",
          response.error);
    }
  });
}

}  // namespace polar
