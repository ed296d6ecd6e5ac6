// Lifecycle: what polar-loadd tells systemd, on FakeTimers and a recording
// Notifier (the process-level tests use a real NOTIFY_SOCKET and a real
// hung loop).
#include "daemon/service/lifecycle.h"

#include <gtest/gtest.h>
#include <time.h>

#include <string>
#include <vector>

namespace polar {
namespace {

using namespace std::chrono_literals;

// Records each message with the fake clock's time.
class RecordingNotifier final : public Notifier {
 public:
  RecordingNotifier(const Clock& clock, Duration watchdog)
      : clock_(clock), watchdog_(watchdog) {}
  void Send(const std::string& message) override {
    sent.push_back({clock_.Now(), message});
  }
  Duration WatchdogTimeout() const override { return watchdog_; }
  std::vector<std::pair<MonoTime, std::string>> sent;

 private:
  const Clock& clock_;
  Duration watchdog_;
};

uint64_t MonotonicMicros() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 +
         static_cast<uint64_t>(ts.tv_nsec) / 1'000;
}

TEST(Lifecycle, TheWatchdogIsPingedAtHalfItsTimeout) {
  FakeClock clock;
  FakeTimers timers(clock);
  const MonoTime start = clock.Now();
  RecordingNotifier notifier(clock, 100ms);
  Lifecycle lifecycle(timers, notifier);
  EXPECT_EQ(lifecycle.ping_interval(), 50ms);
  timers.AdvanceBy(530ms);
  // Every 50 ms from 50 ms on (the first waits half: a slow start is not a
  // hang): 50, 100, ..., 500.
  ASSERT_EQ(notifier.sent.size(), 10u);
  for (std::size_t i = 0; i < notifier.sent.size(); ++i) {
    EXPECT_EQ(notifier.sent[i].second, "WATCHDOG=1");
    EXPECT_EQ(notifier.sent[i].first - start, 50ms * (i + 1));
  }
}

TEST(Lifecycle, NoPingsWhenTheWatchdogIsOff) {
  FakeClock clock;
  FakeTimers timers(clock);
  RecordingNotifier notifier(clock, Duration::zero());
  Lifecycle lifecycle(timers, notifier);
  EXPECT_EQ(lifecycle.ping_interval(), Duration::zero());
  EXPECT_EQ(timers.pending(), 0u);
  timers.AdvanceBy(1h);
  EXPECT_TRUE(notifier.sent.empty());
}

TEST(Lifecycle, PingsComeOnlyFromTheLoopSoABlockedLoopStopsThem) {
  FakeClock clock;
  FakeTimers timers(clock);
  const MonoTime start = clock.Now();
  RecordingNotifier notifier(clock, 40ms);  // a ping every 20 ms
  Lifecycle lifecycle(timers, notifier);
  timers.AdvanceBy(100ms);
  ASSERT_EQ(notifier.sent.size(), 5u);
  // The loop hangs for 300 ms: time passes, no timer is dispatched, so no
  // ping goes out and systemd would restart the service.
  clock.Advance(300ms);
  EXPECT_EQ(notifier.sent.size(), 5u);
  // The loop runs again: one ping at once (not the 15 it missed), then every
  // 20 ms again.
  timers.AdvanceBy(60ms);
  ASSERT_EQ(notifier.sent.size(), 9u);
  EXPECT_EQ(notifier.sent[5].first - start, 400ms);
  EXPECT_EQ(notifier.sent[6].first - start, 420ms);
  EXPECT_EQ(notifier.sent[8].first - start, 460ms);
}

TEST(Lifecycle, MessagesFollowTheProtocol) {
  FakeClock clock;
  FakeTimers timers(clock);
  RecordingNotifier notifier(clock, Duration::zero());
  Lifecycle lifecycle(timers, notifier);
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
