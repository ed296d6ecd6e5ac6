#include "daemon/service/lifecycle.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <string>

namespace polar {
namespace {

// One line, no newlines: a newline would start a new notification field.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

uint64_t MonotonicMicros() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 +
         static_cast<uint64_t>(ts.tv_nsec) / 1'000;
}

// Margin on top of the drain for the last log lines and exit.
constexpr Duration kStopMargin = std::chrono::seconds(5);

}  // namespace

SystemdNotifier::SystemdNotifier() {
  uint64_t usec = 0;
  // > 0 only when $WATCHDOG_USEC is set and $WATCHDOG_PID (if set) is us.
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_ = std::chrono::microseconds(usec);
  }
}

void SystemdNotifier::Send(const std::string& message) {
  // Errors are ignored on purpose: without a service manager listening there
  // is nobody to tell, and the daemon must keep running.
  sd_notify(0, message.c_str());
}

Lifecycle::Lifecycle(Timers& timers, Notifier& notifier) : notifier_(notifier) {
  Duration timeout = notifier_.WatchdogTimeout();
  if (timeout > Duration::zero()) {
    // Half the timeout, as sd_watchdog_enabled(3) advises: one late ping is
    // not yet a restart.
    interval_ = timeout / 2;
    pings_ = timers.Every(interval_, [this] { notifier_.Send("WATCHDOG=1"); });
  }
}

void Lifecycle::Ready(const std::string& status) {
  last_status_ = OneLine(status);
  notifier_.Send("READY=1\nSTATUS=" + last_status_);
}

void Lifecycle::Reloading() {
  notifier_.Send("RELOADING=1\nMONOTONIC_USEC=" +
                 std::to_string(MonotonicMicros()));
}

void Lifecycle::Reloaded(const std::string& status) {
  last_status_ = OneLine(status);
  notifier_.Send("READY=1\nSTATUS=" + last_status_);
}

void Lifecycle::Status(const std::string& status) {
  std::string line = OneLine(status);
  if (line == last_status_) return;
  last_status_ = std::move(line);
  notifier_.Send("STATUS=" + last_status_);
}

void Lifecycle::Stopping(Duration drain, const std::string& status) {
  last_status_ = OneLine(status);
  auto extend =
      std::chrono::duration_cast<std::chrono::microseconds>(drain + kStopMargin)
          .count();
  notifier_.Send("STOPPING=1\nEXTEND_TIMEOUT_USEC=" + std::to_string(extend) +
                 "\nSTATUS=" + last_status_);
}

}  // namespace polar
