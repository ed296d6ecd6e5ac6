#include "daemon/net/socket_time.h"

#include <sys/socket.h>

#include <cstring>

namespace polar {

void EnableReceiveTimestamps(int fd) {
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
}

ssize_t ReceiveStamped(int fd, char* buffer, std::size_t size,
                       std::optional<timespec>* stamp) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  iovec iov{buffer, size};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  const ssize_t n = recvmsg(fd, &message, 0);
  if (n <= 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec t;
      std::memcpy(&t, CMSG_DATA(c), sizeof t);
      *stamp = t;
    }
  }
  return n;
}

MonoTime ArrivalTime(const Clock& clock, const std::optional<timespec>& stamp) {
  const MonoTime now = clock.Now();
  if (!stamp) return now;
  timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  const int64_t age =
      (static_cast<int64_t>(wall.tv_sec) - stamp->tv_sec) * 1'000'000'000LL +
      (wall.tv_nsec - stamp->tv_nsec);
  if (age <= 0) return now;
  return now - Duration(age);
}

}  // namespace polar
