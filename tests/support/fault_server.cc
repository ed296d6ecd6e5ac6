#include "tests/support/fault_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <map>
#include <stdexcept>
#include <vector>

#include "tests/support/http_head.h"
#include "tests/support/loopback.h"

namespace polar::testing {
namespace {

using Clock = std::chrono::steady_clock;

// An answer waiting for its time (FaultServerOptions::delay).
struct DueAnswer {
  Clock::time_point at;
  std::string bytes;
  uint64_t stream = 0;  // huge body bytes to send after `bytes`
  bool close = false;
  bool reset = false;
};

struct FaultConnection {
  std::string in;
  std::deque<DueAnswer> due;
  std::string out;
  uint64_t stream_left = 0;  // huge body bytes still to send after `out`
  bool close_after = false;  // FIN once `out` is written
  bool reset_after = false;  // RST once `out` is written
  bool done = false;         // no more requests are read on this connection
};

constexpr const char* kBanner = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";

std::string Answer(int status, const char* reason, const char* type,
                   const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: " + type + "\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

void Reset(int fd) {
  linger l{1, 0};  // close() sends RST instead of FIN
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

}  // namespace

FaultServer::FaultServer(FaultMode mode, FaultServerOptions options)
    : options_(std::move(options)), mode_(static_cast<int>(mode)) {
  const LoopbackListener listener = ListenOnLoopback("FaultServer", 512, true);
  listen_fd_ = listener.fd;
  port_ = listener.port;
  thread_ = std::thread([this] { Run(); });
}

FaultServer::~FaultServer() {
  stop_ = true;
  thread_.join();
  close(listen_fd_);
}

std::string FaultServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void FaultServer::Run() {
  // One 64 KiB chunk of a huge JSON-looking body, written again and again.
  const std::string chunk(64 * 1024, ' ');
  std::map<int, FaultConnection> conns;
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    auto wake = Clock::now() + std::chrono::milliseconds(20);
    for (auto& [fd, c] : conns) {
      if (!c.due.empty()) wake = std::min(wake, c.due.front().at);
      short events = c.done ? 0 : POLLIN;
      if (!c.out.empty() || c.stream_left > 0) events |= POLLOUT;
      // A closing connection still watches for the peer's hang-up.
      fds.push_back({fd, static_cast<short>(events | POLLIN), 0});
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
        FaultConnection c;
        if (static_cast<FaultMode>(mode_.load()) == FaultMode::kGarbage) {
          c.due.push_back({Clock::now() + options_.delay, kBanner, 0, true});
          c.done = true;
        }
        conns.emplace(fd, std::move(c));
      }
      if (conns.size() > peak_connections_) peak_connections_ = conns.size();
    }
    std::vector<int> closed;
    for (std::size_t i = 1; i < fds.size(); ++i) {
      const int fd = fds[i].fd;
      FaultConnection& c = conns[fd];
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
          closed.push_back(fd);
          continue;
        }
        if (!c.done) c.in.append(buf, static_cast<std::size_t>(n));
      }
      // Every complete request in the buffer, answered in the mode in force.
      while (!c.done) {
        std::size_t end = c.in.find("\r\n\r\n");
        if (end == std::string::npos) break;
        std::string head = c.in.substr(0, end);
        std::size_t length = 0;
        std::string cl = HeaderValue(head, "content-length");
        if (!cl.empty()) length = std::stoul(cl);
        if (c.in.size() < end + 4 + length) break;
        c.in.erase(0, end + 4 + length);
        const auto mode = static_cast<FaultMode>(mode_.load());
        ++requests_[static_cast<std::size_t>(mode)];
        DueAnswer d;
        d.at = Clock::now() + options_.delay;
        std::string& out = d.bytes;
        switch (mode) {
          case FaultMode::kOk:
            out += Answer(200, "OK", "application/json", options_.ok_body);
            break;
          case FaultMode::kNeverAnswer:
            break;
          case FaultMode::kResetMidBody:
            out +=
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                "Content-Length: 4096\r\n\r\n" +
                std::string("{\"inserted\":1,\"duplicates\":0,\"pad\":\"") +
                std::string(64, 'x');
            d.reset = c.done = true;
            break;
          case FaultMode::kTruncatedBody:
            out +=
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                "Content-Length: 64\r\n\r\n{\"inserted\":1,\"dupli";
            d.close = c.done = true;
            break;
          case FaultMode::kHugeBody:
            out +=
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                "Content-Length: " +
                std::to_string(options_.huge_body_bytes) + "\r\n\r\n";
            d.stream = options_.huge_body_bytes;
            c.done = true;  // keep-alive would need the whole body sent
            break;
          case FaultMode::kHtml:
            out += Answer(200, "OK", "text/html; charset=utf-8",
                          "<!DOCTYPE html><html><head><title>Maintenance"
                          "</title></head><body><h1>We'll be right back"
                          "</h1></body></html>");
            break;
          case FaultMode::kMalformedJson:
            out += Answer(200, "OK", "application/json",
                          R"({"inserted": one, "duplicates": 0)");
            break;
          case FaultMode::kRateLimited:
            out += Answer(429, "Too Many Requests", "application/json", "",
                          "Retry-After: " + options_.retry_after + "\r\n");
            break;
          case FaultMode::kGarbage:
            out += kBanner;
            d.close = c.done = true;
            break;
          case FaultMode::kEchoAuth401:
            out +=
                Answer(401, "Unauthorized", "application/json",
                       R"({"detail":"bad credentials: )" +
                           HeaderValue(head, "authorization") + "\"}",
                       "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
            break;
        }
        if (mode != FaultMode::kNeverAnswer) c.due.push_back(std::move(d));
      }
      while (!c.due.empty() && c.due.front().at <= Clock::now() &&
             c.out.empty() && c.stream_left == 0) {
        DueAnswer& d = c.due.front();
        c.out = std::move(d.bytes);
        c.stream_left = d.stream;
        c.close_after = c.close_after || d.close;
        c.reset_after = c.reset_after || d.reset;
        c.due.pop_front();
      }
      // Write what is due; huge bodies are refilled a chunk at a time.
      for (;;) {
        if (c.out.empty() && c.stream_left > 0) {
          std::size_t n = std::min<uint64_t>(c.stream_left, chunk.size());
          c.out.assign(chunk, 0, n);
          c.stream_left -= n;
          huge_bytes_sent_ += n;
        }
        if (c.out.empty()) break;
        ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n <= 0) break;  // EAGAIN (poll again) or the peer hung up
        c.out.erase(0, static_cast<std::size_t>(n));
      }
      if (c.out.empty() && c.stream_left == 0 && c.due.empty() &&
          (c.close_after || c.reset_after)) {
        if (c.reset_after) Reset(fd);
        closed.push_back(fd);
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
