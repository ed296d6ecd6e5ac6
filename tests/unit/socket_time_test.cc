// Receive timestamps: bytes read late are dated by when they reached the
// kernel, on the monotonic clock's scale.
#include "daemon/net/socket_time.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace polar::socket_time_test {
namespace {

using namespace std::chrono_literals;

TEST(SocketTime, BytesReadLateAreDatedByTheirArrival) {
  // TCP on loopback, as the clients use it (AF_UNIX streams carry no
  // stamps).
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  int fds[2];
  fds[0] = socket(AF_INET, SOCK_STREAM, 0);
  EnableReceiveTimestamps(fds[0]);
  ASSERT_EQ(connect(fds[0], reinterpret_cast<sockaddr*>(&address), length), 0);
  fds[1] = accept(listener, nullptr, nullptr);
  close(listener);
  ASSERT_GE(fds[1], 0);
  // The kernel turns stamping on for the machine a moment after the first
  // socket asks (a deferred switch): wait until a byte comes stamped.
  char buffer[16];
  std::optional<timespec> stamp;
  for (int i = 0; i < 100 && !stamp; ++i) {
    ASSERT_EQ(write(fds[1], "w", 1), 1);
    std::this_thread::sleep_for(10ms);
    ASSERT_EQ(ReceiveStamped(fds[0], buffer, sizeof buffer, &stamp), 1);
  }
  ASSERT_TRUE(stamp.has_value()) << "no receive timestamps within a second";
  stamp.reset();
  SystemClock clock;
  const MonoTime written = clock.Now();
  ASSERT_EQ(write(fds[1], "answer", 6), 6);
  std::this_thread::sleep_for(50ms);  // the reader is busy elsewhere
  ASSERT_EQ(ReceiveStamped(fds[0], buffer, sizeof buffer, &stamp), 6);
  ASSERT_TRUE(stamp.has_value());
  const MonoTime arrived = ArrivalTime(clock, stamp);
  const MonoTime now = clock.Now();
  EXPECT_GE(now - arrived, 45ms) << "dated when read, not when received";
  EXPECT_LT(arrived - written, 20ms);
  close(fds[0]);
  close(fds[1]);
}

TEST(SocketTime, WithoutAStampTheArrivalIsNow) {
  FakeClock clock;
  clock.Advance(5s);
  EXPECT_EQ(ArrivalTime(clock, std::nullopt), clock.Now());
}

TEST(SocketTime, AStampFromTheFutureIsClampedToNow) {
  FakeClock clock;
  timespec future;
  clock_gettime(CLOCK_REALTIME, &future);
  future.tv_sec += 60;  // the wall clock stepped back meanwhile
  EXPECT_EQ(ArrivalTime(clock, future), clock.Now());
}

}  // namespace
}  // namespace polar::socket_time_test
