// HttpsClient::Conn: one TCP + TLS connection of the built-in HTTPS client
// and the requests on it, shared by the client's three source files:
// https_client.cc (the queue, handing requests to connections, deadlines,
// failures and delivery), https_connection.cc (connect, TLS handshake, reading
// and writing the socket, closing) and https_answers.cc (reading answers off a
// connection and dating them).
//
// Private to daemon/net/https_client*.cc; owned by HttpsClient (its
// connections_ list); loop thread only.
#pragma once

#include <time.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/net/h2_session.h"
#include "daemon/net/http1_codec.h"
#include "daemon/net/https_client.h"
#include "daemon/net/resolver.h"
#include "daemon/net/tls_client.h"

namespace polar {

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

// Requests can go on the wire now: set up, and for HTTP/2 the server's limit
// known.
inline bool Submittable(const HttpsClient::Conn& conn) {
  return conn.state == HttpsClient::Conn::State::kReady &&
         (!conn.h2 || conn.settings_known);
}

}  // namespace polar
