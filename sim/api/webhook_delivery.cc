// Webhook delivery: Send() queues an event per subscribed endpoint, RunSend()
// is the webhook_event.send job (FIFO guard, signed POST, retries),
// RunFailed() the webhook_event.failed job (auto-disable).
#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <cmath>

#include "sim/api/webhook_urls.h"
#include "sim/api/webhooks.h"

namespace polar::sim {
namespace {

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

std::string SignWebhook(const std::string& secret, const std::string& msg_id,
                        int64_t timestamp, const std::string& body) {
  const std::string to_sign =
      msg_id + "." + std::to_string(timestamp) + "." + body;
  // EVP_MAC (OpenSSL 3) rather than the deprecated one-shot HMAC(). The MAC
  // algorithm is fetched once per thread: fetching takes a global lock.
  thread_local struct Mac {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    ~Mac() { EVP_MAC_free(mac); }
  } fetched;
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t out_len = 0;
  EVP_MAC_CTX* ctx = fetched.mac ? EVP_MAC_CTX_new(fetched.mac) : nullptr;
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  const bool ok =
      ctx &&
      EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(secret.data()),
                   secret.size(), params) == 1 &&
      EVP_MAC_update(ctx,
                     reinterpret_cast<const unsigned char*>(to_sign.data()),
                     to_sign.size()) == 1 &&
      EVP_MAC_final(ctx, out, &out_len, sizeof out) == 1;
  EVP_MAC_CTX_free(ctx);
  // A failure here is OpenSSL without HMAC-SHA256; the signature then fails
  // verification at the receiver, a counted outcome there.
  if (!ok) return "v1,";
  return "v1," + Base64(out, out_len);
}

Duration WebhookBackoff(int attempts, std::mt19937_64& rng) {
  double ms = std::min(2000.0 * std::pow(2.0, std::min(attempts, 32)), 1.2e6);
  ms = ms / 2 + std::uniform_real_distribution<double>(0, ms / 2)(rng);
  return std::chrono::duration_cast<Duration>(
      std::chrono::duration<double, std::milli>(ms));
}

WebhookService::WebhookService(const WebhookOptions& options,
                               const Organization& org, Worker* worker,
                               const Clock& clock,
                               prometheus::Registry& registry)
    : options_(options), org_(org), worker_(worker), clock_(clock) {
  auto& attempts = prometheus::BuildCounter()
                       .Name("polar_sim_webhook_attempts_total")
                       .Help("Webhook HTTP attempts by result.")
                       .Register(registry);
  delivered_ = &attempts.Add({{"result", "delivered"}});
  failed_attempts_ = &attempts.Add({{"result", "failed"}});
  auto& events = prometheus::BuildCounter()
                     .Name("polar_sim_webhook_events_total")
                     .Help("Webhook events by final state.")
                     .Register(registry);
  gave_up_ = &events.Add({{"state", "gave_up"}});
  skipped_ = &events.Add({{"state", "skipped"}});
  dropped_ = &events.Add({{"state", "dropped"}});
  simulated_ = &events.Add({{"state", "simulated_external"}});
  disabled_ = &prometheus::BuildCounter()
                   .Name("polar_sim_webhook_endpoints_disabled_total")
                   .Help("Endpoints disabled after consecutive failures.")
                   .Register(registry)
                   .Add({});
}

int WebhookService::Send(const std::string& type, const json& data,
                         std::function<void()> on_delivered) {
  const SysMicros now = clock_.WallNow();
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
        dropped_->Increment();
        continue;
      }
      auto ev = std::make_shared<Event>();
      ev->id = NewId();
      ev->endpoint_id = ep->id;
      ev->type = type;
      ev->created_at = now;
      ev->created_steady = clock_.Now();
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
      dropped_->Increment();
    }
  }
  // With no endpoint to deliver to, Polar's checkout stream still says
  // "delivered" right away (docs/polar-api.md §2.6, the checkout stream).
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
      skipped_->Increment();
      return JobResult::Skipped();
    };
    if (!ep.enabled) return finish_skipped();
    if (ev->succeeded) return JobResult::Done();
    // FIFO guard: wait while older events of this endpoint from the last
    // minute have not been attempted. The delay is time-scaled; the one-minute
    // window is not, so ordering holds whatever the receiver's real speed
    // (Polar's retry budget, 200 x 300 ms, is that same minute).
    auto now = clock_.Now();
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
    d.created_at = clock_.WallNow();
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
      while (ep->recent.size() > kWebhookFailureThreshold)
        ep->recent.pop_front();
    };
    if (result.ok) {
      delivered_->Increment();
      complete(true);
      delivered = std::move(ev->on_delivered);
      out = JobResult::Done();
    } else {
      failed_attempts_->Increment();
      if (ev->attempts >= kWebhookMaxAttempts) {
        gave_up_->Increment();
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
  if (ep.recent.size() >= kWebhookFailureThreshold &&
      std::all_of(ep.recent.begin(), ep.recent.end(),
                  [](bool ok) { return !ok; })) {
    // Polar disables the endpoint and marks its pending events skipped (they
    // are skipped when their job next runs).
    ep.enabled = false;
    ep.modified_at = clock_.WallNow();
    disabled_->Increment();
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
    simulated_->Increment();
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
                         clock_.WallNow().time_since_epoch())
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

}  // namespace polar::sim
