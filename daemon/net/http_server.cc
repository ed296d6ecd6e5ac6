// HttpServer, connections and requests: listening, accepting (the per-IP
// limit and the total cap, pausing after accept() fails), reading each
// connection within a budget, framing requests (head, body, 100-continue,
// the Host and head checks before the body) and handing them to the handler,
// and closing. Answers are written in http_server_answers.cc; deadlines and
// eviction are in http_server_deadlines.cc; the contract is in
// http_server.h.
//
// Owned by App (metrics) and WebhookService (webhooks); loop thread only.
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
#include <iterator>

#include "daemon/net/http_server_conn.h"
#include "exporters/log.h"

namespace polar {
namespace {

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

}  // namespace

const std::string& HttpServerRequest::Header(
    const std::string& lower_name) const {
  static const std::string kEmpty;
  auto it = headers.find(lower_name);
  return it == headers.end() ? kEmpty : it->second;
}

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

}  // namespace polar
