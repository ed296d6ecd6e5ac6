// TestHttpServer: a tiny HTTP/1.1 target with scripted behaviour, for tests
// that need what polar-sim does not offer: answers that come late, never, or
// that echo the request's Authorization header back (a misbehaving proxy),
// and streamed (chunked text/event-stream) answers sent piece by piece.
// Loopback, port 0; keep-alive; runs on PolledHttpServer (one background
// thread with poll()); stops and joins in the destructor. Counters may be read
// from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/polled_http_server.h"

namespace polar::testing {

struct TestHttpServerOptions {
  std::chrono::milliseconds delay{0};  // before each answer
  bool never_answer = false;           // read requests, answer none
  int status = 200;
  // The answer's body; "{AUTH}" is replaced by the request's Authorization
  // header value.
  std::string body = R"({"inserted":1,"duplicates":0})";
  std::string content_type = "application/json";
  // Non-empty: answer with a chunked text/event-stream instead of `body`: the
  // head after `delay`, then each piece `stream_gap` after the previous one,
  // then the end of the response if stream_end (else the connection stays
  // open until the client goes).
  std::vector<std::string> stream_chunks{};
  std::chrono::milliseconds stream_gap{0};
  bool stream_end = true;
};

class TestHttpServer {
 public:
  explicit TestHttpServer(TestHttpServerOptions options);
  ~TestHttpServer();
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  std::string base_url() const { return server_.base_url(); }
  // Complete requests read, and answers completely written.
  uint64_t requests() const { return server_.requests(); }
  uint64_t answers() const { return server_.answers(); }

 private:
  void OnRequest(PolledHttpServer::Connection& conn, const std::string& head);

  const TestHttpServerOptions options_;
  PolledHttpServer server_;  // last: its thread calls OnRequest
};

}  // namespace polar::testing
