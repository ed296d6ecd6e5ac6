// Http1Client: a small HTTP/1.1 keep-alive client for plain-http targets, run
// on the daemon's EventLoop. HttpEngine sends ordinary requests through it
// when the target is `http://` with a literal address (a local Polar stack,
// polar-sim); https:// targets have HttpsClient, host names and streams
// libcurl.
//
// Why it exists: libcurl's per-transfer work (state machine, connection-cache
// checks with two poll() calls per reuse, allocations) cost 3-4x wrk's CPU per
// request at 20,000 requests/s; the load box should spend its CPU on load, not
// on bookkeeping. This client does one writev-free send() and one or two
// recv() per exchange, framed by daemon/net/http1_codec.h (shared with
// HttpsClient). A connected socket waits for the loop's next wake-up
// (EventLoop::Wake::kBatched) and its answers are dated by the kernel's
// receive time (daemon/net/socket_time.h).
//
// Owned by HttpEngine; loop thread only. Same contract as Transport::Send:
// the callback runs exactly once per request, never before Send() returns,
// and a failure is a Response with a transport outcome. At most `connections`
// exchanges are on the wire; the rest wait in a FIFO (bounded by the caller's
// in-flight caps) and that wait counts as schedule lag. A request that fails
// on a reused connection before any byte of the answer arrived (the server
// closed an idle keep-alive connection) is retried once on a new connection,
// as curl does.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/net/event_loop.h"
#include "scenarios/transport.h"

namespace polar {

// Where a plain-http target lives, resolved without DNS.
struct Http1Target {
  sockaddr_storage address{};
  socklen_t address_length = 0;
  std::string host_header;  // "127.0.0.1:8000", sent as Host:
  std::string path_prefix;  // base URL path, "" or e.g. "/polar"
};

// A target for the fast path when `base_url` is http:// with an IPv4/IPv6
// literal or "localhost" (127.0.0.1); nullopt otherwise (https, host names:
// those go through libcurl, whose resolver does not block the loop).
std::optional<Http1Target> PlainHttpTarget(std::string_view base_url);

struct Http1Options {
  Http1Target target;
  std::string token;  // secret: only in the prebuilt header block
  std::string user_agent;
  Duration timeout = std::chrono::seconds(10);
  Duration connect_timeout = std::chrono::seconds(3);
  std::size_t connections = 256;
  std::size_t max_response_bytes = 1 << 20;
};

class Http1Client {
 public:
  Http1Client(EventLoop& loop, const Clock& clock, Http1Options options);
  ~Http1Client();
  Http1Client(const Http1Client&) = delete;
  Http1Client& operator=(const Http1Client&) = delete;

  void Send(Request request, ResponseCallback done);

  // Accepted and unanswered (queued + on the wire).
  std::size_t in_flight() const { return queue_.size() + active_; }
  std::size_t active() const { return active_; }
  std::size_t open_connections() const { return connections_.size(); }

 private:
  struct Exchange {
    Request request;
    ResponseCallback done;
    bool retried = false;
  };
  struct Conn;

  void Pump();
  Conn* OpenConnection();
  void Assign(Conn* conn, Exchange exchange);
  void WriteSome(Conn* conn);
  void OnEvents(Conn* conn, uint32_t events);
  void ReadSome(Conn* conn);
  void Complete(Conn* conn);
  void Fail(Conn* conn, Outcome outcome, std::string error);
  void Close(Conn* conn);
  void Deliver(Exchange exchange, Response response);
  void Sweep();
  void ArmSweep();

  EventLoop& loop_;
  const Clock& clock_;
  Http1Options options_;
  std::string header_auth_;  // "Host: …\r\nUser-Agent: …\r\n…Authorization: …"
  std::string header_anon_;
  std::deque<Exchange> queue_;
  std::vector<std::unique_ptr<Conn>> connections_;
  std::vector<Conn*> idle_;  // LIFO: the warmest connection first
  std::size_t active_ = 0;
  Timer sweep_timer_;     // deadlines, while exchanges are on the wire
  bool sending_ = false;  // inside Send(): completions are deferred
  bool pumping_ = false;  // inside Pump(): completions are deferred
  std::vector<std::pair<Exchange, Response>> deferred_;
  std::vector<std::unique_ptr<Conn>> closed_;  // freed after the event batch
  bool drain_posted_ = false;
  // Work posted to the loop checks this first: the client may be gone (a
  // reload retired it) by the time the loop runs it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace polar
