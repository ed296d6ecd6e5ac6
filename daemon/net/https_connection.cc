// HttpsClient, one connection's life: TCP connect (a host's addresses in
// turn), the TLS handshake and ALPN's choice of h2 or http/1.1, reading the
// socket into the TLS stream with the kernel's receive times, writing what a
// loop turn queued as one TLS record, and closing (freed after the loop
// turn, as the connection may be on the call stack).
//
// Owned by HttpsClient (https_client.h); loop thread only.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daemon/net/https_client.h"
#include "daemon/net/https_conn.h"
#include "daemon/net/socket_time.h"

namespace polar {
namespace {

// One recv() takes this much: everything a wake-up has, for any realistic
// number of answers (Polar's are a few hundred bytes).
constexpr std::size_t kHttpsReadChunk = 64 * 1024;

std::string Errno(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

}  // namespace

void HttpsClient::Connect(Conn* conn) {
  while (conn->next_address < conn->addresses.size()) {
    const ResolvedAddress& a = conn->addresses[conn->next_address++];
    const int fd = socket(a.address.ss_family,
                          SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      FailSoon(conn, Outcome::kConnectError, Errno("socket", errno));
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Answers are dated by when they reached the kernel, not by when the loop
    // got to them.
    EnableReceiveTimestamps(fd);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&a.address), a.length) <
            0 &&
        errno != EINPROGRESS) {
      const int err = errno;
      close(fd);
      if (conn->next_address < conn->addresses.size()) continue;
      if (resolver_) resolver_->Invalidate();
      FailSoon(conn, Outcome::kConnectError, Errno("connect", err));
      return;
    }
    conn->fd = fd;
    conn->state = Conn::State::kConnecting;
    conn->want_write = true;
    loop_.Watch(fd, EPOLLOUT,
                [this, conn](uint32_t events) { OnEvents(conn, events); });
    return;
  }
  FailSoon(conn, Outcome::kConnectError, "connect: no address");
}

void HttpsClient::OnEvents(Conn* conn, uint32_t events) {
  if (conn->closed) return;
  switch (conn->state) {
    case Conn::State::kResolving:
      return;
    case Conn::State::kConnecting:
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) OnConnected(conn);
      return;
    case Conn::State::kHandshaking:
      if ((events & EPOLLOUT) && !SendCiphertext(conn)) return;
      if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        ReadSome(conn);
        Handshake(conn);
      }
      return;
    case Conn::State::kReady:
      if ((events & EPOLLOUT) && !SendCiphertext(conn)) return;
      if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        ReadSome(conn);
        Process(conn);
      }
      return;
  }
}

void HttpsClient::OnConnected(Conn* conn) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    loop_.Unwatch(conn->fd);
    close(conn->fd);
    conn->fd = -1;
    if (conn->next_address < conn->addresses.size()) {
      Connect(conn);  // the host's next address
      return;
    }
    if (resolver_) resolver_->Invalidate();
    Fail(conn, Outcome::kConnectError, Errno("connect", err));
    return;
  }
  conn->state = Conn::State::kHandshaking;
  conn->tls = std::make_unique<TlsStream>(tls_, options_.target.host,
                                          options_.target.host_is_ip);
  Handshake(conn);
}

void HttpsClient::Handshake(Conn* conn) {
  const TlsStream::Result r = conn->tls->Handshake();
  if (r == TlsStream::Result::kError) {
    Fail(conn, Outcome::kTlsError, conn->tls->error());
    return;
  }
  // The ClientHello, or the client's Finished message.
  if (!SendCiphertext(conn)) return;
  if (r == TlsStream::Result::kOk) {
    Established(conn);
    return;
  }
  if (conn->eof) {
    Fail(conn, Outcome::kTlsError,
         "TLS handshake: the server closed the connection" +
             (conn->eof_error.empty() ? "" : " (" + conn->eof_error + ")"));
  }
}

void HttpsClient::Established(Conn* conn) {
  conn->state = Conn::State::kReady;
  // From now on its answers carry kernel receive times, so they may wait for
  // the loop's next wake-up (EventLoop::Wake::kBatched). The handshake did
  // not: each of its round trips would have waited too.
  loop_.Watch(
      conn->fd, EPOLLIN | (conn->want_write ? EPOLLOUT : 0u),
      [this, conn](uint32_t events) { OnEvents(conn, events); },
      EventLoop::Wake::kBatched);
  ++stats_.handshakes;
  if (conn->tls->resumed()) ++stats_.handshakes_resumed;
  conn->h2 = conn->tls->alpn() == "h2";
  expect_h2_ = conn->h2;
  if (conn->h2) {
    // The requests that waited keep waiting for the server's SETTINGS (its
    // concurrency limit): sent before it, streams over the limit would be
    // refused or held back inside nghttp2 while the clock runs.
    conn->session = std::make_unique<H2Session>(options_.max_response_bytes);
    MarkDirty(conn);  // the preface and SETTINGS
  } else {
    idle_h1_.push_back(conn);
    Release(conn);
  }
  // Bytes that came with the end of the handshake (maybe the SETTINGS).
  Process(conn);
  Pump();
}

void HttpsClient::ReadSome(Conn* conn) {
  char buffer[kHttpsReadChunk];
  conn->received.reset();
  while (!conn->eof) {
    const ssize_t n =
        ReceiveStamped(conn->fd, buffer, sizeof buffer, &conn->received);
    if (n > 0) {
      conn->tls->Received(buffer, static_cast<std::size_t>(n));
      // A short read emptied the socket: skip the recv() that would only
      // say EAGAIN.
      if (static_cast<std::size_t>(n) < sizeof buffer) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    conn->eof = true;
    if (n < 0) conn->eof_error = Errno("recv", errno);
  }
}

void HttpsClient::MarkDirty(Conn* conn) {
  if (conn->dirty || conn->closed) return;
  conn->dirty = true;
  dirty_.push_back(conn);
  if (flush_posted_) return;
  flush_posted_ = true;
  // Everything the rest of this loop turn adds (the other arrivals of a timer
  // slack window, the next requests a callback sends) goes out with it.
  loop_.Post([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    flush_posted_ = false;
    FlushDirty();
  });
}

void HttpsClient::FlushDirty() {
  std::vector<Conn*> dirty;
  dirty.swap(dirty_);
  for (Conn* conn : dirty) {
    conn->dirty = false;
    if (!conn->closed) Flush(conn);
  }
}

bool HttpsClient::Flush(Conn* conn) {
  if (conn->state != Conn::State::kReady) return true;
  if (conn->h2 && !conn->session->Output(&conn->plain_out)) {
    const std::string error = conn->session->error();
    Fail(conn, Outcome::kInvalidResponse, error);
    return false;
  }
  if (!conn->plain_out.empty()) {
    if (conn->tls->Write(conn->plain_out) != TlsStream::Result::kOk) {
      const std::string error = conn->tls->error();
      Fail(conn, Outcome::kInvalidResponse, error);
      return false;
    }
    conn->plain_out.clear();
  }
  return SendCiphertext(conn);
}

bool HttpsClient::SendCiphertext(Conn* conn) {
  std::string& out = conn->tls->outgoing();
  std::size_t offset = 0;
  while (offset < out.size()) {
    const ssize_t n =
        send(conn->fd, out.data() + offset, out.size() - offset, MSG_NOSIGNAL);
    if (n > 0) {
      offset += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      out.erase(0, offset);
      SetWantWrite(conn, true);
      return true;
    }
    const int err = errno;
    out.clear();
    conn->reused = false;
    Fail(conn,
         conn->state == Conn::State::kReady ? Outcome::kInvalidResponse
                                            : Outcome::kTlsError,
         Errno("send", err));
    return false;
  }
  out.clear();
  SetWantWrite(conn, false);
  return true;
}

void HttpsClient::SetWantWrite(Conn* conn, bool want) {
  if (conn->want_write == want) return;
  conn->want_write = want;
  loop_.Modify(conn->fd, EPOLLIN | (want ? EPOLLOUT : 0u));
}

void HttpsClient::Close(Conn* conn) {
  if (conn->closed) return;
  conn->closed = true;
  if (conn->fd >= 0) {
    loop_.Unwatch(conn->fd);
    close(conn->fd);
    conn->fd = -1;
  }
  idle_h1_.erase(std::remove(idle_h1_.begin(), idle_h1_.end(), conn),
                 idle_h1_.end());
  dirty_.erase(std::remove(dirty_.begin(), dirty_.end(), conn), dirty_.end());
  auto it = std::find_if(connections_.begin(), connections_.end(),
                         [conn](const auto& c) { return c.get() == conn; });
  if (it != connections_.end()) {
    // The Conn may be on the call stack (its own event handler): free it only
    // after this loop turn.
    closed_.push_back(std::move(*it));
    connections_.erase(it);
  }
  if (!reap_posted_) {
    reap_posted_ = true;
    loop_.Post([this, alive = std::weak_ptr<bool>(alive_)] {
      if (alive.expired()) return;
      reap_posted_ = false;
      closed_.clear();
    });
  }
}

}  // namespace polar
