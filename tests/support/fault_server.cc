#include "tests/support/fault_server.h"

#include "tests/support/http_head.h"

namespace polar::testing {
namespace {

constexpr const char* kBanner = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";

std::string Answer(int status, const char* reason, const char* type,
                   const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: " + type + "\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

FaultServer::FaultServer(FaultMode mode, FaultServerOptions options)
    : options_(std::move(options)),
      mode_(static_cast<int>(mode)),
      server_(
          "FaultServer",
          {.on_accept =
               [this](PolledHttpServer::Connection& conn) { OnAccept(conn); },
           .on_request =
               [this](PolledHttpServer::Connection& conn,
                      const std::string& head) { OnRequest(conn, head); }}) {}

FaultServer::~FaultServer() = default;

void FaultServer::OnAccept(PolledHttpServer::Connection& conn) {
  if (static_cast<FaultMode>(mode_.load()) != FaultMode::kGarbage) return;
  conn.due.push_back({.at = std::chrono::steady_clock::now() + options_.delay,
                      .bytes = kBanner,
                      .close = true});
  conn.done = true;
}

void FaultServer::OnRequest(PolledHttpServer::Connection& conn,
                            const std::string& head) {
  const auto mode = static_cast<FaultMode>(mode_.load());
  ++requests_[static_cast<std::size_t>(mode)];
  DueBytes d;
  d.at = std::chrono::steady_clock::now() + options_.delay;
  std::string& out = d.bytes;
  switch (mode) {
    case FaultMode::kOk:
      out += Answer(200, "OK", "application/json", options_.ok_body);
      break;
    case FaultMode::kNeverAnswer:
      break;
    case FaultMode::kResetMidBody:
      out +=
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          "Content-Length: 4096\r\n\r\n" +
          std::string("{\"inserted\":1,\"duplicates\":0,\"pad\":\"") +
          std::string(64, 'x');
      d.reset = conn.done = true;
      break;
    case FaultMode::kTruncatedBody:
      out +=
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          "Content-Length: 64\r\n\r\n{\"inserted\":1,\"dupli";
      d.close = conn.done = true;
      break;
    case FaultMode::kHugeBody:
      out +=
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          "Content-Length: " +
          std::to_string(options_.huge_body_bytes) + "\r\n\r\n";
      d.filler = options_.huge_body_bytes;
      conn.done = true;  // keep-alive would need the whole body sent
      break;
    case FaultMode::kHtml:
      out += Answer(200, "OK", "text/html; charset=utf-8",
                    "<!DOCTYPE html><html><head><title>Maintenance"
                    "</title></head><body><h1>We'll be right back"
                    "</h1></body></html>");
      break;
    case FaultMode::kMalformedJson:
      out += Answer(200, "OK", "application/json",
                    R"({"inserted": one, "duplicates": 0)");
      break;
    case FaultMode::kRateLimited:
      out += Answer(429, "Too Many Requests", "application/json", "",
                    "Retry-After: " + options_.retry_after + "\r\n");
      break;
    case FaultMode::kGarbage:
      out += kBanner;
      d.close = conn.done = true;
      break;
    case FaultMode::kEchoAuth401:
      out += Answer(401, "Unauthorized", "application/json",
                    R"({"detail":"bad credentials: )" +
                        HeaderValue(head, "authorization") + "\"}",
                    "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
      break;
  }
  if (mode != FaultMode::kNeverAnswer) conn.due.push_back(std::move(d));
}

}  // namespace polar::testing
