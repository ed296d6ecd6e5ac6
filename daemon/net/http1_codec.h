// HTTP/1.1 framing without I/O: the request bytes for a Request, and an
// incremental parser for the response that answers it. Used by the HTTPS
// client for connections that ALPN settles on http/1.1; the parser is fed
// whatever plaintext arrived, in pieces of any size.
//
// Pure value types; any thread, one object per connection. The response
// comes from the target, so the parser is strict and bounded: a header
// section over kMaxHeaderBytes, a body over max_body, a malformed status
// line, header, length or chunk size ends in kError with a reason, never in
// an exception or unbounded memory.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "exporters/clock.h"
#include "scenarios/transport.h"

namespace polar {

// Appends `request` as HTTP/1.1 bytes to *out: request line with
// path_prefix + request.path, then `headers` (a prebuilt block of
// "Name: value\r\n" lines: Host, User-Agent, Accept and, for authenticated
// requests, Authorization), then Content-Type and Content-Length for a
// body-carrying method (always a length, never chunked: Polar answers 411
// without one), then the body.
void AppendHttp1Request(std::string* out, const Request& request,
                        std::string_view path_prefix, std::string_view headers);

class Http1ResponseParser {
 public:
  enum class Status { kNeedMore, kDone, kError };

  // Header sections above this are garbage, not an answer from Polar (whose
  // largest header blocks are well under 2 KiB).
  static constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

  explicit Http1ResponseParser(std::size_t max_body) : max_body_(max_body) {}

  // Starts a new response; the previous one's fields are cleared.
  void Reset();

  // Parses `data`. kDone: the response is complete and *consumed says how many
  // bytes of `data` it used (the rest belongs to nobody: HTTP/1.1 without
  // pipelining has no next answer yet). kNeedMore: all of `data` was used.
  // kError: error() says why. `now` dates a Retry-After given as an HTTP-date.
  Status Feed(std::string_view data, WallTime now, std::size_t* consumed);
  // The peer closed the connection: kDone when the body runs until close and
  // the headers were complete, kError otherwise.
  Status Finish();

  // True once any byte of a response arrived (a stale keep-alive connection
  // fails before that and may be retried).
  bool started() const { return started_; }
  long status() const { return status_; }
  int http_version() const { return version_; }  // 10 or 11, as curl says
  // The connection must close after this response (Connection: close, an
  // HTTP/1.0 answer, or a body that ran until close).
  bool close_after() const { return close_after_; }
  const std::optional<Duration>& retry_after() const { return retry_after_; }
  std::string& body() { return body_; }
  const std::string& error() const { return error_; }

 private:
  enum class Phase {
    kStatus,
    kHeaders,
    kBody,
    kChunkSize,
    kChunkData,
    kChunkEnd,
    kTrailers,
    kUntilClose,
    kDone,
    kFailed
  };
  Status Fail(const char* why);
  // One header line (no CR LF) in kStatus/kHeaders/kTrailers.
  bool Line(std::string_view line, WallTime now);

  std::size_t max_body_;
  Phase phase_ = Phase::kStatus;
  std::string line_;  // a header or chunk-size line split across pieces
  bool started_ = false;
  bool close_after_ = false;
  bool chunked_ = false;
  bool has_length_ = false;
  std::size_t remaining_ = 0;
  std::size_t header_bytes_ = 0;
  long status_ = 0;
  int version_ = 0;
  std::optional<Duration> retry_after_;
  std::string body_;
  std::string error_;
};

}  // namespace polar
