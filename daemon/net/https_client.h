// HttpsClient: polar-loadd's own HTTPS client on the daemon's EventLoop:
// HTTP/2 (nghttp2) when the server's ALPN picks h2, HTTP/1.1 over TLS
// otherwise, OpenSSL for TLS. HttpEngine sends ordinary requests to an
// https:// target through it (target.http_client = "auto") and keeps libcurl
// for streams and as http_client = "curl".
//
// Why it exists: through libcurl a request over TLS + HTTP/2 cost 4.9x
// h2load's CPU at 20,000/s and 5.7x at 5,000/s: curl's state machine and
// header building per transfer, a connection check with two poll() calls per
// reuse, HEADERS and DATA written as two TLS records with two send() calls,
// and four or five recv() calls per response. Here the frames of every
// request of a loop turn go out as one TLS record in one send(), and one
// recv() per wake-up takes everything that arrived.
//
// HTTP/2: streams are multiplexed over as few connections as the server's
// SETTINGS_MAX_CONCURRENT_STREAMS allows (a new connection only when every
// open one is full). A stream the server did not process (REFUSED_STREAM, or
// above a GOAWAY's last stream id) is sent again once on another connection;
// GOAWAY stops new streams on its connection, which closes when its last
// stream ends. Other resets end their request as invalid_response. TLS
// sessions are resumed on reconnect.
//
// Owned by HttpEngine; loop thread only. Same contract as Transport::Send:
// the callback runs exactly once per request, never before Send() returns,
// and a failure is a Response with a transport outcome (connect_error,
// tls_error, timeout, invalid_response). Requests beyond what the connections
// can carry wait in a FIFO (bounded by the caller's in-flight caps) and that
// wait is schedule lag; latency runs from the intended send time either way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/net/event_loop.h"
#include "daemon/net/h2_session.h"
#include "daemon/net/resolver.h"
#include "daemon/net/tls_client.h"
#include "scenarios/transport.h"

namespace polar {

// Where an https:// target lives.
struct HttpsTarget {
  std::string host;  // a DNS name or an IP literal (no brackets)
  uint16_t port = 443;
  bool host_is_ip = false;
  std::optional<ResolvedAddress> literal;  // the address, for IP literals
  std::string authority;    // as in the URL: "api.polar.sh", "[::1]:8443"
  std::string path_prefix;  // the base URL's path, "" or e.g. "/polar"
};

// The target of an https:// base URL; nullopt for anything else (other
// schemes, user info, a bad port).
std::optional<HttpsTarget> ParseHttpsTarget(std::string_view base_url);

struct HttpsOptions {
  HttpsTarget target;
  std::string token;  // secret: only in prebuilt header values
  std::string user_agent;
  std::string ca_file;  // empty: the system trust store
  Duration timeout = std::chrono::seconds(10);
  // For TCP connect and TLS handshake together, as curl's connect timeout.
  Duration connect_timeout = std::chrono::seconds(3);
  std::size_t connections = 256;
  std::size_t max_response_bytes = 1 << 20;
  bool offer_h2 = true;  // false: ALPN offers http/1.1 only
};

// Connection-level events since the client was made.
struct HttpsStats {
  uint64_t connections_opened = 0;
  uint64_t handshakes = 0;          // TLS handshakes completed
  uint64_t handshakes_resumed = 0;  // of which resumed a kept session
  uint64_t goaways = 0;             // connections the server sent GOAWAY on
  uint64_t streams_refused = 0;     // REFUSED_STREAM or above a GOAWAY's id
  uint64_t requests_resent = 0;     // sent again after a refusal or a stale
                                    // keep-alive connection
};

class HttpsClient {
 public:
  HttpsClient(EventLoop& loop, const Clock& clock, HttpsOptions options);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  void Send(Request request, ResponseCallback done);

  // Accepted and unanswered (queued + on a connection).
  std::size_t in_flight() const { return queue_.size() + active_; }
  std::size_t active() const { return active_; }
  std::size_t open_connections() const { return connections_.size(); }
  const HttpsStats& stats() const { return stats_; }

 private:
  struct Exchange {
    Request request;
    ResponseCallback done;
    MonoTime sent{};        // when it first went to a connection
    bool assigned = false;  // sent is set
    bool resent = false;
  };

 public:
  struct Conn;  // https_conn.h; public for its Submittable()

 private:
  void Pump();
  Conn* PickConnection();
  std::size_t AssumedCapacity(const Conn& conn) const;
  Conn* OpenConnection();
  void Connect(Conn* conn);
  void Assign(Conn* conn, Exchange exchange);
  void Start(Conn* conn, Exchange exchange);
  void OnEvents(Conn* conn, uint32_t events);
  void OnConnected(Conn* conn);
  void Handshake(Conn* conn);
  void Established(Conn* conn);
  // Hands the requests that waited for `conn` back to the queue's head.
  void Release(Conn* conn);
  // Takes what the socket has into the TLS stream; an end of stream or a
  // reset sets the connection's eof.
  void ReadSome(Conn* conn);
  // Decrypts what arrived and hands it to the protocol.
  void Process(Conn* conn);
  void ProcessH2(Conn* conn);
  void ProcessH1(Conn* conn);
  // The HTTP/1.1 answer is complete; `close` ends the connection after it.
  void CompleteH1(Conn* conn, bool close);
  void OnPeerClosed(Conn* conn);
  // Runs the callbacks of finished requests after refilling the wire.
  void Finish(std::vector<std::pair<Exchange, Response>> done);
  void MarkDirty(Conn* conn);
  void FlushDirty();
  // Encrypts and sends what is pending; false when the connection failed.
  bool Flush(Conn* conn);
  bool SendCiphertext(Conn* conn);
  void SetWantWrite(Conn* conn, bool want);
  // Ends the connection; every request on it ends with `outcome`.
  void Fail(Conn* conn, Outcome outcome, const std::string& error);
  // Fail() on the next loop turn (from inside Send(), which must not answer).
  void FailSoon(Conn* conn, Outcome outcome, std::string error);
  void Close(Conn* conn);
  void Requeue(Exchange exchange);
  void Deliver(Exchange exchange, Response response);
  static Response FailureFor(const Exchange& exchange, Outcome outcome,
                             const std::string& error, MonoTime done);
  void ArmSweep();
  void Sweep();

  EventLoop& loop_;
  const Clock& clock_;
  HttpsOptions options_;
  TlsClientContext tls_;
  std::unique_ptr<Resolver> resolver_;  // host names only
  std::string h1_auth_;                 // HTTP/1.1 header blocks
  std::string h1_anon_;
  H2Headers h2_headers_;
  // What ALPN gave the last handshake: how many requests a connection that is
  // still being set up should be expected to carry.
  bool expect_h2_;
  std::deque<Exchange> queue_;  // waiting for a connection, FIFO
  std::vector<std::unique_ptr<Conn>> connections_;
  uint64_t next_conn_id_ = 1;
  std::vector<Conn*> idle_h1_;  // LIFO: the warmest connection first
  std::size_t active_ = 0;
  std::vector<Conn*> dirty_;  // output to send at the end of the loop turn
  bool flush_posted_ = false;
  std::vector<std::unique_ptr<Conn>> closed_;  // freed after the loop turn
  bool reap_posted_ = false;
  bool pumping_ = false;
  EventLoop::TimerId sweep_timer_ = 0;
  HttpsStats stats_;
  // Work posted to the loop checks this first: the client may be gone (a
  // reload retired it) by the time the loop runs it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace polar
