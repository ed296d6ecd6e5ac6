#include "daemon/net/https_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <unordered_map>

#include "daemon/net/http1_codec.h"
#include "daemon/net/socket_time.h"

namespace polar {
namespace {

// Deadlines are checked this often while requests are out; timeouts are
// seconds long, so 50 ms of slack is noise.
constexpr auto kHttpsSweepEvery = std::chrono::milliseconds(50);
// One recv() takes this much: everything a wake-up has, for any realistic
// number of answers (Polar's are a few hundred bytes).
constexpr std::size_t kHttpsReadChunk = 64 * 1024;

std::string Errno(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

}  // namespace

// One TCP + TLS connection and the requests on it.
struct HttpsClient::Conn {
  enum class State { kResolving, kConnecting, kHandshaking, kReady };

  explicit Conn(std::size_t max_body) : parser(max_body) {}

  uint64_t id = 0;
  int fd = -1;
  State state = State::kResolving;
  bool closed = false;
  bool h2 = false;  // ALPN chose h2 (once kReady)
  std::unique_ptr<TlsStream> tls;
  std::unique_ptr<H2Session> session;  // h2
  Http1ResponseParser parser;          // http/1.1
  // Assigned while the connection is being set up.
  std::vector<Exchange> waiting;
  std::unordered_map<int32_t, Exchange> streams;  // h2, by stream id
  std::optional<Exchange> exchange;               // http/1.1, one at a time
  bool reused = false;  // http/1.1: carried an answered exchange before
  bool want_write = false;
  bool dirty = false;
  bool eof = false;  // the peer closed or reset the TCP connection
  // The kernel's receive time of the newest bytes read (wall clock), for
  // when answers arrived.
  std::optional<timespec> received;
  std::string eof_error;
  bool goaway_counted = false;
  // HTTP/2: requests wait in `waiting` until the server's SETTINGS say how
  // many streams it takes; then they are handed out again.
  bool settings_known = false;
  std::string plain_in;   // decrypted, not yet parsed
  std::string plain_out;  // to encrypt (HTTP/1.1 requests, h2 frames)
  MonoTime connect_deadline{};
  std::vector<ResolvedAddress> addresses;
  std::size_t next_address = 0;
};

std::optional<HttpsTarget> ParseHttpsTarget(std::string_view base_url) {
  constexpr std::string_view kScheme = "https://";
  if (base_url.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  std::string_view rest = base_url.substr(kScheme.size());
  const std::size_t slash = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, slash);
  HttpsTarget target;
  if (slash != std::string_view::npos) {
    if (rest[slash] != '/') return std::nullopt;
    target.path_prefix = std::string(rest.substr(slash));
    while (!target.path_prefix.empty() && target.path_prefix.back() == '/') {
      target.path_prefix.pop_back();
    }
  }
  if (authority.empty() || authority.find('@') != std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view host;
  std::string_view port_text;
  bool bracketed = false;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    bracketed = true;
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      port_text = authority.substr(close + 2);
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
    }
  }
  if (host.empty()) return std::nullopt;
  unsigned port = 443;
  if (!port_text.empty()) {
    auto [ptr, ec] = std::from_chars(port_text.data(),
                                     port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() ||
        port == 0 || port > 65535) {
      return std::nullopt;
    }
  }
  target.host = std::string(host);
  target.port = static_cast<uint16_t>(port);
  target.authority = std::string(authority);
  ResolvedAddress a;
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.address);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.address);
  if (inet_pton(AF_INET6, target.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(target.port);
    a.length = sizeof(sockaddr_in6);
    target.host_is_ip = true;
    target.literal = a;
  } else if (bracketed) {
    return std::nullopt;
  } else if (inet_pton(AF_INET, target.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(target.port);
    a.length = sizeof(sockaddr_in);
    target.host_is_ip = true;
    target.literal = a;
  }
  return target;
}

HttpsClient::HttpsClient(EventLoop& loop, const Clock& clock,
                         HttpsOptions options)
    : loop_(loop),
      clock_(clock),
      options_(std::move(options)),
      tls_(TlsClientOptions{options_.ca_file, options_.offer_h2}),
      expect_h2_(options_.offer_h2) {
  if (!options_.target.literal) {
    resolver_ = std::make_unique<Resolver>(loop_, options_.target.host,
                                           options_.target.port);
  }
  std::string common = "Host: " + options_.target.authority + "\r\n";
  if (!options_.user_agent.empty()) {
    common += "User-Agent: " + options_.user_agent + "\r\n";
  }
  common += "Accept: application/json\r\n";
  h1_anon_ = common;
  // No token, no header: "Bearer " with nothing after it is a malformed
  // value (HTTP/2 servers reset the connection over its trailing blank).
  h1_auth_ = options_.token.empty()
                 ? common
                 : common + "Authorization: Bearer " + options_.token + "\r\n";
  h2_headers_.authority = options_.target.authority;
  h2_headers_.path_prefix = options_.target.path_prefix;
  h2_headers_.user_agent = options_.user_agent;
  if (!options_.token.empty()) {
    h2_headers_.authorization = "Bearer " + options_.token;
  }
}

HttpsClient::~HttpsClient() {
  if (sweep_timer_) loop_.Cancel(sweep_timer_);
  // Requests still queued or on the wire are abandoned without callbacks: the
  // daemon is shutting down (or a reload retired this engine after its drain
  // gave up).
  for (auto& conn : connections_) {
    if (conn->fd >= 0) {
      loop_.Unwatch(conn->fd);
      close(conn->fd);
    }
  }
}

void HttpsClient::Send(Request request, ResponseCallback done) {
  Exchange exchange;
  exchange.request = std::move(request);
  exchange.done = std::move(done);
  queue_.push_back(std::move(exchange));
  Pump();
}

void HttpsClient::Pump() {
  // Not re-entrant: a callback run from a delivery may Send, which lands here
  // while an outer Pump() is still assigning.
  if (pumping_) return;
  pumping_ = true;
  while (!queue_.empty()) {
    Conn* conn = PickConnection();
    if (!conn) {
      if (connections_.size() >= options_.connections) break;
      conn = OpenConnection();
    }
    Exchange exchange = std::move(queue_.front());
    queue_.pop_front();
    Assign(conn, std::move(exchange));
  }
  pumping_ = false;
}

namespace {

// Requests can go on the wire now: set up, and for HTTP/2 the server's limit
// known.
bool Submittable(const HttpsClient::Conn& conn) {
  return conn.state == HttpsClient::Conn::State::kReady &&
         (!conn.h2 || conn.settings_known);
}

}  // namespace

std::size_t HttpsClient::AssumedCapacity(const Conn&) const {
  // Until ALPN answers, a connection is expected to be like the last one:
  // HTTP/2 takes many streams (so a burst waits for one handshake instead of
  // opening a connection per request), HTTP/1.1 one request.
  return expect_h2_ ? H2Session::kDefaultMaxStreams : 1;
}

HttpsClient::Conn* HttpsClient::PickConnection() {
  // The oldest HTTP/2 connection with room: streams gather on few
  // connections.
  for (auto& conn : connections_) {
    if (conn->h2 && Submittable(*conn) && !conn->closed &&
        conn->session->CanSubmit()) {
      return conn.get();
    }
  }
  if (!idle_h1_.empty()) {
    Conn* conn = idle_h1_.back();
    idle_h1_.pop_back();
    return conn;
  }
  for (auto& conn : connections_) {
    if (!Submittable(*conn) && !conn->closed &&
        conn->waiting.size() < AssumedCapacity(*conn)) {
      return conn.get();
    }
  }
  return nullptr;
}

HttpsClient::Conn* HttpsClient::OpenConnection() {
  auto owned = std::make_unique<Conn>(options_.max_response_bytes);
  Conn* conn = owned.get();
  conn->id = next_conn_id_++;
  connections_.push_back(std::move(owned));
  ++stats_.connections_opened;
  conn->connect_deadline = clock_.Now() + options_.connect_timeout;
  ArmSweep();
  if (options_.target.literal) {
    conn->addresses.push_back(*options_.target.literal);
    Connect(conn);
    return conn;
  }
  conn->state = Conn::State::kResolving;
  resolver_->Resolve(
      [this, conn, id = conn->id](std::vector<ResolvedAddress> addresses,
                                  std::string error) {
        // The connection may have timed out while the lookup ran.
        auto it = std::find_if(connections_.begin(), connections_.end(),
                               [&](const auto& c) { return c.get() == conn; });
        if (it == connections_.end() || conn->id != id || conn->closed) return;
        if (!error.empty()) {
          Fail(conn, Outcome::kConnectError, error);
          return;
        }
        conn->addresses = std::move(addresses);
        Connect(conn);
      });
  return conn;
}

void HttpsClient::Connect(Conn* conn) {
  while (conn->next_address < conn->addresses.size()) {
    const ResolvedAddress& a = conn->addresses[conn->next_address++];
    const int fd = socket(a.address.ss_family,
                          SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      FailSoon(conn, Outcome::kConnectError, Errno("socket", errno));
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Answers are dated by when they reached the kernel, not by when the loop
    // got to them.
    EnableReceiveTimestamps(fd);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&a.address), a.length) <
            0 &&
        errno != EINPROGRESS) {
      const int err = errno;
      close(fd);
      if (conn->next_address < conn->addresses.size()) continue;
      if (resolver_) resolver_->Invalidate();
      FailSoon(conn, Outcome::kConnectError, Errno("connect", err));
      return;
    }
    conn->fd = fd;
    conn->state = Conn::State::kConnecting;
    conn->want_write = true;
    loop_.Watch(fd, EPOLLOUT,
                [this, conn](uint32_t events) { OnEvents(conn, events); });
    return;
  }
  FailSoon(conn, Outcome::kConnectError, "connect: no address");
}

void HttpsClient::Assign(Conn* conn, Exchange exchange) {
  ++active_;
  // The first connection it went to: a request handed on (its connection
  // spoke http/1.1, or the server refused it) keeps its service time running.
  if (!exchange.assigned) {
    exchange.assigned = true;
    exchange.sent = clock_.Now();
  }
  ArmSweep();
  if (Submittable(*conn)) {
    Start(conn, std::move(exchange));
  } else {
    conn->waiting.push_back(std::move(exchange));
  }
}

void HttpsClient::Start(Conn* conn, Exchange exchange) {
  if (conn->h2) {
    const int32_t id = conn->session->Submit(exchange.request, h2_headers_);
    if (id == 0) {
      // Cannot happen after CanSubmit(); never lose the request if it does.
      --active_;
      queue_.push_front(std::move(exchange));
      return;
    }
    conn->streams.emplace(id, std::move(exchange));
  } else {
    AppendHttp1Request(&conn->plain_out, exchange.request,
                       options_.target.path_prefix,
                       exchange.request.authenticated ? h1_auth_ : h1_anon_);
    conn->parser.Reset();
    conn->exchange = std::move(exchange);
  }
  MarkDirty(conn);
}

void HttpsClient::OnEvents(Conn* conn, uint32_t events) {
  if (conn->closed) return;
  switch (conn->state) {
    case Conn::State::kResolving:
      return;
    case Conn::State::kConnecting:
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) OnConnected(conn);
      return;
    case Conn::State::kHandshaking:
      if ((events & EPOLLOUT) && !SendCiphertext(conn)) return;
      if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        ReadSome(conn);
        Handshake(conn);
      }
      return;
    case Conn::State::kReady:
      if ((events & EPOLLOUT) && !SendCiphertext(conn)) return;
      if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        ReadSome(conn);
        Process(conn);
      }
      return;
  }
}

void HttpsClient::OnConnected(Conn* conn) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    loop_.Unwatch(conn->fd);
    close(conn->fd);
    conn->fd = -1;
    if (conn->next_address < conn->addresses.size()) {
      Connect(conn);  // the host's next address
      return;
    }
    if (resolver_) resolver_->Invalidate();
    Fail(conn, Outcome::kConnectError, Errno("connect", err));
    return;
  }
  conn->state = Conn::State::kHandshaking;
  conn->tls = std::make_unique<TlsStream>(tls_, options_.target.host,
                                          options_.target.host_is_ip);
  Handshake(conn);
}

void HttpsClient::Handshake(Conn* conn) {
  const TlsStream::Result r = conn->tls->Handshake();
  if (r == TlsStream::Result::kError) {
    Fail(conn, Outcome::kTlsError, conn->tls->error());
    return;
  }
  // The ClientHello, or the client's Finished message.
  if (!SendCiphertext(conn)) return;
  if (r == TlsStream::Result::kOk) {
    Established(conn);
    return;
  }
  if (conn->eof) {
    Fail(conn, Outcome::kTlsError,
         "TLS handshake: the server closed the connection" +
             (conn->eof_error.empty() ? "" : " (" + conn->eof_error + ")"));
  }
}

void HttpsClient::Established(Conn* conn) {
  conn->state = Conn::State::kReady;
  // From now on its answers carry kernel receive times, so they may wait for
  // the loop's next wake-up (EventLoop::Wake::kBatched). The handshake did
  // not: each of its round trips would have waited too.
  loop_.Watch(
      conn->fd, EPOLLIN | (conn->want_write ? EPOLLOUT : 0u),
      [this, conn](uint32_t events) { OnEvents(conn, events); },
      EventLoop::Wake::kBatched);
  ++stats_.handshakes;
  if (conn->tls->resumed()) ++stats_.handshakes_resumed;
  conn->h2 = conn->tls->alpn() == "h2";
  expect_h2_ = conn->h2;
  if (conn->h2) {
    // The requests that waited keep waiting for the server's SETTINGS (its
    // concurrency limit): sent before it, streams over the limit would be
    // refused or held back inside nghttp2 while the clock runs.
    conn->session = std::make_unique<H2Session>(options_.max_response_bytes);
    MarkDirty(conn);  // the preface and SETTINGS
  } else {
    idle_h1_.push_back(conn);
    Release(conn);
  }
  // Bytes that came with the end of the handshake (maybe the SETTINGS).
  Process(conn);
  Pump();
}

void HttpsClient::Release(Conn* conn) {
  // The requests that waited for this connection go back to the head of the
  // queue, in order, and Pump() hands them out again: to this connection as
  // far as it takes them (an h2 server's limit, one for http/1.1), the rest
  // to others.
  for (std::size_t i = conn->waiting.size(); i > 0; --i) {
    --active_;
    queue_.push_front(std::move(conn->waiting[i - 1]));
  }
  conn->waiting.clear();
}

void HttpsClient::ReadSome(Conn* conn) {
  char buffer[kHttpsReadChunk];
  conn->received.reset();
  while (!conn->eof) {
    const ssize_t n =
        ReceiveStamped(conn->fd, buffer, sizeof buffer, &conn->received);
    if (n > 0) {
      conn->tls->Received(buffer, static_cast<std::size_t>(n));
      // A short read emptied the socket: skip the recv() that would only
      // say EAGAIN.
      if (static_cast<std::size_t>(n) < sizeof buffer) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    conn->eof = true;
    if (n < 0) conn->eof_error = Errno("recv", errno);
  }
}

void HttpsClient::Process(Conn* conn) {
  if (conn->closed) return;
  const TlsStream::Result r = conn->tls->Read(&conn->plain_in);
  if (conn->h2) {
    ProcessH2(conn);
  } else {
    ProcessH1(conn);
  }
  if (conn->closed) return;
  if (r == TlsStream::Result::kError) {
    Fail(conn, Outcome::kInvalidResponse, conn->tls->error());
    return;
  }
  // TLS may have something to say back (a key update).
  if (!conn->tls->outgoing().empty() && !SendCiphertext(conn)) return;
  if (r == TlsStream::Result::kClosed || conn->eof) OnPeerClosed(conn);
}

void HttpsClient::ProcessH2(Conn* conn) {
  bool ok = true;
  if (!conn->plain_in.empty()) {
    ok = conn->session->Receive(conn->plain_in, clock_.WallNow());
    conn->plain_in.clear();
  }
  if (ok && !conn->settings_known && conn->session->settings_received()) {
    conn->settings_known = true;
    Release(conn);  // Finish() below pumps them out
  }
  std::vector<H2StreamEnd> ended = std::move(conn->session->ended());
  conn->session->ended().clear();
  std::vector<std::pair<Exchange, Response>> done;
  const MonoTime arrived =
      ended.empty() ? MonoTime{} : ArrivalTime(clock_, conn->received);
  for (H2StreamEnd& end : ended) {
    auto it = conn->streams.find(end.stream_id);
    if (it == conn->streams.end()) continue;
    Exchange exchange = std::move(it->second);
    conn->streams.erase(it);
    if (end.kind == H2StreamEnd::Kind::kRefused) {
      ++stats_.streams_refused;
      if (!exchange.resent) {
        // Not processed by the server: send it on another connection.
        Requeue(std::move(exchange));
        continue;
      }
    }
    Response response;
    response.intended = exchange.request.intended;
    response.sent = exchange.sent;
    response.done = std::max(arrived, exchange.sent);
    if (end.kind == H2StreamEnd::Kind::kComplete) {
      response.status = end.status;
      response.http_version = 2;
      response.body = std::move(end.body);
      response.retry_after = end.retry_after;
    } else {
      response.transport = Outcome::kInvalidResponse;
      response.error = std::move(end.error);
    }
    done.emplace_back(std::move(exchange), std::move(response));
  }
  if (conn->session->goaway_received() && !conn->goaway_counted) {
    conn->goaway_counted = true;
    ++stats_.goaways;
  }
  if (!ok) {
    // The streams that ended cleanly above still count as answered.
    const std::string error = conn->session->error();
    Fail(conn, Outcome::kInvalidResponse, error);
  } else if (conn->streams.empty() &&
             (conn->session->goaway_received() || conn->session->finished())) {
    Close(conn);  // drained after GOAWAY
  } else if (conn->session->WantsToWrite()) {
    MarkDirty(conn);  // SETTINGS and PING acknowledgements, WINDOW_UPDATEs
  }
  Finish(std::move(done));
}

void HttpsClient::ProcessH1(Conn* conn) {
  if (conn->plain_in.empty()) return;
  if (!conn->exchange) {
    // Bytes nobody asked for on an idle connection: the peer is confused.
    conn->plain_in.clear();
    Close(conn);
    return;
  }
  std::size_t consumed = 0;
  const auto status =
      conn->parser.Feed(conn->plain_in, clock_.WallNow(), &consumed);
  const bool extra = consumed < conn->plain_in.size();
  conn->plain_in.clear();
  if (status == Http1ResponseParser::Status::kNeedMore) return;
  if (status == Http1ResponseParser::Status::kError) {
    conn->reused = false;  // an answer started: never resent
    Fail(conn, Outcome::kInvalidResponse, conn->parser.error());
    return;
  }
  // Bytes after the answer that nobody asked for: the next exchange could
  // not be told apart from them, so this connection is done.
  CompleteH1(conn, extra);
}

void HttpsClient::CompleteH1(Conn* conn, bool close_after) {
  Exchange exchange = std::move(*conn->exchange);
  conn->exchange.reset();
  Response response;
  response.intended = exchange.request.intended;
  response.sent = exchange.sent;
  response.done = std::max(ArrivalTime(clock_, conn->received), exchange.sent);
  response.status = conn->parser.status();
  response.http_version = conn->parser.http_version();
  response.retry_after = conn->parser.retry_after();
  response.body = std::move(conn->parser.body());
  if (conn->parser.close_after() || close_after || conn->eof) {
    Close(conn);
  } else {
    conn->reused = true;
    idle_h1_.push_back(conn);
  }
  std::vector<std::pair<Exchange, Response>> done;
  done.emplace_back(std::move(exchange), std::move(response));
  Finish(std::move(done));
}

void HttpsClient::OnPeerClosed(Conn* conn) {
  if (conn->closed) return;
  const std::string why = conn->eof_error.empty()
                              ? "the server closed the connection"
                              : conn->eof_error;
  if (!conn->h2 && conn->exchange) {
    if (conn->parser.Finish() == Http1ResponseParser::Status::kDone) {
      // The body ran until the connection closed.
      CompleteH1(conn, true);
      return;
    }
    if (conn->reused && !conn->parser.started() && !conn->exchange->resent) {
      // The server closed an idle keep-alive connection as we reused it: no
      // answer was started, so send the request again on a new connection.
      Exchange exchange = std::move(*conn->exchange);
      conn->exchange.reset();
      Close(conn);
      Requeue(std::move(exchange));
      Pump();
      return;
    }
    Fail(conn, Outcome::kInvalidResponse,
         "connection closed before the response ended: " + why);
    return;
  }
  if (conn->h2 && !conn->streams.empty()) {
    Fail(conn, Outcome::kInvalidResponse,
         "connection closed with requests in flight: " + why);
    return;
  }
  Close(conn);
}

void HttpsClient::MarkDirty(Conn* conn) {
  if (conn->dirty || conn->closed) return;
  conn->dirty = true;
  dirty_.push_back(conn);
  if (flush_posted_) return;
  flush_posted_ = true;
  // Everything the rest of this loop turn adds (the other arrivals of a timer
  // slack window, the next requests a callback sends) goes out with it.
  loop_.Post([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    flush_posted_ = false;
    FlushDirty();
  });
}

void HttpsClient::FlushDirty() {
  std::vector<Conn*> dirty;
  dirty.swap(dirty_);
  for (Conn* conn : dirty) {
    conn->dirty = false;
    if (!conn->closed) Flush(conn);
  }
}

bool HttpsClient::Flush(Conn* conn) {
  if (conn->state != Conn::State::kReady) return true;
  if (conn->h2 && !conn->session->Output(&conn->plain_out)) {
    const std::string error = conn->session->error();
    Fail(conn, Outcome::kInvalidResponse, error);
    return false;
  }
  if (!conn->plain_out.empty()) {
    if (conn->tls->Write(conn->plain_out) != TlsStream::Result::kOk) {
      const std::string error = conn->tls->error();
      Fail(conn, Outcome::kInvalidResponse, error);
      return false;
    }
    conn->plain_out.clear();
  }
  return SendCiphertext(conn);
}

bool HttpsClient::SendCiphertext(Conn* conn) {
  std::string& out = conn->tls->outgoing();
  std::size_t offset = 0;
  while (offset < out.size()) {
    const ssize_t n =
        send(conn->fd, out.data() + offset, out.size() - offset, MSG_NOSIGNAL);
    if (n > 0) {
      offset += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      out.erase(0, offset);
      SetWantWrite(conn, true);
      return true;
    }
    const int err = errno;
    out.clear();
    conn->reused = false;
    Fail(conn,
         conn->state == Conn::State::kReady ? Outcome::kInvalidResponse
                                            : Outcome::kTlsError,
         Errno("send", err));
    return false;
  }
  out.clear();
  SetWantWrite(conn, false);
  return true;
}

void HttpsClient::SetWantWrite(Conn* conn, bool want) {
  if (conn->want_write == want) return;
  conn->want_write = want;
  loop_.Modify(conn->fd, EPOLLIN | (want ? EPOLLOUT : 0u));
}

Response HttpsClient::FailureFor(const Exchange& exchange, Outcome outcome,
                                 const std::string& error, MonoTime done) {
  Response r;
  r.transport = outcome;
  r.intended = exchange.request.intended;
  r.sent = exchange.sent;
  r.done = done;
  r.error = error;
  return r;
}

void HttpsClient::Fail(Conn* conn, Outcome outcome, const std::string& error) {
  if (conn->closed) return;
  std::vector<Exchange> failed = std::move(conn->waiting);
  conn->waiting.clear();
  if (conn->exchange) {
    failed.push_back(std::move(*conn->exchange));
    conn->exchange.reset();
  }
  for (auto& [id, exchange] : conn->streams) {
    failed.push_back(std::move(exchange));
  }
  conn->streams.clear();
  Close(conn);
  std::vector<std::pair<Exchange, Response>> done;
  done.reserve(failed.size());
  const MonoTime now = clock_.Now();
  for (Exchange& exchange : failed) {
    Response response = FailureFor(exchange, outcome, error, now);
    done.emplace_back(std::move(exchange), std::move(response));
  }
  Finish(std::move(done));
}

void HttpsClient::FailSoon(Conn* conn, Outcome outcome, std::string error) {
  loop_.Post([this, alive = std::weak_ptr<bool>(alive_), conn, id = conn->id,
              outcome, error = std::move(error)] {
    if (alive.expired()) return;
    auto it = std::find_if(connections_.begin(), connections_.end(),
                           [&](const auto& c) { return c.get() == conn; });
    if (it == connections_.end() || conn->id != id) return;
    Fail(conn, outcome, error);
  });
}

void HttpsClient::Close(Conn* conn) {
  if (conn->closed) return;
  conn->closed = true;
  if (conn->fd >= 0) {
    loop_.Unwatch(conn->fd);
    close(conn->fd);
    conn->fd = -1;
  }
  idle_h1_.erase(std::remove(idle_h1_.begin(), idle_h1_.end(), conn),
                 idle_h1_.end());
  dirty_.erase(std::remove(dirty_.begin(), dirty_.end(), conn), dirty_.end());
  auto it = std::find_if(connections_.begin(), connections_.end(),
                         [conn](const auto& c) { return c.get() == conn; });
  if (it != connections_.end()) {
    // The Conn may be on the call stack (its own event handler): free it only
    // after this loop turn.
    closed_.push_back(std::move(*it));
    connections_.erase(it);
  }
  if (!reap_posted_) {
    reap_posted_ = true;
    loop_.Post([this, alive = std::weak_ptr<bool>(alive_)] {
      if (alive.expired()) return;
      reap_posted_ = false;
      closed_.clear();
    });
  }
}

void HttpsClient::Requeue(Exchange exchange) {
  --active_;
  exchange.resent = true;
  ++stats_.requests_resent;
  queue_.push_front(std::move(exchange));
}

void HttpsClient::Finish(std::vector<std::pair<Exchange, Response>> done) {
  // Refill the wire before running callbacks, so a slow callback never
  // delays queued sends.
  Pump();
  for (auto& [exchange, response] : done) {
    Deliver(std::move(exchange), std::move(response));
  }
}

void HttpsClient::Deliver(Exchange exchange, Response response) {
  --active_;
  exchange.done(std::move(response));
}

void HttpsClient::ArmSweep() {
  if (sweep_timer_) return;
  sweep_timer_ = loop_.AddTimerAfter(kHttpsSweepEvery, [this] {
    sweep_timer_ = 0;
    Sweep();
  });
}

void HttpsClient::Sweep() {
  const MonoTime now = clock_.Now();
  struct Late {
    Conn* conn;
    uint64_t id;
    bool whole;  // the connection, not one stream
    int32_t stream;
  };
  std::vector<Late> late;
  bool busy = false;
  for (auto& c : connections_) {
    Conn* conn = c.get();
    if (!Submittable(*conn)) {
      busy = true;
      if (now >= conn->connect_deadline)
        late.push_back({conn, conn->id, true, 0});
      continue;
    }
    if (conn->exchange) {
      busy = true;
      if (now >= conn->exchange->sent + options_.timeout) {
        late.push_back({conn, conn->id, true, 0});
      }
    }
    for (auto& [id, exchange] : conn->streams) {
      busy = true;
      if (now >= exchange.sent + options_.timeout) {
        late.push_back({conn, conn->id, false, id});
      }
    }
  }
  std::vector<std::pair<Exchange, Response>> done;
  for (const Late& l : late) {
    auto it = std::find_if(connections_.begin(), connections_.end(),
                           [&](const auto& c) { return c.get() == l.conn; });
    if (it == connections_.end() || l.conn->id != l.id || l.conn->closed) {
      continue;
    }
    Conn* conn = l.conn;
    if (l.whole) {
      const char* why =
          Submittable(*conn)                   ? "request timed out"
          : conn->state == Conn::State::kReady ? "no HTTP/2 SETTINGS in time"
          : conn->state == Conn::State::kHandshaking ? "TLS handshake timed out"
          : conn->state == Conn::State::kResolving ? "name resolution timed out"
                                                   : "connect timed out";
      conn->reused = false;  // a timeout is never resent
      Fail(conn, Outcome::kTimeout, why);
      continue;
    }
    auto s = conn->streams.find(l.stream);
    if (s == conn->streams.end()) continue;
    Exchange exchange = std::move(s->second);
    conn->streams.erase(s);
    conn->session->Cancel(l.stream);
    MarkDirty(conn);
    Response response =
        FailureFor(exchange, Outcome::kTimeout, "request timed out", now);
    done.emplace_back(std::move(exchange), std::move(response));
  }
  Finish(std::move(done));
  if (busy || active_ > 0) ArmSweep();
}

}  // namespace polar
