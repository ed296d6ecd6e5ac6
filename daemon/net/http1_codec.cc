#include "daemon/net/http1_codec.h"

#include <algorithm>
#include <charconv>

#include "daemon/net/retry_after.h"

namespace polar {
// Named, not anonymous: unity builds put this file in one unit with
// http1_client.cc, which has helpers of the same names.
namespace http1_codec {

char Lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

bool EqualsNoCase(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != lower[i]) return false;
  }
  return true;
}

bool ContainsNoCase(std::string_view text, std::string_view lower) {
  if (lower.size() > text.size()) return false;
  for (std::size_t i = 0; i + lower.size() <= text.size(); ++i) {
    if (EqualsNoCase(text.substr(i, lower.size()), lower)) return true;
  }
  return false;
}

std::string_view Trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
    v.remove_prefix(1);
  }
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) {
    v.remove_suffix(1);
  }
  return v;
}

// Longest chunk-size line accepted (hex digits and extensions).
constexpr std::size_t kMaxChunkLine = 1024;

}  // namespace http1_codec

void AppendHttp1Request(std::string* out, const Request& req,
                        std::string_view path_prefix,
                        std::string_view headers) {
  const bool body_method = req.method == Method::kPost ||
                           req.method == Method::kPut ||
                           req.method == Method::kPatch ||
                           (req.method == Method::kDelete && !req.body.empty());
  out->reserve(out->size() + 160 + path_prefix.size() + req.path.size() +
               headers.size() + req.body.size());
  *out += MethodName(req.method);
  *out += ' ';
  *out += path_prefix;
  *out += req.path;
  *out += " HTTP/1.1\r\n";
  *out += headers;
  if (body_method) {
    *out += "Content-Type: application/json\r\nContent-Length: ";
    char digits[24];
    auto [end, ec] =
        std::to_chars(digits, digits + sizeof digits, req.body.size());
    out->append(digits, end);
    *out += "\r\n\r\n";
    *out += req.body;
  } else {
    *out += "\r\n";
  }
}

void Http1ResponseParser::Reset() {
  phase_ = Phase::kStatus;
  line_.clear();
  started_ = false;
  close_after_ = false;
  chunked_ = false;
  has_length_ = false;
  remaining_ = 0;
  header_bytes_ = 0;
  status_ = 0;
  version_ = 0;
  retry_after_.reset();
  body_.clear();
  error_.clear();
}

Http1ResponseParser::Status Http1ResponseParser::Fail(const char* why) {
  phase_ = Phase::kFailed;
  error_ = why;
  return Status::kError;
}

bool Http1ResponseParser::Line(std::string_view line, WallTime now) {
  if (phase_ == Phase::kStatus) {
    // "HTTP/1.1 200 OK"
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' ||
        (line[7] != '0' && line[7] != '1') ||
        (line.size() > 12 && line[12] != ' ')) {
      Fail("malformed status line");
      return false;
    }
    int status = 0;
    auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
    if (ec != std::errc() || p != line.data() + 12 || status < 100) {
      Fail("malformed status code");
      return false;
    }
    status_ = status;
    version_ = line[7] == '0' ? 10 : 11;
    close_after_ = line[7] == '0';  // HTTP/1.0 closes by default
    phase_ = Phase::kHeaders;
    return true;
  }
  if (phase_ == Phase::kTrailers) {
    if (line.empty()) phase_ = Phase::kDone;
    return true;  // trailer fields are ignored
  }
  if (!line.empty()) {
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      Fail("malformed header line");
      return false;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = http1_codec::Trim(line.substr(colon + 1));
    // Dispatch on length first: most headers are none of these four.
    switch (name.size()) {
      case 14:
        if (http1_codec::EqualsNoCase(name, "content-length")) {
          std::size_t length = 0;
          auto [p, ec] = std::from_chars(value.data(),
                                         value.data() + value.size(), length);
          if (value.empty() || ec != std::errc() ||
              p != value.data() + value.size() ||
              (has_length_ && length != remaining_)) {
            Fail("malformed Content-Length");
            return false;
          }
          has_length_ = true;
          remaining_ = length;
        }
        break;
      case 17:
        if (http1_codec::EqualsNoCase(name, "transfer-encoding")) {
          chunked_ = http1_codec::ContainsNoCase(value, "chunked");
        }
        break;
      case 10:
        if (http1_codec::EqualsNoCase(name, "connection")) {
          if (http1_codec::ContainsNoCase(value, "close")) close_after_ = true;
          if (http1_codec::ContainsNoCase(value, "keep-alive"))
            close_after_ = false;
        }
        break;
      case 11:
        if (http1_codec::EqualsNoCase(name, "retry-after")) {
          retry_after_ = ParseRetryAfter(value, now);
        }
        break;
      default:
        break;
    }
    return true;
  }
  // The end of the header section.
  if (status_ < 200) {
    // 100 Continue and friends: the real answer follows.
    const bool started = started_;
    Reset();
    started_ = started;
    return true;
  }
  if (status_ == 204 || status_ == 304) {
    phase_ = Phase::kDone;
  } else if (chunked_) {
    phase_ = Phase::kChunkSize;
  } else if (has_length_) {
    if (remaining_ > max_body_) {
      Fail("response body over the size limit");
      return false;
    }
    body_.reserve(remaining_);
    phase_ = remaining_ ? Phase::kBody : Phase::kDone;
  } else {
    phase_ = Phase::kUntilClose;
    close_after_ = true;
  }
  return true;
}

Http1ResponseParser::Status Http1ResponseParser::Feed(std::string_view data,
                                                      WallTime now,
                                                      std::size_t* consumed) {
  std::size_t pos = 0;
  *consumed = 0;
  if (phase_ == Phase::kFailed) return Status::kError;
  if (!data.empty()) started_ = true;
  while (true) {
    switch (phase_) {
      case Phase::kChunkEnd: {
        // Exactly CR LF after the chunk's data.
        while (line_.size() < 2 && pos < data.size()) line_ += data[pos++];
        if (line_.size() < 2) {
          *consumed = pos;
          return Status::kNeedMore;
        }
        if (line_ != "\r\n") return Fail("malformed chunk end");
        line_.clear();
        phase_ = Phase::kChunkSize;
        continue;
      }
      case Phase::kStatus:
      case Phase::kHeaders:
      case Phase::kTrailers:
      case Phase::kChunkSize: {
        const bool header = phase_ == Phase::kStatus ||
                            phase_ == Phase::kHeaders ||
                            phase_ == Phase::kTrailers;
        const std::size_t limit =
            header ? kMaxHeaderBytes - std::min(header_bytes_, kMaxHeaderBytes)
                   : http1_codec::kMaxChunkLine;
        const std::size_t nl = data.find('\n', pos);
        if (nl == std::string_view::npos) {
          if (line_.size() + (data.size() - pos) > limit) {
            return Fail(header ? "response header section too large"
                               : "malformed chunk size");
          }
          line_.append(data.substr(pos));
          *consumed = data.size();
          return Status::kNeedMore;
        }
        std::string_view line = data.substr(pos, nl - pos);
        if (!line_.empty()) {
          line_.append(line);
          line = line_;
        }
        pos = nl + 1;
        if (line.size() + 1 > limit) {
          return Fail(header ? "response header section too large"
                             : "malformed chunk size");
        }
        if (line.empty() || line.back() != '\r') {
          return Fail("line not ended by CR LF");
        }
        line.remove_suffix(1);
        if (header) header_bytes_ += line.size() + 2;
        if (phase_ == Phase::kChunkSize) {
          line = http1_codec::Trim(
              line.substr(0, line.find(';')));  // chunk extensions
          std::size_t size = 0;
          auto [p, ec] =
              std::from_chars(line.data(), line.data() + line.size(), size, 16);
          if (line.empty() || ec != std::errc() ||
              p != line.data() + line.size()) {
            return Fail("malformed chunk size");
          }
          remaining_ = size;
          phase_ = size == 0 ? Phase::kTrailers : Phase::kChunkData;
        } else if (!Line(line, now)) {
          return Status::kError;
        }
        line_.clear();
        continue;
      }
      case Phase::kBody:
      case Phase::kChunkData:
      case Phase::kUntilClose: {
        const std::size_t available = data.size() - pos;
        const std::size_t take = phase_ == Phase::kUntilClose
                                     ? available
                                     : std::min(available, remaining_);
        if (body_.size() + take > max_body_) {
          return Fail("response body over the size limit");
        }
        body_.append(data.substr(pos, take));
        pos += take;
        if (phase_ == Phase::kUntilClose) {
          *consumed = pos;
          return Status::kNeedMore;
        }
        remaining_ -= take;
        if (remaining_ > 0) {
          *consumed = pos;
          return Status::kNeedMore;
        }
        phase_ = phase_ == Phase::kBody ? Phase::kDone : Phase::kChunkEnd;
        continue;
      }
      case Phase::kDone:
        *consumed = pos;
        return Status::kDone;
      case Phase::kFailed:
        return Status::kError;
    }
  }
}

Http1ResponseParser::Status Http1ResponseParser::Finish() {
  if (phase_ == Phase::kUntilClose) {
    phase_ = Phase::kDone;
    return Status::kDone;
  }
  if (phase_ == Phase::kDone) return Status::kDone;
  if (phase_ != Phase::kFailed) {
    Fail("connection closed before the response ended");
  }
  return Status::kError;
}

}  // namespace polar
