// FaultServer: a raw-socket HTTP/1.1 target whose misbehaviour can be switched
// while it runs, for the fault matrix (tests/e2e/faults_e2e_test.cc): answers
// that never come, resets in the middle of a body, bodies cut short, bodies
// far too large, HTML where JSON belongs, malformed JSON, 429 storms with
// Retry-After, bytes that are not HTTP at all, and 401s that echo the
// Authorization header back (a misbehaving proxy).
//
// Loopback, port 0; runs on PolledHttpServer (one background thread with
// poll() and non-blocking sockets, so a client that stops reading never blocks
// it); keep-alive unless the mode closes the connection. Stops and joins in
// the destructor. Every method may be called from any thread; the mode is
// read on the server's thread as each request (or connection) arrives.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/support/polled_http_server.h"

namespace polar::testing {

enum class FaultMode : int {
  kOk,             // 200 application/json with FaultServerOptions::ok_body
  kNeverAnswer,    // reads requests, answers none
  kResetMidBody,   // head promising 4 KiB, 100 bytes of it, then a TCP reset
  kTruncatedBody,  // head promising 64 bytes, 20 of them, then a clean close
  kHugeBody,       // 200 application/json promising huge_body_bytes, streamed
  kHtml,           // 200 text/html: an error page from a proxy
  kMalformedJson,  // 200 application/json that is not JSON
  kRateLimited,    // 429, empty body, Retry-After: options.retry_after
  kGarbage,        // a line that is not HTTP (an SSH banner), then a clean
                   // close: at once on a new connection (a client speaking
                   // TLS gets it as its handshake's answer), else per request
  kEchoAuth401,    // 401 with the request's Authorization header in the body
};
inline constexpr std::size_t kFaultModeCount = 10;

struct FaultServerOptions {
  std::string ok_body = R"({"inserted":1,"duplicates":0})";
  std::string retry_after = "1";
  std::size_t huge_body_bytes = 64u << 20;
  // Every answer (and the banner of kGarbage) goes out this long after the
  // request (or the connection) arrived: a server far away.
  std::chrono::milliseconds delay{0};
};

class FaultServer {
 public:
  explicit FaultServer(FaultMode mode = FaultMode::kOk,
                       FaultServerOptions options = {});
  ~FaultServer();
  FaultServer(const FaultServer&) = delete;
  FaultServer& operator=(const FaultServer&) = delete;

  void set_mode(FaultMode mode) { mode_ = static_cast<int>(mode); }
  std::string base_url() const { return server_.base_url(); }
  // Complete requests read while `mode` was in force.
  uint64_t requests(FaultMode mode) const {
    return requests_[static_cast<std::size_t>(mode)];
  }
  // Body bytes of huge answers handed to the sockets (what the clients took
  // before hanging up, plus at most one 64 KiB chunk each).
  uint64_t huge_bytes_sent() const { return server_.filler_sent(); }
  // Connections open now.
  std::size_t connections() const { return server_.connections(); }
  // The most connections open at once since the start or the last reset:
  // whether clients waited for each other or connected in parallel.
  std::size_t peak_connections() const { return server_.peak_connections(); }
  void ResetPeakConnections() { server_.ResetPeakConnections(); }

 private:
  void OnAccept(PolledHttpServer::Connection& conn);
  void OnRequest(PolledHttpServer::Connection& conn, const std::string& head);

  const FaultServerOptions options_;
  std::atomic<int> mode_;
  std::array<std::atomic<uint64_t>, kFaultModeCount> requests_{};
  PolledHttpServer server_;  // last: its thread calls OnAccept, OnRequest
};

}  // namespace polar::testing
