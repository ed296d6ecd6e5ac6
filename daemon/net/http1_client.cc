#include "daemon/net/http1_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "daemon/net/http1_codec.h"
#include "daemon/net/socket_time.h"

namespace polar {
namespace {

// Deadlines are checked this often while exchanges are on the wire; timeouts
// are seconds long, so 50 ms of slack is noise.
constexpr auto kSweepEvery = std::chrono::milliseconds(50);
constexpr std::size_t kReadChunk = 64 * 1024;

}  // namespace

// One TCP connection and the exchange on it, if any.
struct Http1Client::Conn {
  enum class State { kConnecting, kIdle, kBusy };

  explicit Conn(std::size_t max_body) : parser(max_body) {}

  int fd = -1;
  State state = State::kConnecting;
  bool reused = false;      // carried an exchange before this one
  bool want_write = false;  // EPOLLOUT registered
  std::string out;          // request bytes not yet written
  std::size_t out_offset = 0;
  // The kernel's receive time of the newest bytes read (wall clock).
  std::optional<timespec> received;
  std::optional<Exchange> exchange;
  Response response;
  MonoTime deadline{};
  // The answer to the current exchange, parsed as it arrives.
  Http1ResponseParser parser;
  bool close_after = false;  // bytes came after the answer
};

std::optional<Http1Target> PlainHttpTarget(std::string_view base_url) {
  constexpr std::string_view kScheme = "http://";
  if (base_url.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  std::string_view rest = base_url.substr(kScheme.size());
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  Http1Target target;
  if (slash != std::string_view::npos) {
    target.path_prefix = std::string(rest.substr(slash));
    while (!target.path_prefix.empty() && target.path_prefix.back() == '/') {
      target.path_prefix.pop_back();
    }
  }
  if (authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string host;
  std::string_view port_text;
  bool ipv6 = false;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = std::string(authority.substr(1, close - 1));
    ipv6 = true;
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      port_text = authority.substr(close + 2);
    }
  } else {
    std::size_t colon = authority.rfind(':');
    host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
    }
  }
  unsigned port = 80;
  if (!port_text.empty()) {
    auto [ptr, ec] = std::from_chars(port_text.data(),
                                     port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() ||
        port == 0 || port > 65535) {
      return std::nullopt;
    }
  }
  if (host == "localhost") host = "127.0.0.1";
  if (ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&target.address);
    if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) {
      return std::nullopt;
    }
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    target.address_length = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&target.address);
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) {
      return std::nullopt;
    }
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    target.address_length = sizeof(sockaddr_in);
  }
  target.host_header = std::string(authority);
  return target;
}

Http1Client::Http1Client(EventLoop& loop, const Clock& clock,
                         Http1Options options)
    : loop_(loop), clock_(clock), options_(std::move(options)) {
  std::string common = "Host: " + options_.target.host_header + "\r\n";
  if (!options_.user_agent.empty()) {
    common += "User-Agent: " + options_.user_agent + "\r\n";
  }
  common += "Accept: application/json\r\n";
  header_anon_ = common;
  header_auth_ = common + "Authorization: Bearer " + options_.token + "\r\n";
}

Http1Client::~Http1Client() {
  sweep_timer_.Cancel();
  // Exchanges still queued or on the wire are abandoned without callbacks:
  // the daemon is shutting down (or a reload retired this engine after its
  // drain gave up).
  for (auto& conn : connections_) {
    loop_.Unwatch(conn->fd);
    close(conn->fd);
  }
}

void Http1Client::Send(Request request, ResponseCallback done) {
  queue_.push_back(Exchange{std::move(request), std::move(done), false});
  sending_ = true;
  Pump();
  sending_ = false;
}

void Http1Client::Pump() {
  // Not re-entrant: a delivery inside the loop below (a refused connection)
  // may call back into Pump(); the outer loop carries on instead, so a long
  // queue against a dead target never recurses.
  if (pumping_) return;
  pumping_ = true;
  while (!queue_.empty() && active_ < options_.connections) {
    Conn* conn = nullptr;
    if (!idle_.empty()) {
      conn = idle_.back();
      idle_.pop_back();
    } else {
      conn = OpenConnection();
      if (!conn) break;  // the failure was delivered; try the next one
    }
    Exchange exchange = std::move(queue_.front());
    queue_.pop_front();
    Assign(conn, std::move(exchange));
  }
  pumping_ = false;
}

Http1Client::Conn* Http1Client::OpenConnection() {
  const Http1Target& t = options_.target;
  int fd = socket(t.address.ss_family,
                  SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Answers are dated by when they reached the kernel (their sockets are
    // batched into the loop's next wake-up once connected).
    EnableReceiveTimestamps(fd);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&t.address),
                t.address_length) < 0 &&
        errno != EINPROGRESS) {
      err = errno;
    }
  }
  if (err != 0) {
    // Refused at once (loopback answers RST synchronously) or out of fds:
    // the first queued exchange fails as a connect error.
    if (fd >= 0) close(fd);
    Exchange exchange = std::move(queue_.front());
    queue_.pop_front();
    Response r;
    r.transport = Outcome::kConnectError;
    r.intended = exchange.request.intended;
    r.sent = r.done = clock_.Now();
    r.error = std::string("connect: ") + std::strerror(err);
    ++active_;  // Deliver() decrements
    Deliver(std::move(exchange), std::move(r));
    return nullptr;
  }
  auto owned = std::make_unique<Conn>(options_.max_response_bytes);
  Conn* conn = owned.get();
  conn->fd = fd;
  conn->state = Conn::State::kConnecting;
  conn->want_write = true;
  connections_.push_back(std::move(owned));
  loop_.Watch(fd, EPOLLIN | EPOLLOUT,
              [this, conn](uint32_t events) { OnEvents(conn, events); });
  return conn;
}

void Http1Client::Assign(Conn* conn, Exchange exchange) {
  ++active_;
  const Request& req = exchange.request;
  conn->out.clear();
  conn->out_offset = 0;
  AppendHttp1Request(&conn->out, req, options_.target.path_prefix,
                     req.authenticated ? header_auth_ : header_anon_);
  conn->response = Response{};
  conn->response.intended = req.intended;
  conn->response.sent = clock_.Now();
  conn->parser.Reset();
  conn->close_after = false;
  conn->exchange = std::move(exchange);
  const Duration budget = conn->state == Conn::State::kConnecting
                              ? options_.connect_timeout
                              : options_.timeout;
  conn->deadline = conn->response.sent + budget;
  ArmSweep();
  if (conn->state == Conn::State::kIdle) {
    conn->state = Conn::State::kBusy;
    WriteSome(conn);
  }
  // A connecting socket writes once the kernel reports it connected.
}

void Http1Client::WriteSome(Conn* conn) {
  while (conn->out_offset < conn->out.size()) {
    ssize_t n = send(conn->fd, conn->out.data() + conn->out_offset,
                     conn->out.size() - conn->out_offset, MSG_NOSIGNAL);
    if (n > 0) {
      conn->out_offset += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!conn->want_write) {
        conn->want_write = true;
        loop_.Watch(
            conn->fd, EPOLLIN | EPOLLOUT,
            [this, conn](uint32_t events) { OnEvents(conn, events); },
            EventLoop::Wake::kBatched);
      }
      return;
    }
    Fail(conn, Outcome::kInvalidResponse,
         std::string("send: ") + std::strerror(errno));
    return;
  }
  if (conn->want_write) {
    // Connected: from now on its answers may wait for the loop's next
    // wake-up (EventLoop::Wake::kBatched), dated by ReceiveStamped().
    conn->want_write = false;
    loop_.Watch(
        conn->fd, EPOLLIN,
        [this, conn](uint32_t events) { OnEvents(conn, events); },
        EventLoop::Wake::kBatched);
  }
}

void Http1Client::OnEvents(Conn* conn, uint32_t events) {
  if (conn->fd < 0) return;  // closed earlier in this batch
  if (conn->state == Conn::State::kConnecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(conn, Outcome::kConnectError,
           std::string("connect: ") + std::strerror(err));
      return;
    }
    conn->state = Conn::State::kBusy;
    conn->deadline = conn->response.sent + options_.timeout;
    WriteSome(conn);
    return;
  }
  if ((events & EPOLLOUT) && conn->state == Conn::State::kBusy) {
    WriteSome(conn);
    if (conn->fd < 0) return;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ReadSome(conn);
}

void Http1Client::ReadSome(Conn* conn) {
  char buffer[kReadChunk];
  while (true) {
    ssize_t n =
        ReceiveStamped(conn->fd, buffer, sizeof buffer, &conn->received);
    if (n > 0) {
      if (conn->state != Conn::State::kBusy) {
        // Bytes nobody asked for on an idle connection: the peer is confused.
        Close(conn);
        return;
      }
      const std::string_view bytes(buffer, static_cast<std::size_t>(n));
      std::size_t consumed = 0;
      const auto status = conn->parser.Feed(bytes, clock_.WallNow(), &consumed);
      if (status == Http1ResponseParser::Status::kError) {
        conn->reused = false;  // an answer started: never sent again
        Fail(conn, Outcome::kInvalidResponse, conn->parser.error());
        return;
      }
      if (status == Http1ResponseParser::Status::kDone) {
        // Bytes after the answer that nobody asked for: the next exchange
        // could not be told apart from them, so this connection is done.
        conn->close_after = consumed < bytes.size();
        Complete(conn);
        return;
      }
      if (static_cast<std::size_t>(n) < sizeof buffer) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // End of stream or a reset.
    const int err = n < 0 ? errno : 0;
    if (conn->state != Conn::State::kBusy) {
      Close(conn);  // an idle keep-alive connection the server closed
      return;
    }
    if (err == 0 &&
        conn->parser.Finish() == Http1ResponseParser::Status::kDone) {
      conn->close_after = true;
      Complete(conn);  // the body ends with the connection
      return;
    }
    Fail(conn, Outcome::kInvalidResponse,
         err ? std::string("recv: ") + std::strerror(err)
             : std::string("connection closed before the response ended"));
    return;
  }
}

void Http1Client::Complete(Conn* conn) {
  Exchange exchange = std::move(*conn->exchange);
  conn->exchange.reset();
  Response response = std::move(conn->response);
  response.transport = Outcome::kOk;
  response.done = std::max(ArrivalTime(clock_, conn->received), response.sent);
  response.status = conn->parser.status();
  response.http_version = conn->parser.http_version();
  response.retry_after = conn->parser.retry_after();
  response.body = std::move(conn->parser.body());
  if (conn->close_after || conn->parser.close_after()) {
    Close(conn);
  } else {
    conn->state = Conn::State::kIdle;
    conn->reused = true;
    idle_.push_back(conn);
  }
  Deliver(std::move(exchange), std::move(response));
}

void Http1Client::Fail(Conn* conn, Outcome outcome, std::string error) {
  std::optional<Exchange> exchange = std::move(conn->exchange);
  conn->exchange.reset();
  const bool stale = conn->reused && !conn->parser.started() &&
                     outcome == Outcome::kInvalidResponse;
  Response response = std::move(conn->response);
  Close(conn);
  if (!exchange) return;
  if (stale && !exchange->retried) {
    // The server closed an idle keep-alive connection as we reused it: no
    // answer was started, so send the request again on a new connection.
    --active_;
    exchange->retried = true;
    queue_.push_front(std::move(*exchange));
    Pump();
    return;
  }
  response.transport = outcome;
  response.done = clock_.Now();
  response.error = std::move(error);
  response.status = 0;
  response.http_version = 0;
  response.body.clear();
  Deliver(std::move(*exchange), std::move(response));
}

void Http1Client::Close(Conn* conn) {
  if (conn->fd < 0) return;
  loop_.Unwatch(conn->fd);
  close(conn->fd);
  conn->fd = -1;
  idle_.erase(std::remove(idle_.begin(), idle_.end(), conn), idle_.end());
  auto it = std::find_if(connections_.begin(), connections_.end(),
                         [conn](const auto& c) { return c.get() == conn; });
  if (it != connections_.end()) {
    // The Conn may be on the call stack (its own event handler): free it only
    // after this loop turn.
    closed_.push_back(std::move(*it));
    connections_.erase(it);
  }
  if (!drain_posted_) {
    drain_posted_ = true;
    loop_.Post([this, alive = std::weak_ptr<bool>(alive_)] {
      if (alive.expired()) return;
      drain_posted_ = false;
      closed_.clear();
    });
  }
}

void Http1Client::Deliver(Exchange exchange, Response response) {
  --active_;
  if (sending_ || pumping_) {
    // Send() must never run a callback before it returns, and Pump() must
    // not be re-entered through one: run these after the current callback.
    deferred_.emplace_back(std::move(exchange), std::move(response));
    if (deferred_.size() == 1) {
      loop_.Post([this, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.expired()) return;
        auto batch = std::move(deferred_);
        deferred_.clear();
        Pump();
        for (auto& [ex, resp] : batch) ex.done(std::move(resp));
      });
    }
    return;
  }
  // Refill the wire before running the callback, so a slow callback never
  // delays queued sends.
  Pump();
  exchange.done(std::move(response));
}

void Http1Client::ArmSweep() {
  if (!sweep_timer_.pending())
    sweep_timer_ = loop_.Every(kSweepEvery, [this] { Sweep(); });
}

void Http1Client::Sweep() {
  const MonoTime now = clock_.Now();
  std::vector<Conn*> late;
  bool busy = false;
  for (auto& conn : connections_) {
    if (!conn->exchange) continue;
    busy = true;
    if (now >= conn->deadline) late.push_back(conn.get());
  }
  for (Conn* conn : late) {
    if (conn->fd < 0 || !conn->exchange) continue;
    const bool connecting = conn->state == Conn::State::kConnecting;
    conn->reused = false;  // a timeout is never retried
    Fail(conn, Outcome::kTimeout,
         connecting ? "connect timed out" : "request timed out");
  }
  if (!busy && active_ == 0) sweep_timer_.Cancel();  // idle: no more sweeps
}

}  // namespace polar
