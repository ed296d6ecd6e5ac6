// SseParser: splits a text/event-stream body (server-sent events, as
// sse_starlette writes Polar's checkout stream) into events.
//
// A value type owned by whoever reads one stream; not thread-safe (the
// checkout scenario uses one per stream on the loop thread). It follows the
// WHATWG event-stream rules that matter here: lines end in CRLF, LF or CR
// (also when a CRLF is split across chunks), `:` lines are comments (Polar's
// pings), `data:` lines of one event are joined with "\n", a blank line ends
// the event, and an event without data is not dispatched. Memory is bounded:
// a line or an event larger than the limit makes the parser fail for good
// (a hostile or broken stream cannot grow the daemon's memory).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace polar {

struct SseEvent {
  std::string event;  // the `event:` field; empty means "message"
  std::string data;   // the `data:` lines joined with "\n"
  std::string id;     // the `id:` field, if any
};

class SseParser {
 public:
  // 64 KiB: two orders of magnitude above Polar's frames (~100-300 bytes).
  static constexpr std::size_t kDefaultMaxEventBytes = 64 * 1024;

  explicit SseParser(std::size_t max_event_bytes = kDefaultMaxEventBytes)
      : max_event_bytes_(max_event_bytes) {}

  // Consumes `chunk`, calling `on_event` for every event it completes.
  // Returns false (and ignores everything from then on) once a line or an
  // event exceeds the limit.
  bool Feed(std::string_view chunk,
            const std::function<void(const SseEvent&)>& on_event);
  bool failed() const { return failed_; }
  // Events dispatched so far.
  std::size_t events() const { return events_; }

 private:
  void Line(std::string_view line,
            const std::function<void(const SseEvent&)>& on_event);

  std::size_t max_event_bytes_;
  std::string line_;
  SseEvent current_;
  bool has_data_ = false;
  bool after_cr_ = false;  // the previous chunk ended in CR: skip a leading LF
  bool failed_ = false;
  std::size_t events_ = 0;
};

}  // namespace polar
