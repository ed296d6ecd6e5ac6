// SlowIngestServer: a deliberately slow stand-in for Polar's event ingestion
// endpoint, for tests that need a target slower than an SLO (the observability
// end-to-end test makes an alert go pending with it). Answers every
// `POST /v1/events/ingest` after a fixed delay with a valid body
// (`{"inserted":N,"duplicates":0}`, N = the batch's event count) on HTTP/1.1
// keep-alive connections; anything else gets 404.
//
// For tests only: a thread per connection (at most kMaxConnections, more are
// closed at once), blocking sockets on 127.0.0.1, port 0. The destructor stops
// every thread, abandoning requests still waiting for their delay. Methods may
// be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace polar::testing {

class SlowIngestServer {
 public:
  static constexpr int kMaxConnections = 64;

  explicit SlowIngestServer(std::chrono::milliseconds delay);
  ~SlowIngestServer();
  SlowIngestServer(const SlowIngestServer&) = delete;
  SlowIngestServer& operator=(const SlowIngestServer&) = delete;

  std::string base_url() const;
  // Requests answered so far (after their delay).
  int64_t answered() const { return answered_.load(); }

 private:
  void AcceptLoop();
  void Serve(int fd);
  // Reads one request from `fd` (leftover bytes in `buf`) and answers it;
  // false when the connection should close.
  bool ServeOne(int fd, std::string& buf);
  // Sleeps for the delay; false if the server is stopping.
  bool Delay();

  std::chrono::milliseconds delay_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> answered_{0};
  std::mutex mu_;
  std::condition_variable stop_cv_;
  std::vector<int> conn_fds_;         // guarded by mu_
  std::vector<std::thread> threads_;  // guarded by mu_
  std::thread acceptor_;
};

}  // namespace polar::testing
