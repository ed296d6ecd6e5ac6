#include "daemon/service/reload_request.h"

#include <errno.h>
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cstring>

namespace polar {
namespace {

// An answer's high 16 bits; the low 16 carry the outcome.
constexpr uint32_t kAnswerMark = 0x504c0000;  // "PL"
constexpr uint32_t kApplied = 0;
constexpr uint32_t kIgnored = 0xffff;
// Problems above this are reported as this many (an answer has 16 bits).
constexpr std::size_t kMaxProblems = 0x7fff;

constexpr int kExitOk = 0;
constexpr int kExitUnavailable = 69;
constexpr int kExitNoPerm = 77;
constexpr int kExitConfig = 78;

}  // namespace

int EncodeReloadOutcome(const ReloadOutcome& outcome) {
  uint32_t low = kApplied;
  switch (outcome.kind) {
    case ReloadOutcome::Kind::kApplied:
      low = kApplied;
      break;
    case ReloadOutcome::Kind::kRefused:
      low = static_cast<uint32_t>(
          std::max<std::size_t>(1, std::min(outcome.problems, kMaxProblems)));
      break;
    case ReloadOutcome::Kind::kIgnored:
      low = kIgnored;
      break;
  }
  return static_cast<int>(kAnswerMark | low);
}

bool DecodeReloadOutcome(int value, ReloadOutcome* outcome) {
  const auto bits = static_cast<uint32_t>(value);
  if ((bits & 0xffff0000u) != kAnswerMark) return false;
  const uint32_t low = bits & 0xffffu;
  if (low == kApplied) {
    *outcome = {ReloadOutcome::Kind::kApplied, 0};
  } else if (low == kIgnored) {
    *outcome = {ReloadOutcome::Kind::kIgnored, 0};
  } else if (low <= kMaxProblems) {
    *outcome = {ReloadOutcome::Kind::kRefused, low};
  } else {
    return false;
  }
  return true;
}

bool IsReloadRequest(int si_code, int value) {
  return si_code == SI_QUEUE && value == kReloadRequestValue;
}

bool AnswerReloadRequest(pid_t requester, const ReloadOutcome& outcome,
                         std::string* error) {
  sigval value{};
  value.sival_int = EncodeReloadOutcome(outcome);
  if (sigqueue(requester, SIGUSR1, value) != 0) {
    *error = fmt::format("cannot answer the reload request of PID {}: {}",
                         requester, std::strerror(errno));
    return false;
  }
  return true;
}

int RequestReload(pid_t pid, std::chrono::milliseconds timeout,
                  std::string* message) {
  if (pid <= 0) {
    *message = fmt::format("{} is not a process ID", pid);
    return kExitUnavailable;
  }
  // Blocked before the request goes out, so an answer that comes back at once
  // waits for sigtimedwait instead of killing us (SIGUSR1's default action).
  sigset_t answer;
  sigemptyset(&answer);
  sigaddset(&answer, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &answer, nullptr);

  sigval request{};
  request.sival_int = kReloadRequestValue;
  if (sigqueue(pid, SIGHUP, request) != 0) {
    const int e = errno;
    *message =
        fmt::format("cannot send SIGHUP to PID {}: {}", pid, std::strerror(e));
    return e == EPERM ? kExitNoPerm : kExitUnavailable;
  }
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += timeout.count() / 1000;
  deadline.tv_nsec += (timeout.count() % 1000) * 1'000'000;
  if (deadline.tv_nsec >= 1'000'000'000) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1'000'000'000;
  }
  for (;;) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long left_ns =
        (static_cast<long long>(deadline.tv_sec) - now.tv_sec) * 1'000'000'000 +
        (deadline.tv_nsec - now.tv_nsec);
    if (left_ns <= 0) break;
    timespec left{static_cast<time_t>(left_ns / 1'000'000'000),
                  static_cast<long>(left_ns % 1'000'000'000)};
    siginfo_t info{};
    if (sigtimedwait(&answer, &info, &left) < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: the time is up
    }
    ReloadOutcome outcome;
    // Only the daemon's own answer counts; any other SIGUSR1 is not one.
    if (info.si_pid != pid || info.si_code != SI_QUEUE ||
        !DecodeReloadOutcome(info.si_value.sival_int, &outcome)) {
      continue;
    }
    switch (outcome.kind) {
      case ReloadOutcome::Kind::kApplied:
        *message = fmt::format("PID {} reloaded its configuration", pid);
        return kExitOk;
      case ReloadOutcome::Kind::kRefused:
        *message = fmt::format(
            "PID {} refused the new configuration ({} problem(s), logged by "
            "the daemon) and keeps running the previous one",
            pid, outcome.problems);
        return kExitConfig;
      case ReloadOutcome::Kind::kIgnored:
        *message = fmt::format("PID {} is stopping and reloads nothing", pid);
        return kExitUnavailable;
    }
  }
  *message = fmt::format(
      "PID {} did not answer the reload request within {} ms (is it "
      "polar-loadd?)",
      pid, timeout.count());
  return kExitUnavailable;
}

}  // namespace polar
