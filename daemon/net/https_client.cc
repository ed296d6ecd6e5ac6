// HttpsClient, request bookkeeping: the target's URL, the FIFO of requests
// waiting for a connection, handing them to connections (HTTP/2 streams
// gather on few connections, HTTP/1.1 takes an idle one), deadlines (one
// sweep every 50 ms), failures and delivering answers to their callbacks.
// The connections themselves are in https_connection.cc, reading answers in
// https_answers.cc; the contract is in https_client.h.
//
// Owned by HttpEngine; loop thread only.
#include "daemon/net/https_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "daemon/net/https_conn.h"

namespace polar {
namespace {

// Deadlines are checked this often while requests are out; timeouts are
// seconds long, so 50 ms of slack is noise.
constexpr auto kHttpsSweepEvery = std::chrono::milliseconds(50);

}  // namespace

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
