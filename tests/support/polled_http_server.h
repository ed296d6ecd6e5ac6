// PolledHttpServer: the loopback HTTP/1.1 server core under the tests' own
// targets (TestHttpServer, FaultServer): accepts on 127.0.0.1 (port 0), reads
// requests (head up to CRLF CRLF, then Content-Length bytes) on non-blocking
// sockets from one background thread with poll(), so a client that stops
// reading never blocks it, and writes the answers its owner's handler queues:
// each at its own time, optionally followed by a long filler body sent a
// 64 KiB chunk at a time, then a FIN or a TCP reset if asked. Keep-alive
// unless an answer closes. Stops and joins in the destructor.
//
// Owned by one test server; the handler runs on the server's thread; the
// counters may be read from any thread. ScriptedHttpServer shares the request
// framing (CompleteRequestLength) but keeps a thread per connection, as its
// scripts block inside their callback.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace polar::testing {

// The length of the first complete request in `buffer` (head, blank line and
// Content-Length bytes of body), or nullopt while it is incomplete.
std::optional<std::size_t> CompleteRequestLength(const std::string& buffer);

// Bytes to write on a connection once `at` has come.
struct DueBytes {
  std::chrono::steady_clock::time_point at;
  std::string bytes;
  uint64_t filler = 0;    // body bytes (spaces) to send after `bytes`
  bool close = false;     // FIN once written
  bool reset = false;     // TCP reset once written
  bool completes = true;  // the last piece of an answer (see answers())
};

class PolledHttpServer {
 public:
  struct Connection {
    std::deque<DueBytes> due;  // in order; the handler appends
    bool done = false;         // read no more requests on it
  };
  struct Handlers {
    // A new connection (may queue bytes, e.g. a banner); optional.
    std::function<void(Connection&)> on_accept = nullptr;
    // One complete request; `head` ends before its blank line.
    std::function<void(Connection&, const std::string& head)> on_request =
        nullptr;
  };

  PolledHttpServer(const char* name, Handlers handlers);
  ~PolledHttpServer();
  PolledHttpServer(const PolledHttpServer&) = delete;
  PolledHttpServer& operator=(const PolledHttpServer&) = delete;

  std::string base_url() const;
  // Complete requests read, and answers completely written.
  uint64_t requests() const { return requests_; }
  uint64_t answers() const { return answers_; }
  // Filler bytes handed to the sockets (what the clients took before hanging
  // up, plus at most one 64 KiB chunk each).
  uint64_t filler_sent() const { return filler_sent_; }
  // Connections open now, and the most open at once since the start or the
  // last reset.
  std::size_t connections() const { return connections_; }
  std::size_t peak_connections() const { return peak_connections_; }
  void ResetPeakConnections() { peak_connections_ = connections_.load(); }

 private:
  void Run();

  Handlers handlers_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> answers_{0};
  std::atomic<uint64_t> filler_sent_{0};
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::size_t> peak_connections_{0};
  std::thread thread_;
};

}  // namespace polar::testing
