#include "tests/support/test_http_server.h"

#include <cstdio>

#include "tests/support/http_head.h"

namespace polar::testing {
namespace {

std::string Chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

}  // namespace

TestHttpServer::TestHttpServer(TestHttpServerOptions options)
    : options_(std::move(options)),
      server_("TestHttpServer",
              {.on_request = [this](PolledHttpServer::Connection& conn,
                                    const std::string& head) {
                OnRequest(conn, head);
              }}) {}

TestHttpServer::~TestHttpServer() = default;

void TestHttpServer::OnRequest(PolledHttpServer::Connection& conn,
                               const std::string& head) {
  if (options_.never_answer) return;
  std::string body = options_.body;
  std::size_t auth = body.find("{AUTH}");
  if (auth != std::string::npos) {
    body.replace(auth, 6, HeaderValue(head, "authorization"));
  }
  auto at = std::chrono::steady_clock::now() + options_.delay;
  if (!options_.stream_chunks.empty()) {
    conn.due.push_back({.at = at,
                        .bytes = "HTTP/1.1 " + std::to_string(options_.status) +
                                 " Test\r\nContent-Type: text/event-stream\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n",
                        .completes = false});
    for (const std::string& piece : options_.stream_chunks) {
      at += options_.stream_gap;
      conn.due.push_back({.at = at, .bytes = Chunk(piece), .completes = false});
    }
    if (options_.stream_end)
      conn.due.push_back({.at = at, .bytes = "0\r\n\r\n"});
    return;
  }
  conn.due.push_back(
      {.at = at,
       .bytes = "HTTP/1.1 " + std::to_string(options_.status) +
                " Test\r\nContent-Type: " + options_.content_type +
                "\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\n\r\n" + body});
}

}  // namespace polar::testing
