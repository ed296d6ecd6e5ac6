#include "tests/support/notify_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "tests/support/process.h"

namespace polar::testing {

NotifySocket::NotifySocket() {
  dir_ = TempDir();
  path_ = dir_ + "/notify.sock";
  fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket(AF_UNIX) failed");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    throw std::runtime_error("bind " + path_ + " failed");
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  thread_ = std::thread([this] { Receive(); });
}

NotifySocket::~NotifySocket() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  thread_.join();
  close(fd_);
  unlink(path_.c_str());
  rmdir(dir_.c_str());
}

void NotifySocket::Receive() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    char data[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec iov{data, sizeof data};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) continue;
    Message m;
    m.at = std::chrono::steady_clock::now();
    m.text.assign(data, static_cast<std::size_t>(n));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred;
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        m.pid = cred.pid;
      }
    }
    {
      std::lock_guard lock(mu_);
      messages_.push_back(std::move(m));
    }
    cv_.notify_all();
  }
}

std::optional<std::size_t> NotifySocket::WaitFor(
    const std::string& prefix, std::size_t from,
    std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (std::size_t i = from; i < messages_.size(); ++i) {
      if (messages_[i].text.rfind(prefix, 0) == 0) return i;
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      for (std::size_t i = from; i < messages_.size(); ++i) {
        if (messages_[i].text.rfind(prefix, 0) == 0) return i;
      }
      return std::nullopt;
    }
  }
}

std::vector<NotifySocket::Message> NotifySocket::Messages() const {
  std::lock_guard lock(mu_);
  return messages_;
}

std::size_t NotifySocket::size() const {
  std::lock_guard lock(mu_);
  return messages_.size();
}

}  // namespace polar::testing
