#include "daemon/net/http_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iterator>

#include "exporters/log.h"

namespace polar {
namespace {

// How often the deadlines are checked: a deadline is met within 250 ms.
constexpr Duration kDeadlineSweep = std::chrono::milliseconds(250);
// Accepts per wake-up, so a connection flood cannot hold the loop: 64
// accepts are ~0.2 ms; the listener stays readable and comes back next turn.
constexpr int kAcceptBatch = 64;
// Bytes read per wake-up of one connection, for the same reason.
constexpr std::size_t kReadBudget = 256 * 1024;
// A refused connection's input is drained (not answered) up to this much or
// `linger`, whichever comes first.
constexpr std::size_t kMaxLingerBytes = 1 << 20;
// After accept() fails for want of descriptors or memory, accepting pauses
// this long rather than spinning on a listener that stays readable.
constexpr Duration kAcceptPause = std::chrono::milliseconds(100);

const char* Reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// What the refusal's answer says (no byte of the request is echoed).
const char* Explain(HttpRefusal refusal) {
  switch (refusal) {
    case HttpRefusal::kBadRequest:
      return "not a well-formed HTTP/1.1 request head";
    case HttpRefusal::kBadFraming:
      return "the body's framing is ambiguous: Content-Length twice or not a "
             "number, Content-Length with Transfer-Encoding, or a bad chunk";
    case HttpRefusal::kTransferCoding:
      return "the only transfer coding accepted is chunked";
    case HttpRefusal::kBadTarget:
      return "the request target has control bytes, a bad %-escape, or is "
             "not a path";
    case HttpRefusal::kDuplicateHeader:
      return "a header that must appear once appeared twice";
    case HttpRefusal::kHeadTooLarge:
      return "the request head is over this listener's limit";
    case HttpRefusal::kBodyTooLarge:
      return "the body is over this listener's limit";
    case HttpRefusal::kHostNotAllowed:
      return "this listener does not serve that Host (metrics.allowed_hosts)";
    case HttpRefusal::kExpectation:
      return "the only Expect accepted is 100-continue";
  }
  return "";
}

// "Sun, 06 Nov 1994 08:49:37 GMT" for now, formatted once per second.
const std::string& HttpDate() {
  static thread_local time_t last = 0;
  static thread_local std::string text;
  const time_t t = time(nullptr);
  if (t != last) {
    tm g{};
    gmtime_r(&t, &g);
    char buf[64];
    const std::size_t n =
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &g);
    text.assign(buf, n);
    last = t;
  }
  return text;
}

std::string AddressText(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr,
              text, sizeof text);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], text, sizeof text);
    } else {
      inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
    }
  }
  return text;
}

// The per-IP limit's key: an IPv4 address, or an IPv6 client's /64 (one
// client is routinely handed a whole /64, so counting single IPv6 addresses
// would limit nothing).
std::string IpKey(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    return std::string(reinterpret_cast<const char*>(&a->sin_addr), 4);
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
  if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
    return std::string(reinterpret_cast<const char*>(&a->sin6_addr.s6_addr[12]),
                       4);
  return std::string(reinterpret_cast<const char*>(a->sin6_addr.s6_addr), 8);
}

bool Evictable(HttpStage stage) {
  return stage == HttpStage::kIdle || stage == HttpStage::kHead ||
         stage == HttpStage::kLinger;
}

// True once `bytes` fall short of `rate` bytes/s over the time past `grace`.
bool TooSlow(Duration elapsed, uint64_t bytes, Duration grace, double rate) {
  if (elapsed <= grace) return false;
  return static_cast<double>(bytes) < rate * ToSeconds(elapsed - grace);
}

}  // namespace

HttpDeadline CheckHttpDeadline(HttpStage stage, bool first_request,
                               MonoTime since, uint64_t bytes, MonoTime now,
                               const HttpTimeouts& t) {
  const Duration elapsed = now - since;
  switch (stage) {
    case HttpStage::kIdle:
      if (first_request)
        return elapsed > t.head ? HttpDeadline::kHead : HttpDeadline::kNone;
      return elapsed > t.keepalive ? HttpDeadline::kClose : HttpDeadline::kNone;
    case HttpStage::kHead:
      return elapsed > t.head ? HttpDeadline::kHead : HttpDeadline::kNone;
    case HttpStage::kBody:
      return elapsed > t.body_max ||
                     TooSlow(elapsed, bytes, t.body_grace, t.min_body_rate)
                 ? HttpDeadline::kBody
                 : HttpDeadline::kNone;
    case HttpStage::kWrite:
      return elapsed > t.send_max ||
                     TooSlow(elapsed, bytes, t.send_grace, t.min_send_rate)
                 ? HttpDeadline::kSend
                 : HttpDeadline::kNone;
    case HttpStage::kLinger:
      return elapsed > t.linger ? HttpDeadline::kClose : HttpDeadline::kNone;
  }
  return HttpDeadline::kNone;
}

const std::string& HttpServerRequest::Header(
    const std::string& lower_name) const {
  static const std::string kEmpty;
  auto it = headers.find(lower_name);
  return it == headers.end() ? kEmpty : it->second;
}

struct HttpServer::Conn {
  int fd = -1;
  bool closed = false;
  std::string remote;  // printable address
  std::string ip_key;  // IpKey()
  HttpStage stage = HttpStage::kIdle;
  // When the stage started; for the first request's kIdle and kHead, the
  // accept (the head deadline runs from there).
  MonoTime since;
  bool first_request = true;
  uint64_t stage_bytes = 0;  // body read / response written in this stage
  uint32_t events = 0;       // the epoll mask now
  std::string in;            // read, not yet consumed
  // The request being read.
  HttpServerRequest request;
  bool keep_alive = true;
  bool http10 = false;
  bool head_method = false;
  uint64_t body_left = 0;
  std::optional<ChunkedDecoder> decoder;  // for a chunked body
  // The response being written.
  std::string out;
  std::size_t out_pos = 0;
  bool close_after = false;
  bool linger_after = false;
  std::size_t lingered = 0;
  // Position in idle_ while Evictable(stage).
  bool in_idle = false;
  std::list<Conn*>::iterator idle_it;
};

HttpServer::HttpServer(EventLoop& loop, HttpServerOptions options,
                       HttpHandler handler)
    : loop_(loop), options_(std::move(options)), handler_(std::move(handler)) {}

std::unique_ptr<HttpServer> HttpServer::Start(EventLoop& loop,
                                              HttpServerOptions options,
                                              HttpHandler handler,
                                              std::string* error) {
  std::unique_ptr<HttpServer> server(
      new HttpServer(loop, std::move(options), std::move(handler)));
  HttpServerOptions& o = server->options_;
  if (!o.registry) {
    // Tests that do not look at the metrics: a registry of the server's own.
    static prometheus::Registry unused_registry;
    o.registry = &unused_registry;
  }
  server->metrics_ = std::make_unique<HttpListenerMetrics>(*o.registry, o.name);

  const ListenAddress& listen = o.listen;
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (listen.ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(listen.port);
    inet_pton(AF_INET6, listen.host.c_str(), &a->sin6_addr);
    length = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(listen.port);
    inet_pton(AF_INET, listen.host.c_str(), &a->sin_addr);
    length = sizeof *a;
  }
  const int fd =
      socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = fmt::format("cannot listen on {}: socket: {}", listen.ToString(),
                         strerror(errno));
    return nullptr;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (listen.ipv6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  // The backlog holds a burst of connects while the loop accepts 64 a turn;
  // the kernel caps it at net.core.somaxconn (4096 by default since 5.4).
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    const int e = errno;
    close(fd);
    *error = fmt::format(
        "cannot listen on {}: {} (address in use, or not a local address?)",
        listen.ToString(), strerror(e));
    return nullptr;
  }
  server->listen_fd_ = fd;
  server->bound_ = listen;
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) ==
      0) {
    server->bound_.port =
        ntohs(bound.ss_family == AF_INET6
                  ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                  : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  HttpServer* raw = server.get();
  loop.Watch(fd, EPOLLIN, [raw](uint32_t) { raw->OnAcceptable(); });
  return server;
}

HttpServer::~HttpServer() {
  *alive_ = false;
  sweep_timer_.Cancel();
  resume_timer_.Cancel();
  if (listen_fd_ >= 0) {
    loop_.Unwatch(listen_fd_);
    close(listen_fd_);
  }
  for (auto& [fd, c] : conns_) {
    loop_.Unwatch(fd);
    close(fd);
    metrics_->open().Decrement();
  }
}

void HttpServer::LogLimited(std::string_view reason,
                            const std::string& message) {
  uint64_t suppressed = 0;
  if (!AllowErrorLog(fmt::format("http/{}/{}", options_.name, reason),
                     loop_.Now(), &suppressed))
    return;
  ScopedLogFields fields({{"POLAR_EVENT", "http_refused"},
                          {"POLAR_LISTENER", options_.name},
                          {"POLAR_REASON", std::string(reason)}});
  SPDLOG_WARN("{}{}", message, SuppressedSuffix(suppressed));
}

void HttpServer::PauseAccepting() {
  if (resume_timer_.pending()) return;
  loop_.Modify(listen_fd_, 0);
  resume_timer_ =
      loop_.After(kAcceptPause, [this] { loop_.Modify(listen_fd_, EPOLLIN); });
}

void HttpServer::OnAcceptable() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection waits in the backlog.
      LogLimited("accept",
                 fmt::format("{} listener: accept failed: {}; pausing accepts "
                             "for 100 ms",
                             options_.name, strerror(errno)));
      PauseAccepting();
      break;
    }
    std::string key = IpKey(ss);
    std::string remote = AddressText(ss);
    auto have = per_ip_.find(key);
    if (have != per_ip_.end() &&
        have->second >= options_.max_connections_per_ip) {
      metrics_->refused(HttpConnectionRefusal::kPerIpLimit).Increment();
      LogLimited(
          "per_ip_limit",
          fmt::format("{} listener: refused a connection from {}: it "
                      "already has {} (the per-address limit)",
                      options_.name, remote, options_.max_connections_per_ip));
      close(fd);
      continue;
    }
    if (conns_.size() >= options_.max_connections && !EvictOldest(remote)) {
      metrics_->refused(HttpConnectionRefusal::kConnectionLimit).Increment();
      LogLimited("connection_limit",
                 fmt::format("{} listener: refused a connection from {}: {} "
                             "connections open (the cap), every one busy "
                             "with a request",
                             options_.name, remote, options_.max_connections));
      close(fd);
      continue;
    }
    int one = 1;
    // Responses go out whole; no Nagle delay behind a delayed ACK.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++per_ip_[key];
    auto conn = std::make_unique<Conn>();
    Conn* c = conn.get();
    c->fd = fd;
    c->remote = std::move(remote);
    c->ip_key = std::move(key);
    c->since = loop_.Now();
    c->events = EPOLLIN;
    idle_.push_back(c);
    c->idle_it = std::prev(idle_.end());
    c->in_idle = true;
    conns_[fd] = std::move(conn);
    metrics_->open().Increment();
    loop_.Watch(fd, EPOLLIN,
                [this, c](uint32_t events) { OnEvents(c, events); });
  }
  ArmSweep();
}

bool HttpServer::EvictOldest(const std::string& for_whom) {
  if (idle_.empty()) return false;
  Conn* victim = idle_.front();
  metrics_->dropped(HttpConnectionDrop::kEvicted).Increment();
  LogLimited("evicted",
             fmt::format("{} listener: {} connections open (the cap): closed "
                         "the oldest idle one (from {}) for a new one from {}",
                         options_.name, options_.max_connections,
                         victim->remote, for_whom));
  Close(victim);
  return true;
}

void HttpServer::OnEvents(Conn* c, uint32_t events) {
  if (c->closed) return;
  if (c->stage == HttpStage::kWrite) {
    WriteSome(c);
    // A pipelined request already read waits for its turn.
    if (!c->closed && c->stage == HttpStage::kIdle && !c->in.empty())
      Process(c);
    return;
  }
  (void)events;  // errors and hang-ups show up as recv() results
  ReadSome(c);
}

void HttpServer::ReadSome(Conn* c) {
  char buf[16384];
  std::size_t budget = kReadBudget;
  while (budget > 0 && !c->closed) {
    const ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n > 0) {
      const auto got = static_cast<std::size_t>(n);
      budget -= std::min(budget, got);
      if (c->stage == HttpStage::kLinger) {
        c->lingered += got;
        if (c->lingered > kMaxLingerBytes) Close(c);
        continue;
      }
      c->in.append(buf, got);
      Process(c);
      // Stop reading while a response is being written: the next pipelined
      // request waits in the kernel's buffer.
      if (c->closed || c->stage == HttpStage::kWrite) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // The peer closed or reset: a client that gave up mid-request is not a
    // refusal of ours.
    Close(c);
    return;
  }
}

void HttpServer::Process(Conn* c) {
  while (!c->closed) {
    switch (c->stage) {
      case HttpStage::kIdle: {
        // RFC 9112 §2.2: empty lines before a request line are ignored.
        std::size_t skip = 0;
        while (skip + 1 < c->in.size() && c->in[skip] == '\r' &&
               c->in[skip + 1] == '\n')
          skip += 2;
        c->in.erase(0, skip);
        if (c->in.empty()) return;
        if (c->first_request) {
          c->stage = HttpStage::kHead;  // the deadline still runs from accept
        } else {
          SetStage(c, HttpStage::kHead, loop_.Now());
        }
        break;
      }
      case HttpStage::kHead: {
        const std::string_view in(c->in);
        const std::size_t end = FindHeadEnd(
            in.substr(0, std::min(in.size(), options_.max_head_bytes + 4)));
        if (end == 0) {
          if (in.size() > options_.max_head_bytes)
            Refuse(c, HttpRefusal::kHeadTooLarge);
          return;
        }
        HttpHeadResult head = ParseRequestHead(in.substr(0, end));
        c->in.erase(0, end);
        if (head.refusal) {
          Refuse(c, *head.refusal);
          return;
        }
        BeginRequest(c, std::move(head.head));
        break;
      }
      case HttpStage::kBody:
        if (!ReadBody(c)) return;
        break;
      case HttpStage::kWrite:
        return;
      case HttpStage::kLinger:
        c->in.clear();
        return;
    }
  }
}

void HttpServer::BeginRequest(Conn* c, HttpRequestHead head) {
  HttpServerRequest& r = c->request;
  r = HttpServerRequest{};
  r.method = std::move(head.method);
  r.path = std::move(head.path);
  r.query = std::move(head.query);
  r.headers = std::move(head.headers);
  r.content_length = head.chunked ? std::nullopt : head.content_length;
  r.remote = c->remote;
  r.header_bytes = head.header_bytes;
  c->keep_alive = head.keep_alive;
  c->http10 = head.minor_version == 0;
  c->head_method = r.method == "HEAD";
  c->decoder.reset();
  c->body_left = 0;

  if (options_.check_host && !HostAllowed(head.host, options_.allowed_hosts)) {
    Refuse(c, HttpRefusal::kHostNotAllowed);
    return;
  }
  if (options_.head_handler) {
    if (std::optional<HttpServerResponse> early = options_.head_handler(r)) {
      // Refused on its head: the body, if any, is never read.
      Respond(c, *early, head.has_body());
      return;
    }
  }
  if (head.content_length && *head.content_length > options_.max_body_bytes) {
    Refuse(c, HttpRefusal::kBodyTooLarge);
    return;
  }
  if (!head.has_body()) {
    Dispatch(c);
    return;
  }
  if (head.expect_continue && !c->http10) {
    // Only now, with every check that needs no body passed.
    static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
    if (send(c->fd, k100.data(), k100.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(k100.size())) {
      Close(c);
      return;
    }
  }
  if (head.chunked) {
    c->decoder.emplace(options_.max_body_bytes);
  } else {
    c->body_left = *head.content_length;
  }
  SetStage(c, HttpStage::kBody, loop_.Now());
}

bool HttpServer::ReadBody(Conn* c) {
  if (c->in.empty()) return false;
  if (c->decoder) {
    const std::size_t used = c->decoder->Feed(c->in, &c->request.body);
    c->in.erase(0, used);
    c->stage_bytes += used;
    switch (c->decoder->status()) {
      case ChunkedDecoder::Status::kMore:
        return false;
      case ChunkedDecoder::Status::kBad:
        Refuse(c, HttpRefusal::kBadFraming);
        return false;
      case ChunkedDecoder::Status::kTooLarge:
        Refuse(c, HttpRefusal::kBodyTooLarge);
        return false;
      case ChunkedDecoder::Status::kDone:
        break;
    }
  } else {
    const std::size_t n = static_cast<std::size_t>(
        std::min<uint64_t>(c->body_left, c->in.size()));
    c->request.body.append(c->in, 0, n);
    c->in.erase(0, n);
    c->body_left -= n;
    c->stage_bytes += n;
    if (c->body_left > 0) return false;
  }
  Dispatch(c);
  return !c->closed;
}

void HttpServer::Dispatch(Conn* c) {
  HttpServerResponse response = handler_(c->request);
  Respond(c, response, false);
}

void HttpServer::Respond(Conn* c, const HttpServerResponse& response,
                         bool unread_input) {
  c->close_after = !c->keep_alive || unread_input;
  c->linger_after = unread_input;
  std::string& out = c->out;
  out.clear();
  c->out_pos = 0;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Length: {}\r\n",
                 response.status, Reason(response.status), HttpDate(),
                 response.body.size());
  if (!response.content_type.empty())
    fmt::format_to(it, "Content-Type: {}\r\n", response.content_type);
  if (c->close_after) {
    out += "Connection: close\r\n";
  } else if (c->http10) {
    out += "Connection: keep-alive\r\n";
  }
  for (const auto& [name, value] : response.headers)
    fmt::format_to(it, "{}: {}\r\n", name, value);
  out += "\r\n";
  if (!c->head_method) out += response.body;
  // The request is answered: its memory goes now, not at the next request.
  c->request = HttpServerRequest{};
  c->decoder.reset();
  SetStage(c, HttpStage::kWrite, loop_.Now());
  WriteSome(c);
}

void HttpServer::Refuse(Conn* c, HttpRefusal refusal) {
  metrics_->requests_refused(refusal).Increment();
  LogLimited(HttpRefusalName(refusal),
             fmt::format("{} listener: refused a request from {}: {} ({} {})",
                         options_.name, c->remote, Explain(refusal),
                         HttpRefusalStatus(refusal), HttpRefusalName(refusal)));
  HttpServerResponse r;
  r.status = HttpRefusalStatus(refusal);
  r.body = fmt::format("{}: {}\n", HttpRefusalName(refusal), Explain(refusal));
  // Whatever follows on this connection cannot be trusted to be framed as
  // the client meant: answer, then close (draining, not reading, the rest).
  c->keep_alive = false;
  Respond(c, r, true);
}

void HttpServer::WriteSome(Conn* c) {
  while (c->out_pos < c->out.size()) {
    const ssize_t n = send(c->fd, c->out.data() + c->out_pos,
                           c->out.size() - c->out_pos, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_pos += static_cast<std::size_t>(n);
      c->stage_bytes += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (c->events != EPOLLOUT) {
        c->events = EPOLLOUT;
        loop_.Modify(c->fd, EPOLLOUT);
      }
      return;
    }
    Close(c);
    return;
  }
  WriteDone(c);
}

void HttpServer::WriteDone(Conn* c) {
  if (c->out.capacity() > 64 * 1024) {
    std::string().swap(c->out);
  } else {
    c->out.clear();
  }
  c->out_pos = 0;
  if (c->events != EPOLLIN) {
    c->events = EPOLLIN;
    loop_.Modify(c->fd, EPOLLIN);
  }
  if (c->close_after) {
    if (!c->linger_after) {
      Close(c);
      return;
    }
    // Half-close and drain: closing with unread input would send a reset,
    // which can destroy the answer before the client reads it.
    shutdown(c->fd, SHUT_WR);
    c->in.clear();
    SetStage(c, HttpStage::kLinger, loop_.Now());
    return;
  }
  c->first_request = false;
  SetStage(c, HttpStage::kIdle, loop_.Now());
}

void HttpServer::SetStage(Conn* c, HttpStage stage, MonoTime now) {
  c->stage = stage;
  c->since = now;
  c->stage_bytes = 0;
  const bool evictable = Evictable(stage);
  if (evictable && !c->in_idle) {
    idle_.push_back(c);
    c->idle_it = std::prev(idle_.end());
    c->in_idle = true;
  } else if (!evictable && c->in_idle) {
    idle_.erase(c->idle_it);
    c->in_idle = false;
  }
}

void HttpServer::Drop(Conn* c, HttpConnectionDrop why) {
  metrics_->dropped(why).Increment();
  const std::string_view reason = HttpConnectionDropName(why);
  LogLimited(reason,
             fmt::format("{} listener: closed a connection from {}: {}",
                         options_.name, c->remote,
                         why == HttpConnectionDrop::kHeadTimeout
                             ? "its request head took longer than the head "
                               "deadline"
                         : why == HttpConnectionDrop::kBodyTimeout
                             ? "its body came slower than the minimum rate "
                               "or past the body deadline"
                             : "it read the response slower than the minimum "
                               "rate"));
  if (why != HttpConnectionDrop::kSendTimeout) {
    // Best effort, one non-blocking write: the connection closes either way.
    static constexpr std::string_view k408 =
        "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: "
        "close\r\n\r\n";
    [[maybe_unused]] ssize_t n =
        send(c->fd, k408.data(), k408.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  Close(c);
}

void HttpServer::Close(Conn* c) {
  if (c->closed) return;
  c->closed = true;
  if (c->in_idle) {
    idle_.erase(c->idle_it);
    c->in_idle = false;
  }
  loop_.Unwatch(c->fd);
  close(c->fd);
  if (auto it = per_ip_.find(c->ip_key); it != per_ip_.end()) {
    if (--it->second == 0) per_ip_.erase(it);
  }
  metrics_->open().Decrement();
  auto it = conns_.find(c->fd);
  c->fd = -1;
  if (it != conns_.end()) {
    closed_.push_back(std::move(it->second));
    conns_.erase(it);
  }
  // Freed after the current callback: the caller may still look at `c`.
  if (!free_posted_) {
    free_posted_ = true;
    loop_.Post([this, alive = alive_] {
      if (!*alive) return;
      free_posted_ = false;
      closed_.clear();
    });
  }
}

void HttpServer::ArmSweep() {
  if (sweep_timer_.pending() || conns_.empty()) return;
  sweep_timer_ = loop_.Every(kDeadlineSweep, [this] { Sweep(); });
}

void HttpServer::Sweep() {
  const MonoTime now = loop_.Now();
  std::vector<std::pair<Conn*, HttpDeadline>> due;
  for (auto& [fd, conn] : conns_) {
    Conn* c = conn.get();
    const HttpDeadline d =
        CheckHttpDeadline(c->stage, c->first_request, c->since, c->stage_bytes,
                          now, options_.timeouts);
    if (d != HttpDeadline::kNone) due.emplace_back(c, d);
  }
  for (auto [c, d] : due) {
    switch (d) {
      case HttpDeadline::kNone:
        break;
      case HttpDeadline::kClose:
        Close(c);
        break;
      case HttpDeadline::kHead:
        Drop(c, HttpConnectionDrop::kHeadTimeout);
        break;
      case HttpDeadline::kBody:
        Drop(c, HttpConnectionDrop::kBodyTimeout);
        break;
      case HttpDeadline::kSend:
        Drop(c, HttpConnectionDrop::kSendTimeout);
        break;
    }
  }
  // Idle server, idle loop: no wake-ups until the next connection.
  if (conns_.empty()) sweep_timer_.Cancel();
}

}  // namespace polar
