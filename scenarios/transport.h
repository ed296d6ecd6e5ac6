// Transport: how a scenario sends one HTTP request to the target and learns how
// it ended.
//
// Implemented by the daemon's HttpEngine (libcurl on the event loop) and by
// test fakes. Called only on the event-loop thread. Send() never runs the
// callback before it returns, and the callback runs exactly once, on the loop
// thread, for every request, including ones that fail at the transport level: a
// failure is a Response with a transport outcome, never an exception.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "exporters/clock.h"
#include "exporters/outcome.h"

namespace polar {

enum class Method : unsigned char { kGet, kPost, kPatch, kPut, kDelete };
const char* MethodName(Method method);

struct Request {
  Method method = Method::kGet;
  std::string
      path;  // appended to the target's base URL, e.g. "/v1/events/ingest"
  std::string
      body;  // JSON; a body-carrying method always sends Content-Length (Polar
             // answers 411 without one), even when the body is empty
  bool authenticated = true;  // send "Authorization: Bearer <token>"
  MonoTime
      intended{};  // the scheduled send time; latency is measured from here
};

struct Response {
  // kOk when an HTTP response arrived (whatever its status); otherwise why it
  // did not: kTimeout, kConnectError, kTlsError or kInvalidResponse (garbled or
  // oversized reply).
  Outcome transport = Outcome::kOk;
  long status = 0;
  int http_version = 0;  // 11 for HTTP/1.1, 2 for HTTP/2, 0 when no response
  std::string body;
  std::optional<Duration>
      retry_after;      // from a Retry-After header, when present
  MonoTime intended{};  // copied from the request
  MonoTime sent{};      // when the request went to a connection
  MonoTime done{};      // when the response (or failure) was complete
  std::string error;    // transport error detail, for the rate-limited log only
                        // (never a label)

  Duration latency() const { return done - intended; }
  Duration service() const { return done - sent; }
  Duration lag() const { return sent - intended; }
};

using ResponseCallback = std::function<void(Response&&)>;

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void Send(Request request, ResponseCallback done) = 0;
};

}  // namespace polar
