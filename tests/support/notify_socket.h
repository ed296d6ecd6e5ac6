// NotifySocket: a stand-in for systemd's notification socket, for tests.
// Binds a unix datagram socket in a temporary directory (pass path() as
// $NOTIFY_SOCKET) and records every message with its arrival time and the
// sender's pid (SO_PASSCRED), on a background thread so the times stay exact
// while the test thread scrapes or sleeps. Any thread may call the accessors.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace polar::testing {

class NotifySocket {
 public:
  struct Message {
    std::chrono::steady_clock::time_point at;
    std::string text;  // e.g. "READY=1\nSTATUS=..."
    pid_t pid = 0;     // the sender, from the kernel's credentials
  };

  NotifySocket();
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }

  // Waits for the first message received at index >= `from` whose text starts
  // with `prefix`; returns its index, or nullopt on timeout.
  std::optional<std::size_t> WaitFor(const std::string& prefix,
                                     std::size_t from,
                                     std::chrono::milliseconds timeout);
  std::vector<Message> Messages() const;
  std::size_t size() const;

 private:
  void Receive();

  std::string dir_;
  std::string path_;
  int fd_ = -1;
  bool stop_ = false;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Message> messages_;
  std::thread thread_;
};

}  // namespace polar::testing
