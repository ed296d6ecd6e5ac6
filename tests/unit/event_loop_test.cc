#include "daemon/event_loop.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <csignal>
#include <vector>

namespace polar {
namespace {

using namespace std::chrono_literals;

TEST(EventLoop, TimersFireInDeadlineOrderNotInsertionOrder) {
  EventLoop loop;
  std::vector<int> order;
  auto now = std::chrono::steady_clock::now();
  loop.AddTimer(now + 30ms, [&] { order.push_back(3); });
  loop.AddTimer(now + 10ms, [&] { order.push_back(1); });
  loop.AddTimer(now + 20ms, [&] { order.push_back(2); });
  loop.AddTimer(now + 40ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(EventLoop, ACancelledTimerNeverRuns) {
  EventLoop loop;
  bool ran = false;
  auto id = loop.AddTimerAfter(5ms, [&] { ran = true; });
  loop.Cancel(id);
  loop.AddTimerAfter(20ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_FALSE(ran);
}

TEST(EventLoop, TimerLagIsReportedToTheObserver) {
  EventLoop loop;
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

TEST(EventLoop, WatchedDescriptorsDeliverReadiness) {
  EventLoop loop;
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

TEST(EventLoop, SignalsArriveAsCallbacksOnTheLoop) {
  EventLoop loop;
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

TEST(EventLoop, PostedWorkRunsAfterTheCurrentCallback) {
  EventLoop loop;
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

}  // namespace
}  // namespace polar
