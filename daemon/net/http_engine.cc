#include "daemon/net/http_engine.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "daemon/net/retry_after.h"

namespace polar {

struct HttpEngine::StreamState {
  StreamId id = kNoStream;
  StreamOptions options;
  StreamHandlers handlers;
  std::string pending;  // body bytes not yet handed to on_data
  MonoTime head_at{};
  long status = 0;
  int http_version = 0;
  std::string content_type;
  bool head_complete = false;  // the header block ended (header callback)
  bool head_delivered = false;
  bool overflow = false;  // more than max_buffered waited
  bool marked = false;    // in deliver_
};

struct HttpEngine::Transfer {
  CURL* easy = nullptr;
  HttpEngine* engine = nullptr;
  Request request;
  ResponseCallback done;
  Response response;
  std::string url;
  bool too_large = false;
  char error[CURL_ERROR_SIZE] = {};
  std::size_t max_body = 0;
  std::unique_ptr<StreamState> stream;  // null for plain requests
};

namespace {

Outcome ClassifyCurlError(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return Outcome::kTimeout;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return Outcome::kConnectError;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
      return Outcome::kTlsError;
    default:
      // Resets mid-response, empty replies, garbled HTTP, and our own cut-off
      // of oversized bodies.
      return Outcome::kInvalidResponse;
  }
}

int HttpVersionOf(CURL* easy) {
  long version = 0;
  curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
  return version == CURL_HTTP_VERSION_2_0   ? 2
         : version == CURL_HTTP_VERSION_1_1 ? 11
         : version == CURL_HTTP_VERSION_1_0 ? 10
                                            : 0;
}

long Milliseconds(Duration d) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// libcurl honours these for https:// URLs; the built-in client speaks to no
// proxy, so with one set every request goes through libcurl.
bool ProxyConfigured() {
  for (const char* name :
       {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    const char* value = std::getenv(name);
    if (value && *value) return true;
  }
  return false;
}

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = text[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (a != prefix[i]) return false;
  }
  return true;
}

}  // namespace

HttpEngine::HttpEngine(EventLoop& loop, const Clock& clock,
                       EngineOptions options)
    : loop_(loop),
      clock_(clock),
      options_(std::move(options)),
      tls_(options_.base_url.rfind("https://", 0) == 0) {
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &HttpEngine::OnSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &HttpEngine::OnTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  // Keep every connection we may need cached, so a steady rate never pays a new
  // TCP/TLS handshake.
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS,
                    static_cast<long>(options_.connections));
  curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                    static_cast<long>(options_.connections));

  for (curl_slist** list : {&headers_auth_, &headers_anon_}) {
    *list = curl_slist_append(*list, "Content-Type: application/json");
    *list = curl_slist_append(*list, "Accept: application/json");
    // curl would otherwise send "Expect: 100-continue" for bodies over 1 KiB
    // and wait a round trip.
    *list = curl_slist_append(*list, "Expect:");
  }
  headers_stream_ =
      curl_slist_append(headers_stream_, "Accept: text/event-stream");
  headers_stream_ =
      curl_slist_append(headers_stream_, "Cache-Control: no-cache");
  std::string auth = "Authorization: Bearer " + options_.token;
  headers_auth_ = curl_slist_append(headers_auth_, auth.c_str());
  std::fill(auth.begin(), auth.end(), '\0');

  if (options_.builtin_http1) {
    if (auto target = PlainHttpTarget(options_.base_url)) {
      Http1Options h;
      h.target = std::move(*target);
      h.token = options_.token;
      h.user_agent = options_.user_agent;
      h.timeout = options_.timeout;
      h.connect_timeout = options_.connect_timeout;
      h.connections = options_.connections;
      h.max_response_bytes = options_.max_response_bytes;
      http1_ = std::make_unique<Http1Client>(loop_, clock_, std::move(h));
    }
  }
  if (options_.builtin_https && !ProxyConfigured()) {
    if (auto target = ParseHttpsTarget(options_.base_url)) {
      HttpsOptions h;
      h.target = std::move(*target);
      h.token = options_.token;
      h.user_agent = options_.user_agent;
      h.ca_file = options_.ca_file;
      h.timeout = options_.timeout;
      h.connect_timeout = options_.connect_timeout;
      h.connections = options_.connections;
      h.max_response_bytes = options_.max_response_bytes;
      https_ = std::make_unique<HttpsClient>(loop_, clock_, std::move(h));
    }
  }
}

HttpEngine::~HttpEngine() {
  curl_timer_.Cancel();
  for (const auto& [fd, events] : sockets_) loop_.Unwatch(fd);
  // Transfers still on the wire are abandoned without callbacks: the daemon is
  // shutting down and has already drained what it meant to wait for.
  for (Transfer* t : on_wire_) {
    curl_multi_remove_handle(multi_, t->easy);
    curl_easy_cleanup(t->easy);
    delete t;
  }
  // Queued requests hold no easy handle; they go with queue_.
  for (auto& t : pool_) curl_easy_cleanup(t->easy);
  curl_multi_cleanup(multi_);
  curl_slist_free_all(headers_auth_);
  curl_slist_free_all(headers_anon_);
  curl_slist_free_all(headers_stream_);
}

HttpEngine::Transfer* HttpEngine::NewTransfer() {
  auto t = std::make_unique<Transfer>();
  t->easy = curl_easy_init();
  CURL* e = t->easy;
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &HttpEngine::OnCloseSocket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpEngine::OnBody);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &HttpEngine::OnHeader);
  curl_easy_setopt(
      e, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                            options_.connect_timeout)
                            .count()));
  // HTTP/2 when TLS ALPN offers it, HTTP/1.1 otherwise (and always for
  // plain http://, where curl would need prior knowledge for h2c).
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty())
    curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_file.c_str());
  // Debian's libcurl has both a CA bundle and a CA path built in, and curl
  // caches the parsed trust store (CURLOPT_CA_CACHE_TIMEOUT) only when no CA
  // path is set. Without this every new connection re-parses the ~140
  // certificates of /etc/ssl/certs/ca-certificates.crt (measured: 42 opens
  // in 2 s of refused handshakes at 20/s); with it, once a day. The bundle
  // holds the same certificates as the path.
  curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  if (!options_.user_agent.empty()) {
    curl_easy_setopt(e, CURLOPT_USERAGENT, options_.user_agent.c_str());
  }
  Transfer* raw = t.get();
  raw->engine = this;
  curl_easy_setopt(e, CURLOPT_PRIVATE, raw);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, raw);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, raw);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, raw->error);
  raw->max_body = options_.max_response_bytes;
  pool_.push_back(std::move(t));
  return raw;
}

void HttpEngine::Send(Request request, ResponseCallback done) {
  if (http1_) {
    http1_->Send(std::move(request), std::move(done));
    return;
  }
  if (https_) {
    https_->Send(std::move(request), std::move(done));
    return;
  }
  queue_.push_back(Pending{std::move(request), std::move(done), nullptr});
  StartQueued();
}

StreamId HttpEngine::OpenStream(Request request, StreamOptions options,
                                StreamHandlers handlers) {
  auto state = std::make_unique<StreamState>();
  state->id = next_stream_++;
  state->options = options;
  state->handlers = std::move(handlers);
  const StreamId id = state->id;
  ++queued_streams_;
  queue_.push_back(Pending{std::move(request), nullptr, std::move(state)});
  StartQueued();
  return id;
}

void HttpEngine::CancelStream(StreamId id) {
  if (id == kNoStream) return;
  if (auto it = streams_.find(id); it != streams_.end()) {
    Transfer* t = it->second;
    streams_.erase(it);
    // Never called from inside a curl callback: handlers run after curl
    // returns (DeliverStreams, Finish).
    curl_multi_remove_handle(multi_, t->easy);
    on_wire_.erase(t);
    --active_;
    Recycle(t);
    StartQueued();
    return;
  }
  for (auto q = queue_.begin(); q != queue_.end(); ++q) {
    if (q->stream && q->stream->id == id) {
      queue_.erase(q);
      --queued_streams_;
      return;
    }
  }
}

void HttpEngine::Recycle(Transfer* t) {
  t->request = Request{};
  t->done = nullptr;
  t->stream.reset();
  pool_.emplace_back(t);
}

void HttpEngine::StartQueued() {
  while (!queue_.empty() && active_ < options_.connections) {
    // An easy handle (~20 KiB with its buffers) is taken only when a request
    // goes on the wire, so the pool never exceeds `connections` handles and a
    // long queue costs a Request each, not a handle each.
    if (pool_.empty()) NewTransfer();
    std::unique_ptr<Transfer> t = std::move(pool_.back());
    pool_.pop_back();
    Pending& p = queue_.front();
    t->request = std::move(p.request);
    t->done = std::move(p.done);
    t->stream = std::move(p.stream);
    queue_.pop_front();
    if (t->stream) {
      --queued_streams_;
      streams_.emplace(t->stream->id, t.get());
    }
    t->response = Response{};
    t->response.intended = t->request.intended;
    t->too_large = false;
    t->error[0] = '\0';
    Launch(std::move(t));
  }
}

void HttpEngine::Launch(std::unique_ptr<Transfer> owned) {
  Transfer* t = owned.release();  // owned by the multi handle until Finish()
  on_wire_.insert(t);
  CURL* e = t->easy;
  t->url = options_.base_url + t->request.path;
  curl_easy_setopt(e, CURLOPT_URL, t->url.c_str());
  // Over TLS, wait for an h2 connection being set up rather than opening
  // another, so HTTP/2 multiplexes over one connection instead of one per
  // request. Not for plain http:// (always HTTP/1.1 here): there it only
  // makes transfers wait for busy connections (17,000/s instead of 20,000/s
  // at 256 connections on loopback, bench/cpu_per_request.sh). And not while
  // connections are failing: every waiting transfer would wait for the one
  // attempt in progress, then the next, so attempts ran one at a time (an
  // untrusted certificate with a 50 ms handshake made 20 tls_errors/s out of
  // 100 arrivals/s; the rest queued for seconds or were dropped).
  if (tls_) curl_easy_setopt(e, CURLOPT_PIPEWAIT, pipewait_ ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER,
                   t->request.authenticated ? headers_auth_
                   : t->stream              ? headers_stream_
                                            : headers_anon_);
  // A stream has no natural end: its own deadline replaces the timeout.
  curl_easy_setopt(
      e, CURLOPT_TIMEOUT_MS,
      Milliseconds(t->stream ? t->stream->options.deadline : options_.timeout));
  const Method m = t->request.method;
  if (m == Method::kGet) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, nullptr);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (m == Method::kDelete && t->request.body.empty()) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else {
    // POSTFIELDS with an explicit size makes curl send Content-Length (never
    // chunked), which Polar requires for POST, PUT and PATCH (411 otherwise,
    // docs/polar-api.md §0).
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(t->request.body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request.body.data());
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
                     m == Method::kPost ? nullptr : MethodName(m));
  }
  t->response.sent = clock_.Now();
  ++active_;
  CURLMcode rc = curl_multi_add_handle(multi_, e);
  if (rc != CURLM_OK) {
    // Cannot happen with a valid handle; answer asynchronously to keep Send()'s
    // contract.
    --active_;
    loop_.Post([this, t, rc] {
      std::snprintf(t->error, sizeof t->error, "curl_multi_add_handle: %s",
                    curl_multi_strerror(rc));
      ++active_;
      Finish(t, CURLE_FAILED_INIT);
    });
  }
}

int HttpEngine::OnSocket(CURL*, curl_socket_t fd, int what, void* engine,
                         void*) {
  auto* self = static_cast<HttpEngine*>(engine);
  uint32_t events = 0;
  if (what & CURL_POLL_IN) events |= EPOLLIN;
  if (what & CURL_POLL_OUT) events |= EPOLLOUT;
  auto it = self->sockets_.find(fd);
  if (what == CURL_POLL_REMOVE) {
    // Keep the registration (see sockets_): an idle kept-alive connection
    // usually gets the next request within milliseconds.
    if (it != self->sockets_.end()) it->second = 0;
    return 0;
  }
  if (it == self->sockets_.end()) {
    self->sockets_.emplace(fd, events);
    self->loop_.Watch(fd, events, [self, fd](uint32_t ev) {
      auto s = self->sockets_.find(fd);
      if (s != self->sockets_.end() && s->second == 0) {
        // curl does not watch this socket now (an idle connection that the
        // server closed, or sent something unasked): stop level-triggered
        // wake-ups; curl notices a dead connection before reusing it.
        self->loop_.Unwatch(fd);
        self->sockets_.erase(s);
        return;
      }
      int flags = 0;
      if (ev & (EPOLLIN | EPOLLHUP)) flags |= CURL_CSELECT_IN;
      if (ev & EPOLLOUT) flags |= CURL_CSELECT_OUT;
      if (ev & EPOLLERR) flags |= CURL_CSELECT_ERR;
      self->SocketAction(fd, flags);
    });
  } else if (it->second != events) {
    it->second = events;
    self->loop_.Modify(fd, events);
  }
  return 0;
}

int HttpEngine::OnCloseSocket(void* engine, curl_socket_t fd) {
  auto* self = static_cast<HttpEngine*>(engine);
  if (self->sockets_.erase(fd) > 0) self->loop_.Unwatch(fd);
  return close(fd);
}

int HttpEngine::OnTimer(CURLM*, long timeout_ms, void* engine) {
  auto* self = static_cast<HttpEngine*>(engine);
  if (timeout_ms < 0) {
    self->curl_deadline_ = MonoTime::max();  // an armed loop timer idles out
    return 0;
  }
  self->curl_deadline_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  if (self->curl_deadline_ < self->curl_timer_at_) self->ArmCurlTimer();
  return 0;
}

void HttpEngine::ArmCurlTimer() {
  curl_timer_at_ = curl_deadline_;
  curl_timer_ = loop_.Once(curl_timer_at_, [this] {
    curl_timer_at_ = MonoTime::max();
    if (curl_deadline_ == MonoTime::max()) return;
    if (std::chrono::steady_clock::now() < curl_deadline_) {
      ArmCurlTimer();  // curl moved its deadline later meanwhile
      return;
    }
    curl_deadline_ = MonoTime::max();
    SocketAction(CURL_SOCKET_TIMEOUT, 0);
  });
}

void HttpEngine::SocketAction(curl_socket_t fd, int events) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, events, &running);
  if (!deliver_.empty()) DeliverStreams();
  CollectDone();
}

void HttpEngine::DeliverStreams() {
  // Handlers may cancel streams (this one or others) and open new ones; a
  // cancelled id is simply no longer in streams_.
  std::vector<StreamId> ids;
  while (!deliver_.empty()) {
    ids.clear();
    ids.swap(deliver_);
    for (StreamId id : ids) {
      auto it = streams_.find(id);
      if (it != streams_.end()) DeliverStream(it->second);
    }
  }
}

void HttpEngine::DeliverStream(Transfer* t) {
  StreamState& s = *t->stream;
  s.marked = false;
  const StreamId id = s.id;
  if (s.head_complete && !s.head_delivered) {
    s.head_delivered = true;
    Response head;
    head.status = s.status;
    head.http_version = s.http_version;
    head.content_type = s.content_type;
    head.retry_after = t->response.retry_after;
    head.intended = t->response.intended;
    head.sent = t->response.sent;
    head.done = s.head_at;
    // A copy: the handler may cancel the stream, which frees the original.
    auto on_head = s.handlers.on_head;
    if (on_head) on_head(head);
    if (!streams_.count(id)) return;
  }
  if (s.head_delivered && !s.pending.empty()) {
    std::string chunk;
    chunk.swap(s.pending);
    auto on_data = s.handlers.on_data;
    if (on_data) on_data(chunk);
  }
}

void HttpEngine::CollectDone() {
  int pending = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &pending)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    Transfer* t = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &t);
    CURLcode code = msg->data.result;
    if (t->stream) {
      // What arrived with the end goes out first; a handler may cancel the
      // stream meanwhile (then it is recycled and nothing more is said).
      const StreamId id = t->stream->id;
      DeliverStream(t);
      if (!streams_.count(id)) continue;
    }
    curl_multi_remove_handle(multi_, easy);
    Finish(t, code);
  }
}

void HttpEngine::Finish(Transfer* t, CURLcode code) {
  on_wire_.erase(t);
  --active_;
  Response& r = t->response;
  r.done = clock_.Now();
  const bool overflow = t->stream && t->stream->overflow;
  if (code == CURLE_OK) {
    pipewait_ = true;  // connections work: multiplex on the next one again
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r.status);
    r.http_version = HttpVersionOf(t->easy);
    r.transport = Outcome::kOk;
  } else {
    if (t->stream && t->stream->head_complete) {
      r.status = t->stream->status;
      r.http_version = t->stream->http_version;
    }
    r.transport = t->too_large || overflow ? Outcome::kInvalidResponse
                                           : ClassifyCurlError(code);
    if (r.transport == Outcome::kConnectError ||
        r.transport == Outcome::kTlsError || r.transport == Outcome::kTimeout)
      pipewait_ = false;
    r.error = t->too_large ? "response body over the size limit"
              : overflow   ? "stream data over the buffer limit"
                           : (t->error[0] ? std::string(t->error)
                                          : curl_easy_strerror(code));
  }
  ResponseCallback done;
  if (t->stream) {
    streams_.erase(t->stream->id);
    done = std::move(t->stream->handlers.on_end);
    r.content_type = t->stream->content_type;
  } else {
    done = std::move(t->done);
  }
  Response response = std::move(r);
  Recycle(t);
  // Refill the wire before running the callback, so a slow callback never
  // delays queued sends.
  StartQueued();
  if (done) done(std::move(response));
}

size_t HttpEngine::OnBody(char* data, size_t size, size_t count,
                          void* transfer) {
  auto* t = static_cast<Transfer*>(transfer);
  size_t n = size * count;
  if (StreamState* s = t->stream.get()) {
    // Inside curl: only buffer; DeliverStreams hands it over after curl
    // returns.
    if (s->pending.size() + n > s->options.max_buffered) {
      s->overflow = true;
      return 0;  // curl aborts the transfer with CURLE_WRITE_ERROR
    }
    s->pending.append(data, n);
    if (!s->marked) {
      s->marked = true;
      t->engine->deliver_.push_back(s->id);
    }
    return n;
  }
  if (t->response.body.size() + n > t->max_body) {
    t->too_large = true;
    return 0;  // makes curl abort the transfer with CURLE_WRITE_ERROR
  }
  t->response.body.append(data, n);
  return n;
}

size_t HttpEngine::OnHeader(char* data, size_t size, size_t count,
                            void* transfer) {
  auto* t = static_cast<Transfer*>(transfer);
  size_t n = size * count;
  std::string_view line(data, n);
  if (StreamState* s = t->stream.get(); s && (line == "\r\n" || line == "\n")) {
    // The end of a header block. 1xx blocks (none expected: no Expect:
    // 100-continue) are followed by the real one.
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && !s->head_complete) {
      s->head_complete = true;
      s->status = status;
      s->http_version = HttpVersionOf(t->easy);
      const char* type = nullptr;
      curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &type);
      s->content_type = type ? type : "";
      s->head_at = t->engine->clock_.Now();
      if (!s->marked) {
        s->marked = true;
        t->engine->deliver_.push_back(s->id);
      }
    }
    return n;
  }
  if (StartsWithNoCase(line, "retry-after:")) {
    // Untrusted: ParseRetryAfter saturates instead of overflowing.
    if (auto wait = ParseRetryAfter(line.substr(12),
                                    std::chrono::system_clock::now())) {
      t->response.retry_after = *wait;
    }
  }
  return n;
}

}  // namespace polar
