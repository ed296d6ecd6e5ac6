// HttpServer: the daemon's strict HTTP/1.1 server on its EventLoop, behind
// both of its listeners: /metrics with the status page and the control API,
// and the webhook receiver. Built to face the internet (nginx's defaults are
// the model; docs/reliability.md has the attacks it is tested against):
//
//   - connections: at most `max_connections`, and `max_connections_per_ip`
//     from one client address (an IPv6 client's /64). A new connection over
//     the per-IP limit is closed at once; one over the total cap closes the
//     oldest connection without a request in progress (idle between requests,
//     still sending its head, or lingering after a refusal) and is served;
//     only when every connection is busy is the new one closed. All counted.
//   - deadlines, none reset by each byte: the whole request head within
//     `head` of the accept (of its first byte on a kept-alive connection);
//     the body at a minimum average rate after a grace, and within a maximum;
//     the response read at a minimum rate likewise; idle keep-alive closed
//     after `keepalive`. One sweep every 250 ms checks them.
//   - framing and target strictly (http_request.h): ambiguous requests are
//     refused, counted, and their connection closed.
//   - before the body: the Host allow-list (`check_host`), the owner's
//     HeadHandler (the webhook receiver's size, id and timestamp checks; the
//     control API's token), and Content-Length against `max_body_bytes`, so a
//     body that will be refused is never read and never gets
//     "100 Continue". A refused connection is half-closed and its input
//     drained for up to `linger` (as nginx's lingering close), so the client
//     reads the answer instead of a reset.
//
// Why not libmicrohttpd any more (it served both listeners until then; 0.9.75
// in Debian 12): its only timeout is an idle timer that every byte resets,
// its connection limits refuse silently (nothing to count) and, in
// external-epoll mode, at the cap it stops accepting so new connections wait
// in the backlog; nothing evicts the oldest idle connection; it accepts
// folded header lines, lets Transfer-Encoding override Content-Length, reads
// an unknown transfer coding until the connection closes, takes the first of
// two Content-Lengths, and hands handlers the decoded path as a C string, so
// "/webhooks/polar%00" arrived as "/webhooks/polar". docs/architecture.md
// ("The listeners") has the details.
//
// Owned by App (metrics) and WebhookService (webhooks); loop thread only.
// Handlers run on the loop and must be quick; they see no other thread.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/net/event_loop.h"
#include "daemon/net/http_listener_metrics.h"
#include "daemon/net/http_request.h"
#include "daemon/net/listen_address.h"

namespace polar {

struct HttpServerRequest {
  std::string method;
  std::string path;  // %-decoded, without the query string
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;  // empty when a HeadHandler sees the request
  // The declared Content-Length; nullopt for a chunked body or none.
  std::optional<uint64_t> content_length;
  std::string remote;  // the client's address ("127.0.0.1"), for audit logs
  std::size_t header_bytes = 0;  // names + values + 4 per header line

  // A header value or "" (names are case-insensitive).
  const std::string& Header(const std::string& lower_name) const;
};

struct HttpServerResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<HttpServerResponse(const HttpServerRequest&)>;
// Sees each request once its head is in, before a byte of the body is read:
// a response refuses it there (the body is then never read); nullopt lets
// the server read the body and call the HttpHandler.
using HttpHeadHandler =
    std::function<std::optional<HttpServerResponse>(const HttpServerRequest&)>;

// Where a connection is (for the deadlines).
enum class HttpStage {
  kIdle,    // no byte of a request yet (new, or kept alive between requests)
  kHead,    // part of a request head in
  kBody,    // reading the body
  kWrite,   // writing the response
  kLinger,  // refused: half-closed, draining input until the peer closes
};

struct HttpTimeouts {
  // The whole request head. nginx's client_header_timeout is 60 s; 10 s is
  // ample for a head of a few KiB (Polar's sender gives up on a delivery
  // after 10 s anyway) and caps what a slowloris connection costs.
  Duration head = std::chrono::seconds(10);
  // Idle between requests. Prometheus scrapes every 15-60 s over one
  // connection; an idle connection is the first evicted when the listener
  // is full, so a long keep-alive costs nothing under attack.
  Duration keepalive = std::chrono::seconds(75);
  // The body: free for `body_grace`, then at least `min_body_rate` bytes/s on
  // average since the head (as Apache's mod_reqtimeout MinRate), and done
  // within `body_max`. A 256 KiB webhook at 1 KiB/s would take 256 s: the
  // rate alone would let a slow body live that long, so the cap bounds it.
  Duration body_grace = std::chrono::seconds(5);
  double min_body_rate = 1024;
  Duration body_max = std::chrono::seconds(60);
  // The response, read by the client at the same kind of minimum rate (the
  // largest is /metrics, a few hundred KiB).
  Duration send_grace = std::chrono::seconds(5);
  double min_send_rate = 4096;
  Duration send_max = std::chrono::seconds(60);
  // How long a refused connection's input is drained before closing.
  Duration linger = std::chrono::seconds(2);
};

// What the deadline sweep does with a connection.
enum class HttpDeadline {
  kNone,   // within its deadlines
  kClose,  // done (keep-alive idle, lingering): closed, not counted
  kHead,   // dropped: head_timeout
  kBody,   // dropped: body_timeout
  kSend,   // dropped: send_timeout
};

// Pure deadline math. `since` is when the stage started (for the first
// request's kIdle and kHead: the accept), `bytes` what moved in this stage
// (body bytes read, response bytes written).
HttpDeadline CheckHttpDeadline(HttpStage stage, bool first_request,
                               MonoTime since, uint64_t bytes, MonoTime now,
                               const HttpTimeouts& timeouts);

struct HttpServerOptions {
  ListenAddress listen;
  // The `listener` label of polar_loadd_http_* and the name in log lines:
  // "metrics" or "webhooks" (a fixed set).
  std::string name = "metrics";
  // Metrics go here; null only in tests that do not look at them.
  prometheus::Registry* registry = nullptr;
  std::size_t max_body_bytes = 64 * 1024;
  // Request line and headers. Over it: 431 (or a refused head, counted).
  std::size_t max_head_bytes = 16 * 1024;
  std::size_t max_connections = 128;
  std::size_t max_connections_per_ip = 16;
  HttpTimeouts timeouts;
  // Refuse (421) a Host that HostAllowed() does not allow, with these names.
  bool check_host = false;
  std::vector<std::string> allowed_hosts;
  HttpHeadHandler head_handler;  // optional
};

class HttpServer {
 public:
  // Binds and starts serving; returns null and fills *error (e.g. "address in
  // use") on failure.
  static std::unique_ptr<HttpServer> Start(EventLoop& loop,
                                           HttpServerOptions options,
                                           HttpHandler handler,
                                           std::string* error);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound address; the port is the real one when 0 was asked for.
  const ListenAddress& address() const { return bound_; }
  // Requests whose head arrives from now on are held to these.
  void set_max_body_bytes(std::size_t bytes) {
    options_.max_body_bytes = bytes;
  }
  void set_max_head_bytes(std::size_t bytes) {
    options_.max_head_bytes = bytes;
  }
  void set_allowed_hosts(std::vector<std::string> names) {
    options_.allowed_hosts = std::move(names);
  }
  std::size_t connections() const { return conns_.size(); }

 private:
  struct Conn;
  HttpServer(EventLoop& loop, HttpServerOptions options, HttpHandler handler);

  void OnAcceptable();
  void PauseAccepting();
  bool EvictOldest(const std::string& for_whom);
  void OnEvents(Conn* c, uint32_t events);
  void ReadSome(Conn* c);
  void Process(Conn* c);
  void BeginRequest(Conn* c, HttpRequestHead head);
  bool ReadBody(Conn* c);
  void Dispatch(Conn* c);
  void Respond(Conn* c, const HttpServerResponse& response, bool unread_input);
  void Refuse(Conn* c, HttpRefusal refusal);
  void WriteSome(Conn* c);
  void WriteDone(Conn* c);
  void Drop(Conn* c, HttpConnectionDrop why);
  void Close(Conn* c);
  void SetStage(Conn* c, HttpStage stage, MonoTime now);
  void Sweep();
  void ArmSweep();
  // Logs a refusal or drop, rate-limited per (listener, reason).
  void LogLimited(std::string_view reason, const std::string& message);

  EventLoop& loop_;
  HttpServerOptions options_;
  HttpHandler handler_;
  std::unique_ptr<HttpListenerMetrics> metrics_;
  int listen_fd_ = -1;
  ListenAddress bound_;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  // Connections without a request in progress, oldest first: the eviction
  // order (a connection joins at its tail when it becomes idle).
  std::list<Conn*> idle_;
  std::unordered_map<std::string, std::size_t> per_ip_;
  std::vector<std::unique_ptr<Conn>> closed_;  // freed after the callback
  bool free_posted_ = false;
  // The deadline sweep runs while connections are open; the accept pause
  // after EMFILE & co. Both cancel themselves when this server goes.
  Timer sweep_timer_;
  Timer resume_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace polar
