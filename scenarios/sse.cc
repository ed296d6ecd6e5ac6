#include "scenarios/sse.h"

namespace polar {

bool SseParser::Feed(std::string_view chunk,
                     const std::function<void(const SseEvent&)>& on_event) {
  if (failed_) return false;
  std::size_t i = 0;
  if (after_cr_ && !chunk.empty() && chunk.front() == '\n') i = 1;
  after_cr_ = false;
  while (i < chunk.size()) {
    std::size_t end = chunk.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      line_.append(chunk.substr(i));
      if (line_.size() > max_event_bytes_) {
        failed_ = true;
        return false;
      }
      return true;
    }
    line_.append(chunk.substr(i, end - i));
    if (line_.size() > max_event_bytes_) {
      failed_ = true;
      return false;
    }
    Line(line_, on_event);
    line_.clear();
    if (failed_) return false;
    if (chunk[end] == '\r') {
      if (end + 1 < chunk.size()) {
        if (chunk[end + 1] == '\n') ++end;
      } else {
        after_cr_ = true;  // the LF of this CRLF may open the next chunk
      }
    }
    i = end + 1;
  }
  return true;
}

void SseParser::Line(std::string_view line,
                     const std::function<void(const SseEvent&)>& on_event) {
  if (line.empty()) {
    if (has_data_) {
      if (!current_.data.empty() && current_.data.back() == '\n')
        current_.data.pop_back();
      ++events_;
      on_event(current_);
    }
    current_ = SseEvent{};
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // a comment: Polar's ": ping - <time>"
  std::string_view field = line;
  std::string_view value;
  if (std::size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    current_.data.append(value);
    current_.data.push_back('\n');
    has_data_ = true;
  } else if (field == "event") {
    current_.event.assign(value);
  } else if (field == "id") {
    current_.id.assign(value);
  }  // `retry` and unknown fields are ignored, as the spec says
  if (current_.data.size() + current_.event.size() + current_.id.size() >
      max_event_bytes_) {
    failed_ = true;
  }
}

}  // namespace polar
