// Transport: how a scenario sends one HTTP request to the target and learns how
// it ended.
//
// Implemented by the daemon's HttpEngine (libcurl on the event loop) and by
// test fakes. Called only on the event-loop thread. Send() never runs the
// callback before it returns, and the callback runs exactly once, on the loop
// thread, for every request, including ones that fail at the transport level: a
// failure is a Response with a transport outcome, never an exception.
//
// OpenStream() is for responses that do not end by themselves (Polar's
// server-sent event stream of a checkout): the body is handed over chunk by
// chunk as it arrives instead of being collected, the stream has its own
// deadline instead of the request timeout, and the caller may cancel it. Every
// handler runs on the loop thread outside any call into the transport, so a
// handler may Send, open or cancel streams.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

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
  std::string content_type;  // set on stream heads only (Send leaves it empty)

  Duration latency() const { return done - intended; }
  Duration service() const { return done - sent; }
  Duration lag() const { return sent - intended; }
};

using ResponseCallback = std::function<void(Response&&)>;

struct StreamOptions {
  // The stream ends with transport kTimeout this long after it was sent,
  // whatever arrives: a stream has no natural end, and the request timeout
  // (10 s by default) would cut it off.
  Duration deadline = std::chrono::seconds(60);
  // Body bytes held between their arrival and their delivery to on_data (one
  // loop turn). More ends the stream with kInvalidResponse: a stream is never
  // collected whole, and a flood cannot grow the daemon's memory. Polar's
  // frames are ~100-300 bytes.
  std::size_t max_buffered = 64 * 1024;
};

struct StreamHandlers {
  // Once, when the status line and headers are complete: status,
  // http_version, content_type, intended, sent, and done = when the headers
  // arrived; no body. Not called when the stream fails before its headers.
  std::function<void(const Response& head)> on_head;
  // Each piece of the body, in order, after on_head. Pieces do not follow the
  // server's frame boundaries.
  std::function<void(std::string_view chunk)> on_data;
  // Exactly once, last, unless CancelStream() came first: transport kOk when
  // the server ended the response, kTimeout when the deadline passed, the
  // other transport outcomes as for Send. status is set when headers came.
  ResponseCallback on_end;
};

using StreamId = uint64_t;
inline constexpr StreamId kNoStream = 0;

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void Send(Request request, ResponseCallback done) = 0;
  // Opens a streamed request and returns its id. A transport that cannot
  // stream returns kNoStream and never runs a handler; callers fall back (the
  // checkout scenario polls instead). No handler runs before this returns.
  virtual StreamId OpenStream(Request request, StreamOptions options,
                              StreamHandlers handlers) {
    (void)request;
    (void)options;
    (void)handlers;
    return kNoStream;
  }
  // Ends a stream at once; none of its handlers runs afterwards. Ids that are
  // unknown, finished or kNoStream are ignored.
  virtual void CancelStream(StreamId id) { (void)id; }
};

}  // namespace polar
