// Test support: start the project's binaries as child processes, read what they
// print, and stop them; fetch URLs; parse Prometheus text. For tests only
// (blocking calls, gtest-friendly errors).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace polar::testing {

// A child process with stdout and stderr captured to files in a temporary
// directory, killed (after SIGTERM and a short grace) when the object goes
// away, so a failing test never leaks a server.
class Process {
 public:
  Process(const std::string& binary, const std::vector<std::string>& args,
          const std::map<std::string, std::string>& extra_env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Waits until stdout has a complete first line and returns it, or nullopt on
  // timeout/exit.
  std::optional<std::string> FirstStdoutLine(std::chrono::milliseconds timeout);
  // Waits until stderr contains `needle`; returns the whole stderr so far, or
  // nullopt on timeout.
  std::optional<std::string> WaitForStderr(const std::string& needle,
                                           std::chrono::milliseconds timeout);
  std::string Stdout() const;
  std::string Stderr() const;
  void Signal(int signo);
  // Waits for exit; returns the exit code, 128+signal, or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();

 private:
  pid_t pid_ = -1;
  std::string dir_;
  std::optional<int> status_;
};

struct HttpResult {
  long status = 0;
  std::string body;
  std::string error;
  std::string head;  // the response's header lines, as received
};
HttpResult HttpGet(const std::string& url,
                   std::chrono::milliseconds timeout = std::chrono::seconds(5));
HttpResult HttpRequest(
    const std::string& method, const std::string& url, const std::string& body,
    const std::vector<std::string>& headers,
    std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Prometheus text format -> {"name{label=\"v\",...}": value}. Labels are kept
// exactly as printed.
std::map<std::string, double> ParseMetrics(const std::string& text);
// Sums every series of `name` whose label set contains all of `labels` (e.g.
// {"outcome=\"ok\""}).
double SumSeries(const std::map<std::string, double>& metrics,
                 const std::string& name,
                 const std::vector<std::string>& labels = {});

std::string TempDir();
void WriteFile(const std::string& path, const std::string& content);
// The whole file, or "" if it cannot be read.
std::string ReadFile(const std::string& path);
// Percent-encodes everything but RFC 3986's unreserved characters (for query
// strings such as Prometheus's `query=`).
std::string UrlEncode(std::string_view s);

}  // namespace polar::testing
