// The strict HTTP/1.1 request parsing behind HttpServer (http_server.h): the
// request head, the chunked body decoder, and the Host allow-list. Pure
// functions and a value-type decoder; any thread; no I/O.
//
// Strict on purpose: every listener is treated as facing the internet,
// usually behind a reverse proxy, and a request the proxy and this server
// could frame differently is how requests get smuggled past the proxy. So
// where RFC 9112 lets a server choose between guessing and refusing, this
// refuses (the refusal's reason is a label of
// polar_loadd_http_requests_refused_total, docs/metrics.md):
//   - lines end in CRLF; a bare CR or LF, a folded (obs-fold) line, a space
//     before a header's colon, or a control byte in a value    -> bad_request
//   - Content-Length twice (same value or not), not 1-18 digits, or with
//     Transfer-Encoding; Transfer-Encoding in HTTP/1.0          -> bad_framing
//   - a transfer coding other than exactly `chunked`            ->
//   transfer_coding (501)
//   - a target that is not origin-form (or absolute-form http), raw bytes
//     outside 0x21-0x7E, a bad %-escape, or a %-escaped control byte
//     (%00-%1F, %7F) anywhere in the path or query             -> bad_target
//   - a second Host, Authorization, Content-Type, Expect or webhook-*
//     header (last-one-wins would let a proxy and us disagree)  ->
//     duplicate_header
//   - more than 100 header lines                                ->
//   head_too_large (431)
//   - Expect other than 100-continue                            -> expectation
//   (417)
//   - HTTP/1.1 without Host, or a Host that is not host[:port]  -> bad_request
// Other repeated headers are joined with ", " (RFC 9110 §5.3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace polar {

// Why the server refused a request before any handler saw it. A fixed set:
// label values of polar_loadd_http_requests_refused_total{reason}.
enum class HttpRefusal {
  kBadRequest,       // 400: not a well-formed HTTP/1.x request head
  kBadFraming,       // 400: Content-Length / Transfer-Encoding ambiguous
  kTransferCoding,   // 501: a transfer coding other than chunked
  kBadTarget,        // 400: control bytes or bad escapes in the target
  kDuplicateHeader,  // 400: a header that must be single came twice
  kHeadTooLarge,     // 431: the head over the listener's limit
  kBodyTooLarge,     // 413: Content-Length (or the chunks) over the limit
  kHostNotAllowed,   // 421: Host not in the listener's allow-list
  kExpectation,      // 417: an Expect other than 100-continue
};
inline constexpr std::size_t kHttpRefusalCount = 9;
std::string_view HttpRefusalName(HttpRefusal refusal);
int HttpRefusalStatus(HttpRefusal refusal);

struct HttpRequestHead {
  std::string method;
  std::string path;                          // %-decoded, without the query
  std::map<std::string, std::string> query;  // %-decoded, '+' is a space
  // Names lower-cased; repeated list headers joined with ", ".
  std::map<std::string, std::string> headers;
  int minor_version = 1;  // HTTP/1.0 or HTTP/1.1
  // The body's framing: chunked, a Content-Length, or none.
  bool chunked = false;
  std::optional<uint64_t> content_length;
  bool expect_continue = false;  // Expect: 100-continue
  bool keep_alive = true;        // from the version and Connection
  // The authority: absolute-form's, else Host's; "" for HTTP/1.0 without one.
  std::string host;
  std::size_t header_bytes = 0;  // names + values + 4 per line

  bool has_body() const {
    return chunked || (content_length && *content_length > 0);
  }
};

struct HttpHeadResult {
  std::optional<HttpRefusal> refusal;  // set: the request is refused
  HttpRequestHead head;
};

inline constexpr std::size_t kMaxHeaderLines = 100;

// Where the head in `buffer` ends: the length up to and including the empty
// line's CRLF, or 0 while incomplete.
std::size_t FindHeadEnd(std::string_view buffer);

// Parses a complete head (request line, header lines, the empty line).
HttpHeadResult ParseRequestHead(std::string_view head);

// %-decodes `in` (with '+' as a space when `plus_is_space`); nullopt for a bad
// escape or a decoded control byte (0x00-0x1F, 0x7F).
std::optional<std::string> PercentDecode(std::string_view in,
                                         bool plus_is_space);

// The Host allow-list of the metrics listener (docs/configuration.md,
// metrics.allowed_hosts). A DNS-rebinding page makes a browser send requests
// to us with the page's own name as Host, so a Host that is an IP literal
// (any: the browser then talks to the address it was given, not a name an
// attacker can re-point), "localhost", or one of `names` is allowed; any other
// name is not. Names compare case-insensitively, a trailing dot ignored, the
// port ignored. "" (HTTP/1.0 without Host; a browser always sends it) is
// allowed.
bool HostAllowed(std::string_view host, const std::vector<std::string>& names);
// The host part of "host[:port]" / "[v6][:port]", lower-cased, without a
// trailing dot; nullopt if it is not of that form.
std::optional<std::string> HostName(std::string_view authority);

// Decodes a chunked body (RFC 9112 §7.1) as it arrives: strict chunk sizes
// (1-15 hex digits; extensions after ';' skipped), CRLF after every chunk,
// trailers read and dropped (at most 4 KiB).
class ChunkedDecoder {
 public:
  enum class Status { kMore, kDone, kBad, kTooLarge };
  explicit ChunkedDecoder(std::size_t max_body) : max_body_(max_body) {}
  // Consumes bytes of `in`, appending the decoded body to *body. Returns how
  // many bytes it consumed: all of `in` unless the body ended (kDone, and the
  // rest belongs to the next request) or it failed.
  std::size_t Feed(std::string_view in, std::string* body);
  Status status() const { return status_; }

 private:
  enum class State { kSize, kExt, kSizeLf, kData, kDataCr, kDataLf, kTrailer };
  State state_ = State::kSize;
  Status status_ = Status::kMore;
  std::size_t max_body_;
  uint64_t chunk_left_ = 0;
  int size_digits_ = 0;
  std::size_t line_bytes_ = 0;  // of the current size or trailer line
  std::size_t trailer_bytes_ = 0;
  bool line_empty_ = true;  // trailer: nothing but CR on this line so far
  bool saw_cr_ = false;
};

}  // namespace polar
