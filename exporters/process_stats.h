// ProcessStats: the standard process_* numbers (CPU time, memory, file
// descriptors, start time) read from Linux's /proc/self.
//
// Pure parsing functions plus one reader; any thread. Reading /proc never
// touches a disk, so the daemon samples it once a second on the loop thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace polar {

struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;
  double start_time_seconds = 0;  // Unix time
};

// Fields of /proc/[pid]/stat after the command name: utime, stime (ticks),
// starttime (ticks since boot), vsize (bytes), rss (pages).
struct ProcStat {
  double utime_ticks = 0, stime_ticks = 0, start_ticks = 0;
  double vsize_bytes = 0, rss_pages = 0;
};
std::optional<ProcStat> ParseProcStat(std::string_view text);
// "btime" (boot time, Unix seconds) from /proc/stat.
std::optional<double> ParseBootTime(std::string_view proc_stat);
// The soft limit from the "Max open files" line of /proc/self/limits.
std::optional<double> ParseMaxOpenFiles(std::string_view limits);

bool ReadProcessStats(ProcessStats* out);

}  // namespace polar
