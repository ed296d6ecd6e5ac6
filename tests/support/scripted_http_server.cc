#include "tests/support/scripted_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

#include "tests/support/loopback.h"
#include "tests/support/polled_http_server.h"

namespace polar::testing {

ScriptedHttpServer::ScriptedHttpServer(Script script)
    : script_(std::move(script)) {
  const LoopbackListener listener =
      ListenOnLoopback("ScriptedHttpServer", 128, false);
  listen_fd_ = listener.fd;
  port_ = listener.port;
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

ScriptedHttpServer::~ScriptedHttpServer() {
  stop_ = true;
  acceptor_.join();
  {
    std::lock_guard lock(mutex_);
    for (int fd : client_fds_) shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : workers_) t.join();
  for (int fd : client_fds_) close(fd);
  close(listen_fd_);
}

std::string ScriptedHttpServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

std::vector<std::string> ScriptedHttpServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::optional<ScriptedHttpServer::Written> ScriptedHttpServer::WaitWritten(
    int index, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  if (!written_cv_.wait_for(lock, timeout,
                            [&] { return written_.count(index) > 0; })) {
    return std::nullopt;
  }
  return written_.at(index);
}

std::string ScriptedHttpServer::Ok(const std::string& body, int status,
                                   const std::string& extra_headers) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

void ScriptedHttpServer::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++accepted_;
    std::lock_guard lock(mutex_);
    client_fds_.push_back(fd);
    workers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void ScriptedHttpServer::Serve(int fd) {
  std::string buffer;
  char chunk[16384];
  while (!stop_) {
    // Read one request: head up to \r\n\r\n, then Content-Length bytes.
    std::optional<std::size_t> total;
    while (!(total = CompleteRequestLength(buffer))) {
      ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return;
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    std::string request = buffer.substr(0, *total);
    buffer.erase(0, *total);
    int index = next_index_++;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    Reply reply = script_(request, index);
    if (reply.silent) {
      // Hold the connection open and say nothing until the test ends.
      while (!stop_) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 20) > 0) {
          ssize_t n = recv(fd, chunk, sizeof chunk, 0);
          if (n <= 0) return;
        }
      }
      return;
    }
    const auto before = std::chrono::steady_clock::now();
    std::size_t off = 0;
    while (off < reply.bytes.size()) {
      ssize_t n = send(fd, reply.bytes.data() + off, reply.bytes.size() - off,
                       MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
    {
      std::lock_guard lock(mutex_);
      written_[index] = Written{before, std::chrono::steady_clock::now()};
    }
    written_cv_.notify_all();
    if (reply.close) {
      shutdown(fd, SHUT_WR);
      // Let the client see the close before the socket goes away.
      while (recv(fd, chunk, sizeof chunk, 0) > 0) {
      }
      return;
    }
  }
}

}  // namespace polar::testing
