#include "daemon/net/event_loop.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

namespace polar {
namespace {

using namespace std::chrono_literals;

// Every behaviour holds with both timer sources: epoll_pwait2's timeout (the
// default) and the timerfd kept for kernels before 5.11.
class EventLoopTimers
    : public ::testing::TestWithParam<EventLoop::TimerSource> {};

TEST_P(EventLoopTimers, TimersFireInDeadlineOrderNotInsertionOrder) {
  EventLoop loop(GetParam());
  std::vector<int> order;
  auto now = std::chrono::steady_clock::now();
  loop.AddTimer(now + 30ms, [&] { order.push_back(3); });
  loop.AddTimer(now + 10ms, [&] { order.push_back(1); });
  loop.AddTimer(now + 20ms, [&] { order.push_back(2); });
  loop.AddTimer(now + 40ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_P(EventLoopTimers, ACancelledTimerNeverRuns) {
  EventLoop loop(GetParam());
  bool ran = false;
  auto id = loop.AddTimerAfter(5ms, [&] { ran = true; });
  loop.Cancel(id);
  loop.AddTimerAfter(20ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_FALSE(ran);
}

TEST_P(EventLoopTimers, ATimerCancelledEarlierInTheSameDispatchNeverRuns) {
  EventLoop loop(GetParam());
  // Both are due when the loop first looks; the first cancels the second
  // (as a rate override ending re-arms a runner's arrival timer).
  const MonoTime past = loop.Now() - 1ms;
  bool ran = false;
  EventLoop::TimerId second = 0;
  loop.At(past, [&] { loop.Cancel(second); });
  second = loop.At(past, [&] { ran = true; });
  Timer stop = loop.After(10ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_FALSE(ran);
}

TEST_P(EventLoopTimers, TheLoopsTimerHandlesFireAndRepeatOnIt) {
  EventLoop loop(GetParam());
  int ticks = 0;
  bool once = false;
  bool gave_up = false;
  Timer after = loop.After(1ms, [&] { once = true; });
  EXPECT_TRUE(after.pending());
  // Their exact spacing is timers_test's (FakeTimers); here: they repeat on
  // the real loop until cancelled.
  Timer every = loop.Every(5ms, [&] {
    if (++ticks == 3) loop.Stop();
  });
  Timer bound = loop.After(10s, [&] {
    gave_up = true;
    loop.Stop();
  });
  loop.Run();
  EXPECT_FALSE(gave_up);
  EXPECT_EQ(ticks, 3);
  EXPECT_TRUE(once);
  EXPECT_FALSE(after.pending());
  EXPECT_TRUE(every.pending());
  every.Cancel();
  EXPECT_FALSE(every.pending());
}

TEST_P(EventLoopTimers, TimerLagIsReportedToTheObserver) {
  EventLoop loop(GetParam());
  std::vector<Duration> lags;
  loop.SetLagObserver([&](Duration d) { lags.push_back(d); });
  // The first timer blocks the loop for 30 ms, so the second (due 1 ms later)
  // fires late.
  auto now = std::chrono::steady_clock::now();
  loop.AddTimer(now + 1ms, [] { usleep(30'000); });
  loop.AddTimer(now + 2ms, [&] { loop.Stop(); });
  loop.Run();
  ASSERT_EQ(lags.size(), 2u);
  EXPECT_GE(lags[1], 25ms);
}

TEST_P(EventLoopTimers, WatchedDescriptorsDeliverReadiness) {
  EventLoop loop(GetParam());
  int fd = eventfd(0, EFD_NONBLOCK);
  uint64_t seen = 0;
  loop.Watch(fd, EPOLLIN, [&](uint32_t) {
    [[maybe_unused]] auto n = read(fd, &seen, sizeof seen);
    loop.Unwatch(fd);
    loop.Stop();
  });
  uint64_t seven = 7;
  [[maybe_unused]] auto n = write(fd, &seven, sizeof seven);
  loop.Run();
  EXPECT_EQ(seen, 7u);
  close(fd);
}

TEST_P(EventLoopTimers, SignalsArriveAsCallbacksOnTheLoop) {
  EventLoop loop(GetParam());
  bool got = false;
  loop.OnSignal(SIGUSR1, [&] {
    got = true;
    loop.Stop();
  });
  loop.Post([] { raise(SIGUSR1); });
  loop.AddTimerAfter(
      2s, [&] { loop.Stop(); });  // bound the test if the signal is lost
  loop.Run();
  EXPECT_TRUE(got);
}

TEST_P(EventLoopTimers, PostedWorkRunsAfterTheCurrentCallback) {
  EventLoop loop(GetParam());
  std::vector<int> order;
  loop.AddTimerAfter(1ms, [&] {
    loop.Post([&] {
      order.push_back(2);
      loop.Stop();
    });
    order.push_back(1);
  });
  loop.Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST_P(EventLoopTimers, PostedWorkNeedsNoWakeUpOfItsOwn) {
  // Post() from the loop thread is a vector push: the loop runs the work
  // before it sleeps again, without the eventfd round trip.
  EventLoop loop(GetParam());
  int ran = 0;
  loop.Post([&] { ++ran; });  // before Run(): its first wait must not block
  loop.AddTimerAfter(1ms, [&] {
    for (int i = 0; i < 3; ++i) loop.Post([&] { ++ran; });
  });
  loop.AddTimerAfter(20ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_EQ(ran, 4);
}

INSTANTIATE_TEST_SUITE_P(
    Sources, EventLoopTimers,
    ::testing::Values(EventLoop::TimerSource::kEpollTimeout,
                      EventLoop::TimerSource::kTimerFd),
    [](const auto& info) {
      return info.param == EventLoop::TimerSource::kTimerFd ? "TimerFd"
                                                            : "EpollTimeout";
    });

// ---- Wake::kBatched ---------------------------------------------------

// A socket pair whose read end the loop watches; the test writes the other.
struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds); }
  ~Pipe() {
    close(fds[0]);
    close(fds[1]);
  }
  void Write() { [[maybe_unused]] auto n = write(fds[1], "x", 1); }
  void Drain() {
    char b[16];
    while (read(fds[0], b, sizeof b) > 0) {
    }
  }
};

TEST(EventLoopBatched, ReadinessWaitsForATimerDueWithinTheWindow) {
  EventLoop loop;
  Pipe pipe;
  std::vector<std::string> order;
  loop.Watch(
      pipe.fds[0], EPOLLIN,
      [&](uint32_t) {
        pipe.Drain();
        order.push_back("fd");
      },
      EventLoop::Wake::kBatched);
  // Ready now, but a timer is due in 1 ms (within the 2 ms window): the fd
  // is handled at that timer's wake-up, after it.
  pipe.Write();
  loop.AddTimerAfter(1ms, [&] { order.push_back("timer"); });
  loop.AddTimerAfter(30ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_EQ(order, (std::vector<std::string>{"timer", "fd"}));
}

TEST(EventLoopBatched, ReadinessWakesTheLoopWhenNoTimerIsNear) {
  EventLoop loop;
  Pipe pipe;
  MonoTime handled{};
  loop.Watch(
      pipe.fds[0], EPOLLIN,
      [&](uint32_t) {
        pipe.Drain();
        handled = std::chrono::steady_clock::now();
        loop.Stop();
      },
      EventLoop::Wake::kBatched);
  const MonoTime written = std::chrono::steady_clock::now();
  pipe.Write();
  loop.AddTimerAfter(2s, [&] { loop.Stop(); });  // a bound, far away
  loop.Run();
  ASSERT_NE(handled, MonoTime{});
  EXPECT_LT(handled - written, 1s) << "it waited for the far timer";
}

TEST(EventLoopBatched, AnOrdinaryFdDoesNotWaitForANearTimer) {
  EventLoop loop;
  Pipe pipe;
  std::vector<std::string> order;
  loop.Watch(pipe.fds[0], EPOLLIN, [&](uint32_t) {
    pipe.Drain();
    order.push_back("fd");
  });
  pipe.Write();
  loop.AddTimerAfter(5ms, [&] { order.push_back("timer"); });
  loop.AddTimerAfter(30ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_EQ(order, (std::vector<std::string>{"fd", "timer"}));
}

TEST(EventLoopBatched, ModifyUnwatchAndRewatchingKeepTrackOfTheSet) {
  EventLoop loop;
  Pipe pipe;
  int batched = 0, now = 0;
  auto on_batched = [&](uint32_t) {
    pipe.Drain();
    ++batched;
  };
  loop.Watch(pipe.fds[0], EPOLLIN, on_batched, EventLoop::Wake::kBatched);
  EXPECT_TRUE(loop.Modify(pipe.fds[0], EPOLLIN));
  // Back to an ordinary watch: it wakes the loop ahead of a near timer.
  loop.Watch(pipe.fds[0], EPOLLIN, [&](uint32_t) {
    pipe.Drain();
    ++now;
  });
  pipe.Write();
  std::vector<int> seen_at_timer;
  loop.AddTimerAfter(5ms, [&] { seen_at_timer = {batched, now}; });
  loop.AddTimerAfter(20ms, [&] {
    loop.Unwatch(pipe.fds[0]);
    pipe.Write();  // nobody watches: nothing runs
  });
  loop.AddTimerAfter(40ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_EQ(seen_at_timer, (std::vector<int>{0, 1}));
  EXPECT_EQ(batched, 0);
  EXPECT_EQ(now, 1);
}

}  // namespace
}  // namespace polar
