// Lifecycle: polar-loadd's conversation with systemd (sd_notify): readiness,
// a status line, watchdog pings, reloading and stopping.
//
// Owned by App; loop thread only. Notifier is the seam: SystemdNotifier calls
// libsystemd (a no-op when $NOTIFY_SOCKET is unset, so running from a terminal
// costs nothing), tests pass a recorder. The watchdog is pinged from a timer
// on the Timers it is given (the event loop; FakeTimers in tests) every half
// of $WATCHDOG_USEC, never from another thread, so a loop that hangs stops
// pinging and systemd restarts the service (WatchdogSec= in the unit).
// sd_notify writes one datagram to a local socket; it does not wait on the
// network.
#pragma once

#include <memory>
#include <string>

#include "exporters/clock.h"
#include "scenarios/timers.h"

namespace polar {

class Notifier {
 public:
  virtual ~Notifier() = default;
  // Sends one notification, e.g. "READY=1\nSTATUS=running".
  virtual void Send(const std::string& message) = 0;
  // How often systemd wants a WATCHDOG=1, or zero when the watchdog is off.
  virtual Duration WatchdogTimeout() const = 0;
};

// sd_notify(3) and sd_watchdog_enabled(3) from libsystemd.
class SystemdNotifier final : public Notifier {
 public:
  SystemdNotifier();
  void Send(const std::string& message) override;
  Duration WatchdogTimeout() const override { return watchdog_; }

 private:
  Duration watchdog_{0};
};

class Lifecycle {
 public:
  // Starts the watchdog pings right away (the first after half the timeout):
  // systemd counts from the moment it started the process, and a slow start
  // must not be mistaken for a hang.
  Lifecycle(Timers& timers, Notifier& notifier);
  Lifecycle(const Lifecycle&) = delete;
  Lifecycle& operator=(const Lifecycle&) = delete;

  // READY=1: the config is valid, listeners are bound and the loop runs.
  void Ready(const std::string& status);
  // RELOADING=1 with MONOTONIC_USEC (systemd 253+ wants it to match the
  // reload to its request; 252 ignores it).
  void Reloading();
  // READY=1 after a reload, whether it succeeded or kept the old config.
  void Reloaded(const std::string& status);
  // STATUS=: the one-line summary `systemctl status` shows.
  void Status(const std::string& status);
  // STOPPING=1, and EXTEND_TIMEOUT_USEC so a configured drain longer than the
  // unit's TimeoutStopSec= is not cut short by SIGKILL.
  void Stopping(Duration drain, const std::string& status);

  // Zero when the watchdog is off.
  Duration ping_interval() const { return interval_; }

 private:
  Notifier& notifier_;
  Duration interval_{0};
  Timer pings_;
  std::string last_status_;
};

}  // namespace polar
