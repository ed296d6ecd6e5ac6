// Fuzz target: the server-sent events parser (scenarios/sse.h), which reads
// the checkout stream the target sends: untrusted bytes. Links only
// polar_sse.
//
// Input: byte 0 picks a piece size (1-256); the rest is the stream. It is
// parsed twice, whole and cut into pieces of that size (a CR LF may be split
// between two). Both must dispatch the same events and fail the same way; no
// event may be larger than the limit, and a failed parser stays failed.
#include <string>
#include <string_view>
#include <vector>

#include "scenarios/sse.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

constexpr std::size_t kMaxEvent = 512;

struct Outcome {
  std::vector<polar::SseEvent> events;
  bool failed = false;
};

Outcome Parse(std::string_view bytes, std::size_t piece) {
  polar::SseParser parser(kMaxEvent);
  Outcome out;
  auto on_event = [&](const polar::SseEvent& e) {
    if (e.data.size() > kMaxEvent || e.event.size() > kMaxEvent ||
        e.id.size() > kMaxEvent) {
      __builtin_trap();
    }
    out.events.push_back(e);
  };
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    const bool ok = parser.Feed(bytes.substr(at, piece), on_event);
    if (ok == parser.failed()) __builtin_trap();
  }
  out.failed = parser.failed();
  if (out.failed) {
    const std::size_t seen = out.events.size();
    if (parser.Feed("data: x\n\n", on_event) || out.events.size() != seen)
      __builtin_trap();
  }
  if (parser.events() != out.events.size()) __builtin_trap();
  return out;
}

bool Same(const Outcome& a, const Outcome& b) {
  if (a.failed != b.failed || a.events.size() != b.events.size()) return false;
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    if (a.events[i].event != b.events[i].event ||
        a.events[i].data != b.events[i].data ||
        a.events[i].id != b.events[i].id) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::size_t piece = static_cast<std::size_t>(data[0]) + 1;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1),
                               size - 1);
  const Outcome whole = Parse(bytes, bytes.size() + 1);
  const Outcome pieces = Parse(bytes, piece);
  if (!Same(whole, pieces)) __builtin_trap();
  return 0;
}
