// Loopback listening sockets for the tests' own servers (PolledHttpServer
// under TestHttpServer and FaultServer, ScriptedHttpServer): bound to 127.0.0.1
// on a port the kernel picks, so tests never collide and never listen beyond
// the machine.
//
// Any thread; the caller owns and closes the descriptor.
#pragma once

#include <cstdint>
#include <string>

namespace polar::testing {

struct LoopbackListener {
  int fd = -1;
  uint16_t port = 0;
  std::string base_url() const;  // "http://127.0.0.1:PORT"
};

// A listening TCP socket on 127.0.0.1, port 0. Throws std::runtime_error
// naming `who` if the kernel refuses.
LoopbackListener ListenOnLoopback(const char* who, int backlog,
                                  bool nonblocking);

}  // namespace polar::testing
