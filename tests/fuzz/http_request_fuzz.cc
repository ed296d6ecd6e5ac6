// Fuzz target: what a stranger sends the listeners before any handler runs:
// the request head (daemon/net/http_request.h), a chunked body after it, fed
// in pieces whose sizes the input's first byte picks, and the Host
// allow-list. Invariants: a parsed path and query hold no control byte; a
// decoded body never exceeds its limit; the decoder never consumes more than
// it was given.
#include <algorithm>
#include <string>
#include <string_view>

#include "daemon/net/http_request.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 17;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1,
                              size - 1);
  const std::size_t end = polar::FindHeadEnd(text);
  std::string_view body = text;
  if (end > 0) {
    polar::HttpHeadResult r = polar::ParseRequestHead(text.substr(0, end));
    if (!r.refusal) {
      if (HasControl(r.head.path)) __builtin_trap();
      for (const auto& [k, v] : r.head.query)
        if (HasControl(k) || HasControl(v)) __builtin_trap();
      if (r.head.chunked && r.head.content_length) __builtin_trap();
      (void)polar::HostAllowed(r.head.host, {"loadbox-1.internal"});
    }
    body = text.substr(end);
  }
  constexpr std::size_t kMax = 4096;
  polar::ChunkedDecoder decoder(kMax);
  std::string decoded;
  std::size_t offset = 0;
  while (offset < body.size() &&
         decoder.status() == polar::ChunkedDecoder::Status::kMore) {
    const std::string_view part = body.substr(offset, piece);
    const std::size_t used = decoder.Feed(part, &decoded);
    if (used > part.size() || decoded.size() > kMax) __builtin_trap();
    offset += used;
    if (used < part.size() &&
        decoder.status() == polar::ChunkedDecoder::Status::kMore)
      __builtin_trap();  // it must take everything while it wants more
  }
  (void)polar::HostName(
      text.substr(0, std::min<std::size_t>(text.size(), 300)));
  return 0;
}
