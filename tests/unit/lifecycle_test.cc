// Lifecycle: what polar-loadd tells systemd, driven by a real event loop and a
// recording Notifier (the process-level tests use a real NOTIFY_SOCKET).
#include "daemon/service/lifecycle.h"

#include <gtest/gtest.h>
#include <time.h>

#include <string>
#include <vector>

namespace polar {
namespace {

using namespace std::chrono_literals;

class RecordingNotifier final : public Notifier {
 public:
  explicit RecordingNotifier(Duration watchdog) : watchdog_(watchdog) {}
  void Send(const std::string& message) override {
    sent.push_back({std::chrono::steady_clock::now(), message});
  }
  Duration WatchdogTimeout() const override { return watchdog_; }
  std::vector<std::pair<MonoTime, std::string>> sent;

 private:
  Duration watchdog_;
};

uint64_t MonotonicMicros() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 +
         static_cast<uint64_t>(ts.tv_nsec) / 1'000;
}

TEST(Lifecycle, TheWatchdogIsPingedFromTheLoopAtHalfItsTimeout) {
  EventLoop loop;
  RecordingNotifier notifier(100ms);
  Lifecycle lifecycle(loop, notifier);
  EXPECT_EQ(lifecycle.ping_interval(), 50ms);
  auto start = std::chrono::steady_clock::now();
  loop.AddTimerAfter(530ms, [&] { loop.Stop(); });
  loop.Run();
  std::vector<MonoTime> pings;
  for (const auto& [when, message] : notifier.sent) {
    EXPECT_EQ(message, "WATCHDOG=1");
    pings.push_back(when);
  }
  // 530 ms / 50 ms = 10 pings; allow one either way for scheduling noise.
  EXPECT_GE(pings.size(), 9u);
  EXPECT_LE(pings.size(), 11u);
  ASSERT_FALSE(pings.empty());
  EXPECT_GE(pings.front() - start, 45ms) << "the first ping waits half";
}

TEST(Lifecycle, NoPingsWhenTheWatchdogIsOff) {
  EventLoop loop;
  RecordingNotifier notifier(Duration::zero());
  Lifecycle lifecycle(loop, notifier);
  EXPECT_EQ(lifecycle.ping_interval(), Duration::zero());
  loop.AddTimerAfter(50ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_TRUE(notifier.sent.empty());
}

TEST(Lifecycle, ABlockedLoopStopsThePings) {
  EventLoop loop;
  RecordingNotifier notifier(40ms);
  Lifecycle lifecycle(loop, notifier);
  // A callback that hangs the loop for 300 ms: no ping may go out meanwhile.
  MonoTime blocked_from{};
  MonoTime blocked_to{};
  loop.AddTimerAfter(100ms, [&] {
    blocked_from = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - blocked_from < 300ms) {
    }
    blocked_to = std::chrono::steady_clock::now();
  });
  loop.AddTimerAfter(600ms, [&] { loop.Stop(); });
  loop.Run();
  int during = 0;
  int after = 0;
  for (const auto& [when, message] : notifier.sent) {
    if (when > blocked_from && when < blocked_to) ++during;
    if (when >= blocked_to) ++after;
  }
  EXPECT_EQ(during, 0);
  EXPECT_GE(after, 3) << "pings resume once the loop runs again";
}

TEST(Lifecycle, MessagesFollowTheProtocol) {
  EventLoop loop;
  RecordingNotifier notifier(Duration::zero());
  Lifecycle lifecycle(loop, notifier);
  lifecycle.Ready("2 scenarios\nrunning");
  uint64_t before = MonotonicMicros();
  lifecycle.Reloading();
  uint64_t after = MonotonicMicros();
  lifecycle.Reloaded("reloaded");
  lifecycle.Status("reloaded");  // unchanged: not sent again
  lifecycle.Status("busy");
  lifecycle.Stopping(10s, "stopping");
  ASSERT_EQ(notifier.sent.size(), 5u);
  EXPECT_EQ(notifier.sent[0].second, "READY=1\nSTATUS=2 scenarios running");
  const std::string& reloading = notifier.sent[1].second;
  ASSERT_EQ(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u);
  uint64_t usec = std::stoull(reloading.substr(reloading.find('=', 12) + 1));
  EXPECT_GE(usec, before);
  EXPECT_LE(usec, after);
  EXPECT_EQ(notifier.sent[2].second, "READY=1\nSTATUS=reloaded");
  EXPECT_EQ(notifier.sent[3].second, "STATUS=busy");
  // The drain plus 5 s, so TimeoutStopSec= never cuts a configured drain.
  EXPECT_EQ(notifier.sent[4].second,
            "STOPPING=1\nEXTEND_TIMEOUT_USEC=15000000\nSTATUS=stopping");
}

}  // namespace
}  // namespace polar
