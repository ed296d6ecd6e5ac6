#include "daemon/net/http_request.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>

namespace polar {
namespace {

// RFC 9110 §5.6.2 token characters.
bool IsTchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return IsTchar(static_cast<unsigned char>(c));
  });
}

// A field value's bytes: HTAB, SP, visible ASCII, obs-text. No other control
// byte (NUL, CR, LF, DEL...).
bool IsFieldValue(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  return out;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Headers that must come once: a second copy is refused rather than
// "last one wins" (or first), which is where a proxy and a server disagree.
bool IsSingleton(std::string_view lower_name) {
  static constexpr std::array<std::string_view, 4> kNames = {
      "host", "authorization", "content-type", "expect"};
  if (std::find(kNames.begin(), kNames.end(), lower_name) != kNames.end())
    return true;
  // Standard Webhooks' webhook-id, webhook-timestamp, webhook-signature.
  return lower_name.substr(0, 8) == "webhook-";
}

// 1-18 decimal digits (no sign, no spaces, no list): fits in int64.
std::optional<uint64_t> ParseContentLength(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

bool IsPort(std::string_view s) {
  return s.size() <= 5 && std::all_of(s.begin(), s.end(), [](char c) {
           return c >= '0' && c <= '9';
         });
}

// Parses query `raw` into *query; false on a bad escape or control byte.
bool ParseQuery(std::string_view raw,
                std::map<std::string, std::string>* query) {
  while (!raw.empty()) {
    const auto amp = raw.find('&');
    std::string_view pair = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view()
                                        : raw.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq), true);
    auto value = PercentDecode(
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1),
        true);
    if (!key || !value) return false;
    (*query)[*key] = *value;
  }
  return true;
}

HttpHeadResult Refused(HttpRefusal refusal) {
  HttpHeadResult r;
  r.refusal = refusal;
  return r;
}

}  // namespace

std::string_view HttpRefusalName(HttpRefusal refusal) {
  switch (refusal) {
    case HttpRefusal::kBadRequest:
      return "bad_request";
    case HttpRefusal::kBadFraming:
      return "bad_framing";
    case HttpRefusal::kTransferCoding:
      return "transfer_coding";
    case HttpRefusal::kBadTarget:
      return "bad_target";
    case HttpRefusal::kDuplicateHeader:
      return "duplicate_header";
    case HttpRefusal::kHeadTooLarge:
      return "head_too_large";
    case HttpRefusal::kBodyTooLarge:
      return "body_too_large";
    case HttpRefusal::kHostNotAllowed:
      return "host_not_allowed";
    case HttpRefusal::kExpectation:
      return "expectation";
  }
  return "bad_request";
}

int HttpRefusalStatus(HttpRefusal refusal) {
  switch (refusal) {
    case HttpRefusal::kTransferCoding:
      return 501;
    case HttpRefusal::kHeadTooLarge:
      return 431;
    case HttpRefusal::kBodyTooLarge:
      return 413;
    case HttpRefusal::kHostNotAllowed:
      return 421;
    case HttpRefusal::kExpectation:
      return 417;
    default:
      return 400;
  }
}

std::size_t FindHeadEnd(std::string_view buffer) {
  const auto at = buffer.find("\r\n\r\n");
  return at == std::string_view::npos ? 0 : at + 4;
}

std::optional<std::string> PercentDecode(std::string_view in,
                                         bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (IsControl(static_cast<unsigned char>(c))) return std::nullopt;
    out += c;
  }
  return out;
}

std::optional<std::string> HostName(std::string_view authority) {
  if (authority.empty()) return std::nullopt;
  std::string_view host, port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(0, close + 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
    const std::string inside(host.substr(1, host.size() - 2));
    in6_addr a{};
    if (inet_pton(AF_INET6, inside.c_str(), &a) != 1) return std::nullopt;
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (host.empty()) return std::nullopt;
    for (char c : host) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                      c == '_' || c == '~';
      if (!ok) return std::nullopt;
    }
  }
  if (!IsPort(port)) return std::nullopt;
  std::string name = AsciiLower(host);
  if (name.size() > 1 && name.back() == '.') name.pop_back();
  return name;
}

bool HostAllowed(std::string_view host, const std::vector<std::string>& names) {
  if (host.empty()) return true;
  std::optional<std::string> name = HostName(host);
  if (!name) return false;
  if (name->front() == '[') return true;  // an IPv6 literal (HostName checked)
  in_addr v4{};
  if (inet_pton(AF_INET, name->c_str(), &v4) == 1) return true;
  if (*name == "localhost") return true;
  for (const std::string& allowed : names) {
    if (HostName(allowed) == name) return true;
  }
  return false;
}

HttpHeadResult ParseRequestHead(std::string_view head) {
  // Every CR is followed by LF and every LF preceded by CR.
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\r' && (i + 1 == head.size() || head[i + 1] != '\n'))
      return Refused(HttpRefusal::kBadRequest);
    if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r'))
      return Refused(HttpRefusal::kBadRequest);
  }
  if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n")
    return Refused(HttpRefusal::kBadRequest);

  HttpHeadResult result;
  HttpRequestHead& h = result.head;

  // The request line: method SP target SP version.
  const auto line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Refused(HttpRefusal::kBadRequest);
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Refused(HttpRefusal::kBadRequest);
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Refused(HttpRefusal::kBadRequest);
  if (version == "HTTP/1.1") {
    h.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    h.minor_version = 0;
  } else {
    // Also a raw space inside the target ("GET /a b HTTP/1.1").
    return Refused(HttpRefusal::kBadRequest);
  }
  if (target.empty()) return Refused(HttpRefusal::kBadRequest);
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e || c == '#')
      return Refused(HttpRefusal::kBadTarget);
  }
  h.method = std::string(method);

  // origin-form, or absolute-form (RFC 9112 §3.2.2: a server must accept
  // it; its authority then replaces Host).
  std::string_view path_and_query = target;
  std::optional<std::string> absolute_authority;
  if (target.front() != '/') {
    const std::string lower = AsciiLower(target.substr(0, 8));
    std::size_t skip = 0;
    if (lower.rfind("http://", 0) == 0) skip = 7;
    if (lower.rfind("https://", 0) == 0) skip = 8;
    if (skip == 0) return Refused(HttpRefusal::kBadTarget);
    std::string_view rest = target.substr(skip);
    const auto end = rest.find_first_of("/?");
    const std::string_view authority = rest.substr(0, end);
    if (!HostName(authority)) return Refused(HttpRefusal::kBadTarget);
    absolute_authority = std::string(authority);
    path_and_query = end == std::string_view::npos ? std::string_view("/")
                                                   : rest.substr(end);
    if (path_and_query.front() == '?') return Refused(HttpRefusal::kBadTarget);
  }
  const auto qmark = path_and_query.find('?');
  std::optional<std::string> path =
      PercentDecode(path_and_query.substr(0, qmark), false);
  if (!path) return Refused(HttpRefusal::kBadTarget);
  h.path = std::move(*path);
  if (qmark != std::string_view::npos &&
      !ParseQuery(path_and_query.substr(qmark + 1), &h.query))
    return Refused(HttpRefusal::kBadTarget);

  // Header lines, up to the empty line.
  bool has_host = false, has_te = false, has_cl = false;
  std::size_t lines = 0;
  std::size_t pos = line_end + 2;
  for (;;) {
    const auto end = head.find("\r\n", pos);
    const std::string_view field = head.substr(pos, end - pos);
    pos = end + 2;
    if (field.empty()) break;
    if (++lines > kMaxHeaderLines) return Refused(HttpRefusal::kHeadTooLarge);
    if (field.front() == ' ' || field.front() == '\t')
      return Refused(HttpRefusal::kBadRequest);  // obs-fold
    const auto colon = field.find(':');
    if (colon == std::string_view::npos)
      return Refused(HttpRefusal::kBadRequest);
    const std::string_view name = field.substr(0, colon);
    const std::string_view value = TrimOws(field.substr(colon + 1));
    if (!IsToken(name) || !IsFieldValue(value))
      return Refused(HttpRefusal::kBadRequest);
    std::string lower = AsciiLower(name);
    h.header_bytes += name.size() + value.size() + 4;
    if (lower == "content-length") {
      if (has_cl) return Refused(HttpRefusal::kBadFraming);
      has_cl = true;
    } else if (lower == "transfer-encoding") {
      if (has_te) return Refused(HttpRefusal::kBadFraming);
      has_te = true;
    } else if (lower == "host") {
      has_host = true;
    }
    auto [it, inserted] = h.headers.try_emplace(std::move(lower), value);
    if (!inserted) {
      if (IsSingleton(it->first)) return Refused(HttpRefusal::kDuplicateHeader);
      it->second.append(", ").append(value);
    }
  }

  // The body's framing (RFC 9112 §6.3), refusing every ambiguity.
  if (has_te) {
    if (has_cl || h.minor_version == 0)
      return Refused(HttpRefusal::kBadFraming);
    if (AsciiLower(h.headers["transfer-encoding"]) != "chunked")
      return Refused(HttpRefusal::kTransferCoding);
    h.chunked = true;
  } else if (has_cl) {
    h.content_length = ParseContentLength(h.headers["content-length"]);
    if (!h.content_length) return Refused(HttpRefusal::kBadFraming);
  }

  // Host: required in HTTP/1.1 (RFC 9112 §3.2), and well-formed.
  if (has_host) {
    const std::string& value = h.headers["host"];
    if (!HostName(value)) return Refused(HttpRefusal::kBadRequest);
    h.host = value;
  } else if (h.minor_version == 1) {
    return Refused(HttpRefusal::kBadRequest);
  }
  if (absolute_authority) h.host = *absolute_authority;

  if (auto it = h.headers.find("expect"); it != h.headers.end()) {
    if (AsciiLower(it->second) != "100-continue")
      return Refused(HttpRefusal::kExpectation);
    h.expect_continue = true;
  }

  bool close = false, keep_alive = false;
  if (auto it = h.headers.find("connection"); it != h.headers.end()) {
    std::string_view list = it->second;
    while (!list.empty()) {
      const auto comma = list.find(',');
      const std::string token = AsciiLower(TrimOws(list.substr(0, comma)));
      close = close || token == "close";
      keep_alive = keep_alive || token == "keep-alive";
      list = comma == std::string_view::npos ? std::string_view()
                                             : list.substr(comma + 1);
    }
  }
  h.keep_alive = !close && (h.minor_version == 1 || keep_alive);
  return result;
}

std::size_t ChunkedDecoder::Feed(std::string_view in, std::string* body) {
  // Longest chunk-size line (extensions included) and trailer section read.
  constexpr std::size_t kMaxLine = 1024;
  constexpr std::size_t kMaxTrailers = 4096;
  std::size_t i = 0;
  auto fail = [&](Status s) {
    status_ = s;
    return i;
  };
  while (i < in.size() && status_ == Status::kMore) {
    const char c = in[i];
    const auto u = static_cast<unsigned char>(c);
    switch (state_) {
      case State::kSize: {
        const int v = HexValue(c);
        if (v >= 0) {
          // 15 hex digits: up to 2^60, no overflow.
          if (++size_digits_ > 15) return fail(Status::kBad);
          chunk_left_ = chunk_left_ * 16 + static_cast<uint64_t>(v);
          ++i;
        } else if (size_digits_ > 0 && c == ';') {
          state_ = State::kExt;
          line_bytes_ = 0;
          ++i;
        } else if (size_digits_ > 0 && c == '\r') {
          state_ = State::kSizeLf;
          ++i;
        } else {
          return fail(Status::kBad);
        }
        break;
      }
      case State::kExt:
        if (++line_bytes_ > kMaxLine) return fail(Status::kBad);
        if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (c != '\t' && IsControl(u)) {
          return fail(Status::kBad);
        }
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') return fail(Status::kBad);
        ++i;
        size_digits_ = 0;
        if (chunk_left_ == 0) {
          state_ = State::kTrailer;
          line_empty_ = true;
          saw_cr_ = false;
        } else if (chunk_left_ >
                   max_body_ - std::min(max_body_, body->size())) {
          return fail(Status::kTooLarge);
        } else {
          state_ = State::kData;
        }
        break;
      case State::kData: {
        const std::size_t n = static_cast<std::size_t>(
            std::min<uint64_t>(chunk_left_, in.size() - i));
        body->append(in.data() + i, n);
        i += n;
        chunk_left_ -= n;
        if (chunk_left_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (c != '\r') return fail(Status::kBad);
        state_ = State::kDataLf;
        ++i;
        break;
      case State::kDataLf:
        if (c != '\n') return fail(Status::kBad);
        state_ = State::kSize;
        ++i;
        break;
      case State::kTrailer:
        if (++trailer_bytes_ > kMaxTrailers) return fail(Status::kBad);
        ++i;
        if (saw_cr_) {
          if (c != '\n') return fail(Status::kBad);
          saw_cr_ = false;
          if (line_empty_) {
            status_ = Status::kDone;
            return i;
          }
          line_empty_ = true;
        } else if (c == '\r') {
          saw_cr_ = true;
        } else if (c == '\n' || (c != '\t' && IsControl(u))) {
          return fail(Status::kBad);
        } else {
          line_empty_ = false;
        }
        break;
    }
  }
  return i;
}

}  // namespace polar
