// H2Session: the HTTP/2 client side of one connection (nghttp2), without I/O
// of its own: requests go in with Submit(), frames to send come out of
// Output(), received plaintext goes into Receive(), and the streams that
// ended meanwhile are listed in ended().
//
// Owned by the HTTPS client, one per h2 connection; loop thread only.
// Nothing here calls back into the owner: Receive() only records what ended,
// and the owner acts on it after Receive() returns, so no handler ever runs
// inside nghttp2.
//
// What the server sends is untrusted: a response body over max_body, a header
// block over 64 KiB or a malformed message ends that stream (RST_STREAM sent,
// kind kTooLarge or kReset), never the process. A stream the server refused
// (RST_STREAM REFUSED_STREAM, or above the last id of a GOAWAY) was not
// processed and ends as kRefused, so the owner may send it again elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "exporters/clock.h"
#include "scenarios/transport.h"

typedef struct nghttp2_session nghttp2_session;

namespace polar {

// Header values every request of a target carries, built once.
struct H2Headers {
  std::string authority;    // ":authority", e.g. "api.polar.sh" or "host:8443"
  std::string path_prefix;  // the base URL's path, "" or e.g. "/polar"
  std::string user_agent;   // empty: none sent
  std::string authorization;  // "Bearer <token>"; secret, sent never-indexed
};

struct H2StreamEnd {
  enum class Kind {
    kComplete,  // a whole response arrived
    kRefused,   // not processed by the server: safe to send again
    kReset,     // reset by the server or by nghttp2 (malformed), or cut off
    kTooLarge,  // the body or header block went over its limit
  };
  int32_t stream_id = 0;
  Kind kind = Kind::kComplete;
  long status = 0;
  std::optional<Duration> retry_after;
  std::string body;
  std::string error;  // why, for kRefused/kReset/kTooLarge
};

class H2Session {
 public:
  // Streams allowed before the server's SETTINGS say how many (RFC 9113
  // recommends servers allow at least 100).
  static constexpr uint32_t kDefaultMaxStreams = 100;

  explicit H2Session(std::size_t max_body);
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Queues a request; its frames come out of the next Output(). Returns the
  // stream id, or 0 when the session can take no more streams (see
  // CanSubmit()).
  int32_t Submit(const Request& request, const H2Headers& headers);
  // Resets a stream we gave up on (a timeout); it is not listed in ended().
  void Cancel(int32_t stream_id);

  // Feeds received plaintext. False when the connection is unusable (a
  // protocol error; error() says why); the streams still open then never end
  // here and the owner fails them. `now` dates Retry-After HTTP-dates.
  bool Receive(std::string_view data, WallTime now);
  // Streams that ended during Receive(), in the order they ended. The owner
  // clears the list after acting on it.
  std::vector<H2StreamEnd>& ended() { return ended_; }

  // Appends the frames waiting to be sent (the preface and SETTINGS first).
  // False on an internal error.
  bool Output(std::string* out);

  // Frames are waiting for Output() (acknowledgements, window updates,
  // resets). After most answers nothing is, and the owner then skips the
  // flush it would otherwise schedule for every read.
  bool WantsToWrite() const;

  // A new stream fits: no GOAWAY, under the server's concurrency limit, and
  // stream ids left.
  bool CanSubmit() const;
  std::size_t open_streams() const { return streams_.size(); }
  // The server's SETTINGS_MAX_CONCURRENT_STREAMS (kDefaultMaxStreams until
  // its SETTINGS arrive).
  uint32_t max_streams() const;
  bool goaway_received() const { return goaway_; }
  // The server's first SETTINGS arrived (its limits are known).
  bool settings_received() const { return settings_received_; }
  // Neither side has anything left to say: the connection can be closed.
  bool finished() const;
  const std::string& error() const { return error_; }

 private:
  struct Stream;
  struct Callbacks;

  // Appends what nghttp2 has to send; false on an internal error.
  bool Drain(std::string* out);

  nghttp2_session* session_ = nullptr;
  std::size_t max_body_;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  std::vector<H2StreamEnd> ended_;
  bool settings_received_ = false;
  bool goaway_ = false;
  bool broken_ = false;
  WallTime now_{};
  std::string error_;
  std::string last_error_;   // nghttp2's newest complaint, for error_
  std::string pending_out_;  // frames taken out during Receive()
};

}  // namespace polar
