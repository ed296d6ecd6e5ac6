#include "tests/support/loopback.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace polar::testing {

std::string LoopbackListener::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port);
}

LoopbackListener ListenOnLoopback(const char* who, int backlog,
                                  bool nonblocking) {
  LoopbackListener l;
  l.fd =
      socket(AF_INET,
             SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (l.fd < 0) throw std::runtime_error(std::string(who) + ": socket failed");
  int one = 1;
  setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(l.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
      listen(l.fd, backlog) < 0 ||
      getsockname(l.fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    close(l.fd);
    throw std::runtime_error(std::string(who) + ": bind/listen failed");
  }
  l.port = ntohs(addr.sin_port);
  return l;
}

}  // namespace polar::testing
