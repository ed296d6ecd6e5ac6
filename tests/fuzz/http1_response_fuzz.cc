// Fuzz target: the HTTPS client's HTTP/1.1 response parser
// (daemon/net/http1_codec.h), which reads what an untrusted server sends. The
// same bytes parsed whole and in pieces of every size the input picks must
// end the same way: the same status, body and close decision, or an error.
//
// Input: byte 0 is the piece size (1-256); the rest is the server's bytes.
#include <string>
#include <string_view>

#include "daemon/net/http1_codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

struct Parsed {
  polar::Http1ResponseParser::Status status =
      polar::Http1ResponseParser::Status::kNeedMore;
  long code = 0;
  std::string body;
  bool close_after = false;
};

Parsed Parse(std::string_view bytes, std::size_t step) {
  using Status = polar::Http1ResponseParser::Status;
  polar::Http1ResponseParser parser(4096);
  const polar::WallTime now{std::chrono::seconds(1'700'000'000)};
  Parsed out;
  for (std::size_t at = 0; at < bytes.size(); at += step) {
    const std::string_view piece = bytes.substr(at, step);
    std::size_t consumed = 0;
    out.status = parser.Feed(piece, now, &consumed);
    if (consumed > piece.size()) __builtin_trap();
    if (out.status != Status::kNeedMore) break;
    if (consumed != piece.size()) __builtin_trap();
  }
  if (out.status == Status::kNeedMore) out.status = parser.Finish();
  if (parser.body().size() > 4096) __builtin_trap();
  if (out.status == Status::kDone) {
    out.code = parser.status();
    out.body = parser.body();
    out.close_after = parser.close_after();
    if (out.code < 200 || out.code > 999) __builtin_trap();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::size_t step = data[0] + 1u;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1),
                               size - 1);
  const Parsed whole = Parse(bytes, bytes.size() + 1);
  const Parsed pieces = Parse(bytes, step);
  if (whole.status != pieces.status || whole.code != pieces.code ||
      whole.body != pieces.body || whole.close_after != pieces.close_after) {
    __builtin_trap();
  }
  return 0;
}
