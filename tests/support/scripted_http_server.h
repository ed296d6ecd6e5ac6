// Test support: a loopback HTTP/1.1 server whose answers the test scripts byte
// by byte, to drive an HTTP client through keep-alive, chunking, closes,
// garbage and silence. One thread per connection (a script may block inside
// its callback; the request framing is PolledHttpServer's
// CompleteRequestLength); for tests only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace polar::testing {

class ScriptedHttpServer {
 public:
  // What to do with one request: the raw bytes to write back (may be empty,
  // partial or garbage), and whether to close the connection afterwards.
  struct Reply {
    std::string bytes;
    bool close = false;
    bool silent = false;  // write nothing and keep the connection open
  };
  // `request` is the whole request (head and body); `index` counts requests
  // across all connections from 0.
  using Script = std::function<Reply(const std::string& request, int index)>;

  explicit ScriptedHttpServer(Script script);
  ~ScriptedHttpServer();

  int port() const { return port_; }
  std::string base_url() const;
  int connections_accepted() const { return accepted_.load(); }
  std::vector<std::string> requests() const;

  // When the server wrote its reply to request `index`: its own steady clock
  // (the clock SystemClock::Now() reads) just before the first send() and
  // just after the last.
  struct Written {
    std::chrono::steady_clock::time_point before;
    std::chrono::steady_clock::time_point after;
  };
  // Waits up to `timeout` until the reply to request `index` is written;
  // nullopt if it is not by then (or the connection ended first).
  std::optional<Written> WaitWritten(int index,
                                     std::chrono::milliseconds timeout) const;

  // "HTTP/1.1 200 OK" + Content-Length answer with `body`.
  static std::string Ok(const std::string& body, int status = 200,
                        const std::string& extra_headers = "");

 private:
  void AcceptLoop();
  void Serve(int fd);

  Script script_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> next_index_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
  std::map<int, Written> written_;
  mutable std::condition_variable written_cv_;
  std::vector<int> client_fds_;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

}  // namespace polar::testing
