// The reload request protocol (daemon/service/reload_request.h) between two
// real processes: a forked child plays the daemon with the daemon-side
// functions, the test process is `polar-loadd --reload PID`.
#include "daemon/service/reload_request.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>

namespace polar {
namespace {

using std::chrono::milliseconds;

// Forks a "daemon" that waits (up to 10 s) for one SIGHUP and hands its
// siginfo to `serve`, then exits 0 if `serve` returned true. SIGHUP is blocked
// before the fork so a request sent at once is not lost.
pid_t ForkDaemon(std::function<bool(const siginfo_t&)> serve) {
  sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &hup, &old);
  pid_t pid = fork();
  if (pid == 0) {
    siginfo_t info{};
    timespec ten{10, 0};
    if (sigtimedwait(&hup, &info, &ten) != SIGHUP) _exit(2);
    _exit(serve(info) ? 0 : 1);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return pid;
}

int Reap(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ReloadRequest, AnAppliedReloadExitsZero) {
  pid_t daemon = ForkDaemon([](const siginfo_t& info) {
    if (!IsReloadRequest(info.si_code, info.si_value.sival_int)) return false;
    std::string error;
    return AnswerReloadRequest(info.si_pid, {ReloadOutcome::Kind::kApplied, 0},
                               &error);
  });
  std::string message;
  EXPECT_EQ(RequestReload(daemon, milliseconds(5000), &message), 0) << message;
  EXPECT_NE(message.find("reloaded"), std::string::npos) << message;
  EXPECT_EQ(Reap(daemon), 0);
}

TEST(ReloadRequest, ARefusedConfigurationExits78WithTheProblemCount) {
  pid_t daemon = ForkDaemon([](const siginfo_t& info) {
    std::string error;
    return AnswerReloadRequest(info.si_pid, {ReloadOutcome::Kind::kRefused, 3},
                               &error);
  });
  std::string message;
  EXPECT_EQ(RequestReload(daemon, milliseconds(5000), &message), 78);
  EXPECT_NE(message.find("3 problem(s)"), std::string::npos) << message;
  EXPECT_NE(message.find("previous"), std::string::npos) << message;
  EXPECT_EQ(Reap(daemon), 0);
}

TEST(ReloadRequest, ADaemonThatNeverAnswersTimesOutWith69) {
  // A plain SIGHUP handler (an older polar-loadd, or another program).
  pid_t daemon = ForkDaemon([](const siginfo_t&) { return true; });
  std::string message;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(RequestReload(daemon, milliseconds(300), &message), 69);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(300));
  EXPECT_NE(message.find("did not answer"), std::string::npos) << message;
  EXPECT_EQ(Reap(daemon), 0);
}

TEST(ReloadRequest, AnAnswerFromAnotherProcessIsNotTakenForTheDaemons) {
  // The "daemon" does not answer; a bystander sends a well-formed "applied".
  pid_t daemon = ForkDaemon([](const siginfo_t&) { return true; });
  const pid_t parent = getpid();
  pid_t bystander = fork();
  if (bystander == 0) {
    usleep(50'000);
    sigval v{};
    v.sival_int = EncodeReloadOutcome({ReloadOutcome::Kind::kApplied, 0});
    sigqueue(parent, SIGUSR1, v);
    _exit(0);
  }
  std::string message;
  EXPECT_EQ(RequestReload(daemon, milliseconds(400), &message), 69) << message;
  Reap(bystander);
  Reap(daemon);
}

TEST(ReloadRequest, NoSuchProcessExits69AtOnce) {
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  Reap(gone);
  std::string message;
  EXPECT_EQ(RequestReload(gone, milliseconds(5000), &message), 69);
  EXPECT_NE(message.find("cannot send SIGHUP"), std::string::npos) << message;
}

TEST(ReloadRequest, APlainSighupIsNotARequest) {
  EXPECT_FALSE(IsReloadRequest(SI_USER, 0));
  EXPECT_FALSE(IsReloadRequest(SI_QUEUE, 12345));
  EXPECT_TRUE(IsReloadRequest(SI_QUEUE, kReloadRequestValue));
}

TEST(ReloadRequest, OutcomesSurviveTheSignalValue) {
  for (ReloadOutcome in : {ReloadOutcome{ReloadOutcome::Kind::kApplied, 0},
                           ReloadOutcome{ReloadOutcome::Kind::kRefused, 1},
                           ReloadOutcome{ReloadOutcome::Kind::kRefused, 200},
                           ReloadOutcome{ReloadOutcome::Kind::kIgnored, 0}}) {
    ReloadOutcome out;
    ASSERT_TRUE(DecodeReloadOutcome(EncodeReloadOutcome(in), &out));
    EXPECT_EQ(out.kind, in.kind);
    EXPECT_EQ(out.problems, in.problems);
  }
  // More problems than 16 bits hold are capped, still a refusal.
  ReloadOutcome out;
  ASSERT_TRUE(DecodeReloadOutcome(
      EncodeReloadOutcome({ReloadOutcome::Kind::kRefused, 1'000'000}), &out));
  EXPECT_EQ(out.kind, ReloadOutcome::Kind::kRefused);
  EXPECT_EQ(out.problems, 0x7fffu);
  EXPECT_FALSE(DecodeReloadOutcome(0, &out));
  EXPECT_FALSE(DecodeReloadOutcome(kReloadRequestValue, &out));
}

}  // namespace
}  // namespace polar
