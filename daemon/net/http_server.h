// HttpServer: a small HTTP/1.1 server (libmicrohttpd) run inside the daemon's
// EventLoop, for /metrics, the status page, the control API and the webhook
// receiver.
//
// Owned by App; loop thread only. libmicrohttpd runs in "external epoll" mode:
// it keeps its own epoll set, whose fd the EventLoop watches, and it only ever
// runs inside MHD_run() called from the loop, so handlers see no other thread
// and never race the load engine. Handlers are synchronous and must be quick
// (they are on the loop). Why libmicrohttpd: a maintained GNU library packaged
// in Debian, it can be driven by an outside event loop (civetweb cannot: it
// always owns threads), and it can suspend/resume connections, which polar-sim
// uses to inject latency without threads.
#pragma once

#include <microhttpd.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/net/event_loop.h"
#include "daemon/net/listen_address.h"

namespace polar {

struct HttpServerRequest {
  std::string method;
  std::string path;  // without the query string
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote;  // the client's address ("127.0.0.1"), for audit logs
  bool body_too_large =
      false;  // the body exceeded max_body_bytes and was dropped

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

struct HttpServerOptions {
  ListenAddress listen;
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_connections = 256;
  unsigned connection_timeout_seconds = 30;
  // libmicrohttpd's per-connection memory pool, which must hold the request
  // line and headers (a request whose headers do not fit is answered 431 by
  // libmicrohttpd itself). 0: its default, 32 KiB.
  std::size_t connection_memory_bytes = 0;
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
  // Bodies of requests that start from now on are cut off above this.
  void set_max_body_bytes(std::size_t bytes) {
    options_.max_body_bytes = bytes;
  }

 private:
  HttpServer(EventLoop& loop, HttpServerOptions options, HttpHandler handler);
  static MHD_Result OnRequest(void* cls, MHD_Connection* connection,
                              const char* url, const char* method,
                              const char* version, const char* upload_data,
                              size_t* upload_data_size, void** con_cls);
  static void OnCompleted(void* cls, MHD_Connection* connection, void** con_cls,
                          MHD_RequestTerminationCode code);
  void Run();
  void ArmTimeout();

  EventLoop& loop_;
  HttpServerOptions options_;
  HttpHandler handler_;
  MHD_Daemon* daemon_ = nullptr;
  int epoll_fd_ = -1;
  ListenAddress bound_;
  Timer timer_;
};

}  // namespace polar
