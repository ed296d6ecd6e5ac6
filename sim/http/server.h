// SimServer: the libmicrohttpd daemon that carries polar-sim's HTTP messages
// (sim/http/message.h) to a handler and back.
//
// SimServer owns a libmicrohttpd daemon with its own thread pool (polar-sim is
// a stand-in target that must take 20,000 requests/s, so it uses threads; the
// one-loop rule is polar-loadd's). The handler is called concurrently from
// those threads and must be thread-safe and must not block.
//
// A response may be held (SimResponse::hold_until): the connection is
// suspended (MHD_ALLOW_SUSPEND_RESUME) and the TimerThread resumes it at that
// time on its Clock, so injected latency, stalls and confirm's processing time
// cost no thread. An SseStream body parks its connection the same way while it
// has nothing to send. SetOutage() may close the port (refuse) or reset every
// connection; it joins the HTTP threads, so call it from the timer thread,
// never from a handler.
#pragma once

#include <microhttpd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "sim/base/timer.h"
#include "sim/http/message.h"

namespace polar::sim {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;
  bool ipv6 = false;
  int threads = 2;
  // Polar refuses bodies over 10 MiB with 413 (API_MAX_REQUEST_BODY_SIZE,
  // docs/polar-api.md §0).
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

// "refuse:5s" or "reset:2s" (the --outage flag).
bool ParseOutage(const std::string& text,
                 std::pair<SimServer::Outage, Duration>* out);
const char* ToString(SimServer::Outage mode);

}  // namespace polar::sim
