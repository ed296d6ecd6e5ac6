#include "tests/support/polled_http_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <vector>

#include "tests/support/http_head.h"
#include "tests/support/loopback.h"

namespace polar::testing {
namespace {

using Clock = std::chrono::steady_clock;

struct Polled {
  PolledHttpServer::Connection conn;
  std::string in;
  std::string out;
  uint64_t filler_left = 0;     // filler bytes still to send after `out`
  uint64_t answers_in_out = 0;  // answers whose last bytes are in `out`
  bool close_after = false;     // FIN once `out` is written
  bool reset_after = false;     // RST once `out` is written
};

}  // namespace

std::optional<std::size_t> CompleteRequestLength(const std::string& buffer) {
  const std::size_t end = buffer.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  std::size_t length = 0;
  const std::string cl = HeaderValue(buffer.substr(0, end), "content-length");
  if (!cl.empty()) length = std::stoul(cl);
  if (buffer.size() < end + 4 + length) return std::nullopt;
  return end + 4 + length;
}

PolledHttpServer::PolledHttpServer(const char* name, Handlers handlers)
    : handlers_(std::move(handlers)) {
  const LoopbackListener listener = ListenOnLoopback(name, 512, true);
  listen_fd_ = listener.fd;
  port_ = listener.port;
  thread_ = std::thread([this] { Run(); });
}

PolledHttpServer::~PolledHttpServer() {
  stop_ = true;
  thread_.join();
  close(listen_fd_);
}

std::string PolledHttpServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void PolledHttpServer::Run() {
  // One 64 KiB chunk of filler, written again and again.
  const std::string chunk(64 * 1024, ' ');
  std::map<int, Polled> conns;
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    // At most 20 ms: how soon the destructor's stop is seen.
    auto wake = Clock::now() + std::chrono::milliseconds(20);
    for (auto& [fd, c] : conns) {
      if (!c.conn.due.empty()) wake = std::min(wake, c.conn.due.front().at);
      // A connection that reads no more requests still watches for the
      // peer's hang-up.
      short events = POLLIN;
      if (!c.out.empty() || c.filler_left > 0) events |= POLLOUT;
      fds.push_back({fd, events, 0});
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        wake - Clock::now());
    poll(fds.data(), fds.size(),
         static_cast<int>(std::max<long>(0, wait.count())));

    if (fds[0].revents & POLLIN) {
      for (;;) {
        int fd =
            accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        Polled c;
        if (handlers_.on_accept) handlers_.on_accept(c.conn);
        conns.emplace(fd, std::move(c));
      }
      if (conns.size() > peak_connections_) peak_connections_ = conns.size();
    }
    std::vector<int> closed;
    for (std::size_t i = 1; i < fds.size(); ++i) {
      const int fd = fds[i].fd;
      Polled& c = conns[fd];
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
          closed.push_back(fd);
          continue;
        }
        if (!c.conn.done) c.in.append(buf, static_cast<std::size_t>(n));
      }
      // Every complete request in the buffer.
      while (!c.conn.done) {
        const auto length = CompleteRequestLength(c.in);
        if (!length) break;
        const std::string head = c.in.substr(0, c.in.find("\r\n\r\n"));
        c.in.erase(0, *length);
        ++requests_;
        handlers_.on_request(c.conn, head);
      }
      // What is due, in order; bytes after a filler body wait for its end.
      while (!c.conn.due.empty() && c.conn.due.front().at <= Clock::now() &&
             c.filler_left == 0) {
        DueBytes& d = c.conn.due.front();
        c.out += d.bytes;
        c.filler_left = d.filler;
        if (d.completes) ++c.answers_in_out;
        c.close_after = c.close_after || d.close;
        c.reset_after = c.reset_after || d.reset;
        c.conn.due.pop_front();
      }
      // Write what is due; filler is refilled a chunk at a time.
      for (;;) {
        if (c.out.empty() && c.filler_left > 0) {
          std::size_t n = std::min<uint64_t>(c.filler_left, chunk.size());
          c.out.assign(chunk, 0, n);
          c.filler_left -= n;
          filler_sent_ += n;
        }
        if (c.out.empty()) break;
        ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n <= 0) break;  // EAGAIN (poll again) or the peer hung up
        c.out.erase(0, static_cast<std::size_t>(n));
      }
      if (c.out.empty() && c.filler_left == 0) {
        answers_ += c.answers_in_out;
        c.answers_in_out = 0;
        if (c.conn.due.empty() && (c.close_after || c.reset_after)) {
          if (c.reset_after) {
            linger l{1, 0};  // close() sends RST instead of FIN
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
          }
          closed.push_back(fd);
        }
      }
    }
    for (int fd : closed) {
      if (conns.erase(fd)) close(fd);
    }
    connections_ = conns.size();
  }
  for (auto& [fd, c] : conns) close(fd);
}

}  // namespace polar::testing
