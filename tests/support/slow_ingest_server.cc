#include "tests/support/slow_ingest_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace polar::testing {
namespace {

// Requests from polar-loadd are a few KiB; anything far larger is a bug.
constexpr std::size_t kMaxRequestBytes = 1 << 20;

bool SendAll(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

std::string Response(int status, const std::string& body) {
  const char* reason = status == 200 ? "OK" : "Not Found";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

SlowIngestServer::SlowIngestServer(std::chrono::milliseconds delay)
    : delay_(delay) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 128) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(listen_fd_);
    throw std::runtime_error("bind/listen on 127.0.0.1:0 failed");
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

SlowIngestServer::~SlowIngestServer() {
  stopping_ = true;
  stop_cv_.notify_all();
  acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Wakes threads blocked in recv; each closes its own fd.
    for (int fd : conn_fds_) shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
  close(listen_fd_);
}

std::string SlowIngestServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void SlowIngestServer::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    // 50 ms: how long the destructor may wait for this loop to notice.
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || static_cast<int>(conn_fds_.size()) >= kMaxConnections) {
      close(fd);
      continue;
    }
    conn_fds_.push_back(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

bool SlowIngestServer::Delay() {
  std::unique_lock<std::mutex> lock(mu_);
  return !stop_cv_.wait_for(lock, delay_, [this] { return stopping_.load(); });
}

void SlowIngestServer::Serve(int fd) {
  std::string buf;
  while (!stopping_ && ServeOne(fd, buf)) {
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::erase(conn_fds_, fd);
  close(fd);
}

bool SlowIngestServer::ServeOne(int fd, std::string& buf) {
  char chunk[16384];
  // One request: headers, then Content-Length bytes of body.
  std::size_t header_end;
  while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0 || buf.size() > kMaxRequestBytes) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  std::string head = buf.substr(0, header_end);
  std::size_t length = 0;
  for (std::size_t pos = 0; pos < head.size();) {
    std::size_t eol = head.find("\r\n", pos);
    if (eol == std::string::npos) eol = head.size();
    std::string line = head.substr(pos, eol - pos);
    if (strncasecmp(line.c_str(), "content-length:", 15) == 0)
      length = std::strtoul(line.c_str() + 15, nullptr, 10);
    pos = eol + 2;
  }
  std::size_t total = header_end + 4 + length;
  if (total > kMaxRequestBytes) return false;
  while (buf.size() < total) {
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  std::string body = buf.substr(header_end + 4, length);
  buf.erase(0, total);

  if (head.rfind("POST /v1/events/ingest ", 0) != 0)
    return SendAll(fd, Response(404, "{\"detail\":\"Not Found\"}"));
  auto json = nlohmann::json::parse(body, nullptr, false);
  std::size_t events = 0;
  if (json.is_object() && json.contains("events") && json["events"].is_array())
    events = json["events"].size();
  if (!Delay()) return false;
  if (!SendAll(fd, Response(200, "{\"inserted\":" + std::to_string(events) +
                                     ",\"duplicates\":0}")))
    return false;
  ++answered_;
  return true;
}

}  // namespace polar::testing
