// Reload requests that get an answer: how `polar-loadd --reload PID` (the
// units' ExecReload=) learns whether the running daemon took the new
// configuration, so that `systemctl reload` fails when the daemon refused it.
//
// Why not ExecReload=/bin/kill -HUP $MAINPID: systemd 252 (Debian 12) ends a
// reload job when the ExecReload= process exits and judges it by that exit
// status alone, so the job "succeeds" before the daemon has even read the file,
// and a file it refuses still reads "Reloaded". Type=notify-reload (systemd
// 253+) waits for READY=1 but has no way to carry a refusal either. So the
// client sends SIGHUP with sigqueue(3), its value marking it as a request; the
// daemon reloads as for any SIGHUP and then answers the sender's PID with a
// queued SIGUSR1 whose value is the outcome. A plain SIGHUP (kill -HUP) still
// reloads and gets no answer.
//
// Both sides are plain functions of signals and PIDs, no state: the daemon
// side runs on the event loop thread (sigqueue(2) does not block), the client
// side in a process of its own that does nothing else.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace polar {

// The value a reload request carries in its SIGHUP.
inline constexpr int kReloadRequestValue = 0x52454c44;  // "RELD"

// What became of a reload.
struct ReloadOutcome {
  enum class Kind {
    kApplied,  // the new configuration runs
    kRefused,  // it had problems; the previous one keeps running
    kIgnored,  // the daemon is stopping and reloads nothing
  };
  Kind kind = Kind::kApplied;
  // With kRefused: how many problems were logged (at least 1).
  std::size_t problems = 0;
};

// The SIGUSR1 value that carries `outcome` (the high 16 bits mark it as ours),
// and back. Decode returns false for a value that is not an answer.
int EncodeReloadOutcome(const ReloadOutcome& outcome);
bool DecodeReloadOutcome(int value, ReloadOutcome* outcome);

// Daemon side. True when a SIGHUP with this si_code and value is a reload
// request that wants an answer (sent with sigqueue and our value).
bool IsReloadRequest(int si_code, int value);
// Sends the answer to the requesting process. Returns false (and sets `error`)
// when it cannot be delivered, e.g. the client gave up and exited.
bool AnswerReloadRequest(pid_t requester, const ReloadOutcome& outcome,
                         std::string* error);

// Client side: asks `pid` to reload and waits up to `timeout` for its answer.
// Blocks SIGUSR1 in the calling thread for good (call it before starting any
// other thread; polar-loadd --reload starts none). Exit codes in sysexits(3)
// terms, for main() to return: 0 applied, 78 refused, 69 no answer in time,
// no such process, or the daemon is stopping, 77 not allowed to signal it.
// `message` says what happened, for stderr.
int RequestReload(pid_t pid, std::chrono::milliseconds timeout,
                  std::string* message);

}  // namespace polar
