#include "tests/support/test_http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <stdexcept>
#include <vector>

#include "tests/support/http_head.h"
#include "tests/support/loopback.h"

namespace polar::testing {
namespace {

using Clock = std::chrono::steady_clock;

struct DuePiece {
  Clock::time_point at;
  std::string bytes;
  bool completes_answer = true;  // the last piece of an answer
};

struct ServerConnection {
  std::string in;
  std::string out;
  uint64_t answers_in_out = 0;  // answers whose bytes are in `out`
  std::deque<DuePiece> due;
};

std::string Chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

}  // namespace

TestHttpServer::TestHttpServer(TestHttpServerOptions options)
    : options_(std::move(options)) {
  const LoopbackListener listener =
      ListenOnLoopback("TestHttpServer", 512, true);
  listen_fd_ = listener.fd;
  port_ = listener.port;
  thread_ = std::thread([this] { Run(); });
}

TestHttpServer::~TestHttpServer() {
  stop_ = true;
  thread_.join();
  close(listen_fd_);
}

std::string TestHttpServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void TestHttpServer::Run() {
  std::map<int, ServerConnection> conns;
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    auto next_due = Clock::now() + std::chrono::milliseconds(20);
    for (auto& [fd, c] : conns) {
      short events = POLLIN;
      if (!c.out.empty()) events |= POLLOUT;
      fds.push_back({fd, events, 0});
      if (!c.due.empty()) next_due = std::min(next_due, c.due.front().at);
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
                    next_due - Clock::now())
                    .count();
    poll(fds.data(), fds.size(), static_cast<int>(std::max<long>(0, wait)));

    if (fds[0].revents & POLLIN) {
      for (;;) {
        int fd =
            accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        conns.emplace(fd, ServerConnection{});
      }
    }
    std::vector<int> closed;
    for (std::size_t i = 1; i < fds.size(); ++i) {
      int fd = fds[i].fd;
      ServerConnection& c = conns[fd];
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
          closed.push_back(fd);
          continue;
        }
        c.in.append(buf, static_cast<std::size_t>(n));
      }
      // Every complete request in the buffer.
      for (;;) {
        std::size_t end = c.in.find("\r\n\r\n");
        if (end == std::string::npos) break;
        std::string head = c.in.substr(0, end);
        std::size_t length = 0;
        std::string cl = HeaderValue(head, "content-length");
        if (!cl.empty()) length = std::stoul(cl);
        if (c.in.size() < end + 4 + length) break;
        c.in.erase(0, end + 4 + length);
        ++requests_;
        if (options_.never_answer) continue;
        std::string body = options_.body;
        std::size_t auth = body.find("{AUTH}");
        if (auth != std::string::npos)
          body.replace(auth, 6, HeaderValue(head, "authorization"));
        auto at = Clock::now() + options_.delay;
        if (!options_.stream_chunks.empty()) {
          c.due.push_back({at,
                           "HTTP/1.1 " + std::to_string(options_.status) +
                               " Test\r\nContent-Type: text/event-stream\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n",
                           false});
          for (const std::string& piece : options_.stream_chunks) {
            at += options_.stream_gap;
            c.due.push_back({at, Chunk(piece), false});
          }
          if (options_.stream_end) c.due.push_back({at, "0\r\n\r\n", true});
          continue;
        }
        std::string answer = "HTTP/1.1 " + std::to_string(options_.status) +
                             " Test\r\nContent-Type: " + options_.content_type +
                             "\r\n"
                             "Content-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body;
        c.due.push_back({at, std::move(answer), true});
      }
      while (!c.due.empty() && c.due.front().at <= Clock::now()) {
        c.out += c.due.front().bytes;
        if (c.due.front().completes_answer) ++c.answers_in_out;
        c.due.pop_front();
      }
      if (!c.out.empty()) {
        ssize_t n = write(fd, c.out.data(), c.out.size());
        if (n > 0) c.out.erase(0, static_cast<std::size_t>(n));
        if (c.out.empty()) {
          answers_ += c.answers_in_out;
          c.answers_in_out = 0;
        }
      }
    }
    for (int fd : closed) {
      close(fd);
      conns.erase(fd);
    }
  }
  for (auto& [fd, c] : conns) close(fd);
}

}  // namespace polar::testing
