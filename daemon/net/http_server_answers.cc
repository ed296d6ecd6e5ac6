// HttpServer, answers: formatting a response (status line, Date,
// Content-Length, Connection) for the handler's answer or for a refused
// request, writing it without blocking, and what follows once it is written:
// the next request, a close, or a half-close that drains the client's input.
// Accepting and reading requests are in http_server.cc, deadlines in
// http_server_deadlines.cc; the contract is in http_server.h.
//
// Owned by HttpServer (http_server.h); loop thread only.
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <ctime>
#include <iterator>

#include "daemon/net/http_server.h"
#include "daemon/net/http_server_conn.h"

namespace polar {
namespace {

const char* Reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// What the refusal's answer says (no byte of the request is echoed).
const char* Explain(HttpRefusal refusal) {
  switch (refusal) {
    case HttpRefusal::kBadRequest:
      return "not a well-formed HTTP/1.1 request head";
    case HttpRefusal::kBadFraming:
      return "the body's framing is ambiguous: Content-Length twice or not a "
             "number, Content-Length with Transfer-Encoding, or a bad chunk";
    case HttpRefusal::kTransferCoding:
      return "the only transfer coding accepted is chunked";
    case HttpRefusal::kBadTarget:
      return "the request target has control bytes, a bad %-escape, or is "
             "not a path";
    case HttpRefusal::kDuplicateHeader:
      return "a header that must appear once appeared twice";
    case HttpRefusal::kHeadTooLarge:
      return "the request head is over this listener's limit";
    case HttpRefusal::kBodyTooLarge:
      return "the body is over this listener's limit";
    case HttpRefusal::kHostNotAllowed:
      return "this listener does not serve that Host (metrics.allowed_hosts)";
    case HttpRefusal::kExpectation:
      return "the only Expect accepted is 100-continue";
  }
  return "";
}

// "Sun, 06 Nov 1994 08:49:37 GMT" for now, formatted once per second.
const std::string& HttpDate() {
  static thread_local time_t last = 0;
  static thread_local std::string text;
  const time_t t = time(nullptr);
  if (t != last) {
    tm g{};
    gmtime_r(&t, &g);
    char buf[64];
    const std::size_t n =
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &g);
    text.assign(buf, n);
    last = t;
  }
  return text;
}

}  // namespace

void HttpServer::Respond(Conn* c, const HttpServerResponse& response,
                         bool unread_input) {
  c->close_after = !c->keep_alive || unread_input;
  c->linger_after = unread_input;
  std::string& out = c->out;
  out.clear();
  c->out_pos = 0;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Length: {}\r\n",
                 response.status, Reason(response.status), HttpDate(),
                 response.body.size());
  if (!response.content_type.empty())
    fmt::format_to(it, "Content-Type: {}\r\n", response.content_type);
  if (c->close_after) {
    out += "Connection: close\r\n";
  } else if (c->http10) {
    out += "Connection: keep-alive\r\n";
  }
  for (const auto& [name, value] : response.headers)
    fmt::format_to(it, "{}: {}\r\n", name, value);
  out += "\r\n";
  if (!c->head_method) out += response.body;
  // The request is answered: its memory goes now, not at the next request.
  c->request = HttpServerRequest{};
  c->decoder.reset();
  SetStage(c, HttpStage::kWrite, loop_.Now());
  WriteSome(c);
}

void HttpServer::Refuse(Conn* c, HttpRefusal refusal) {
  metrics_->requests_refused(refusal).Increment();
  LogLimited(HttpRefusalName(refusal),
             fmt::format("{} listener: refused a request from {}: {} ({} {})",
                         options_.name, c->remote, Explain(refusal),
                         HttpRefusalStatus(refusal), HttpRefusalName(refusal)));
  HttpServerResponse r;
  r.status = HttpRefusalStatus(refusal);
  r.body = fmt::format("{}: {}\n", HttpRefusalName(refusal), Explain(refusal));
  // Whatever follows on this connection cannot be trusted to be framed as
  // the client meant: answer, then close (draining, not reading, the rest).
  c->keep_alive = false;
  Respond(c, r, true);
}

void HttpServer::WriteSome(Conn* c) {
  while (c->out_pos < c->out.size()) {
    const ssize_t n = send(c->fd, c->out.data() + c->out_pos,
                           c->out.size() - c->out_pos, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_pos += static_cast<std::size_t>(n);
      c->stage_bytes += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (c->events != EPOLLOUT) {
        c->events = EPOLLOUT;
        loop_.Modify(c->fd, EPOLLOUT);
      }
      return;
    }
    Close(c);
    return;
  }
  WriteDone(c);
}

void HttpServer::WriteDone(Conn* c) {
  if (c->out.capacity() > 64 * 1024) {
    std::string().swap(c->out);
  } else {
    c->out.clear();
  }
  c->out_pos = 0;
  if (c->events != EPOLLIN) {
    c->events = EPOLLIN;
    loop_.Modify(c->fd, EPOLLIN);
  }
  if (c->close_after) {
    if (!c->linger_after) {
      Close(c);
      return;
    }
    // Half-close and drain: closing with unread input would send a reset,
    // which can destroy the answer before the client reads it.
    shutdown(c->fd, SHUT_WR);
    c->in.clear();
    SetStage(c, HttpStage::kLinger, loop_.Now());
    return;
  }
  c->first_request = false;
  SetStage(c, HttpStage::kIdle, loop_.Now());
}

}  // namespace polar
