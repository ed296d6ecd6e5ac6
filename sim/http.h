// The simulator's HTTP layer: request/response values, server-sent event
// streams, and SimServer, the libmicrohttpd daemon that carries them.
//
// SimServer owns a libmicrohttpd daemon with its own thread pool (polar-sim is
// a stand-in target that must take 20,000 requests/s, so it uses threads; the
// one-loop rule is polar-loadd's). The handler is called concurrently from
// those threads and must be thread-safe and must not block.
//
// A response may be held (SimResponse::hold_until): the connection is
// suspended (MHD_ALLOW_SUSPEND_RESUME) and the TimerThread resumes it at that
// time, so injected latency, stalls and confirm's processing time cost no
// thread. An SseStream body parks its connection the same way while it has
// nothing to send. SetOutage() may close the port (refuse) or reset every
// connection; it joins the HTTP threads, so call it from the timer thread,
// never from a handler.
#pragma once

#include <microhttpd.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sim/clock.h"
#include "sim/timer.h"

namespace polar::sim {

struct SimRequest {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  std::string client_ip;
  bool has_content_length = false;
  bool body_too_large = false;

  const std::string* Header(const std::string& lower_name) const;
  const std::string* Query(const std::string& name) const;
  std::vector<std::string> QueryAll(const std::string& name) const;
};

// A text/event-stream body. Producers Push() whole frames ("data: ...\r\n\r\n")
// from any thread; the server sends them in order. Bounded: beyond max_queued
// unsent frames the oldest are dropped (a client that does not read must not
// grow memory).
class SseStream {
 public:
  explicit SseStream(std::size_t max_queued = 256) : max_queued_(max_queued) {}
  // False once the stream is closed or its client went away.
  bool Push(std::string frame);
  // Ends the stream after the queued frames.
  void Close();
  bool alive() const;

 private:
  friend class SimServer;
  friend struct SseAccess;  // the server's content reader (http.cc)
  mutable std::mutex mutex_;
  std::deque<std::string> frames_;
  std::size_t offset_ = 0;  // bytes of frames_.front() already sent
  std::size_t max_queued_;
  bool closed_ = false;
  bool gone_ = false;
  std::function<void()> waker_;  // set while the connection is parked
};

struct SimResponse {
  enum class Disconnect { kNone, kClose, kReset };

  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  // Not sent before this time (steady clock). If `finish` is set it runs on the
  // timer thread at that time and its result is sent instead: work that
  // "happens" at the end of the hold, such as confirm's state change.
  SteadyClock::time_point hold_until{};
  std::function<SimResponse()> finish;
  std::shared_ptr<SseStream> stream;  // if set: an event-stream body
  Disconnect disconnect = Disconnect::kNone;
};

using SimHandler = std::function<SimResponse(const SimRequest&)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;
  bool ipv6 = false;
  int threads = 2;
  // Polar refuses bodies over 10 MiB (API_MAX_REQUEST_BODY_SIZE,
  // docs/polar-api.md §0) with 413.
  std::size_t max_body_bytes = 10 * 1024 * 1024;
};

class SimServer {
 public:
  enum class Outage { kNone, kRefuse, kReset };

  // `timer` must outlive the server.
  static std::unique_ptr<SimServer> Start(const ServerOptions& options,
                                          SimHandler handler,
                                          TimerThread* timer,
                                          std::string* error);
  ~SimServer();
  uint16_t port() const;
  // kRefuse: stops listening and closes every connection, so connects are
  // refused; kReset: every request is answered with a TCP reset; kNone: back
  // to normal (re-listens on the same port). Not from an HTTP thread.
  bool SetOutage(Outage mode, std::string* error);
  Outage outage() const;
  std::size_t held_connections() const;

  struct Core;
  struct Conn;

 private:
  explicit SimServer(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  std::shared_ptr<Core> core_;
};

// Polar's error bodies (docs/polar-api.md §6).
SimResponse JsonError(int status, std::string_view error,
                      std::string_view detail);
SimResponse NotFound();  // {"detail":"Not Found"}
// 404 {"error":"ResourceNotFound","detail":"Not found"}: an id that names no
// object of the route's kind.
SimResponse ResourceNotFound();
SimResponse MethodNotAllowed();  // {"detail":"Method Not Allowed"}

}  // namespace polar::sim
