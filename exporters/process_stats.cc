#include "exporters/process_stats.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace polar {
namespace {

std::string ReadAll(const char* path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::optional<ProcStat> ParseProcStat(std::string_view text) {
  // The command name is in parentheses and may contain spaces or ')': the
  // fields start after the last ')'.
  auto close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::vector<std::string_view> fields;
  std::size_t i = close + 1;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    std::size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\n') ++j;
    if (j > i) fields.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  // fields[0] is the state (field 3 of proc(5)); utime is field 14.
  auto field = [&](int number) -> std::optional<double> {
    std::size_t idx = static_cast<std::size_t>(number - 3);
    if (idx >= fields.size()) return std::nullopt;
    std::string s(fields[idx]);
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str()) return std::nullopt;
    return v;
  };
  auto utime = field(14), stime = field(15), start = field(22),
       vsize = field(23), rss = field(24);
  if (!utime || !stime || !start || !vsize || !rss) return std::nullopt;
  return ProcStat{*utime, *stime, *start, *vsize, *rss};
}

std::optional<double> ParseBootTime(std::string_view text) {
  auto at = text.find("\nbtime ");
  if (at == std::string_view::npos) return std::nullopt;
  std::string s(text.substr(at + 7, 32));
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str()) return std::nullopt;
  return v;
}

std::optional<double> ParseMaxOpenFiles(std::string_view text) {
  auto at = text.find("Max open files");
  if (at == std::string_view::npos) return std::nullopt;
  std::string s(text.substr(at + 14, 40));
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str()) return std::nullopt;
  return v;
}

bool ReadProcessStats(ProcessStats* out) {
  auto stat = ParseProcStat(ReadAll("/proc/self/stat"));
  if (!stat) return false;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  out->cpu_seconds = (stat->utime_ticks + stat->stime_ticks) / ticks;
  out->resident_bytes = stat->rss_pages * page;
  out->virtual_bytes = stat->vsize_bytes;
  if (auto boot = ParseBootTime(ReadAll("/proc/stat")))
    out->start_time_seconds = *boot + stat->start_ticks / ticks;
  if (auto max = ParseMaxOpenFiles(ReadAll("/proc/self/limits")))
    out->max_fds = *max;
  // Counting entries of /proc/self/fd: ~300 at 20,000/s, microseconds.
  double fds = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++fds;
    }
    closedir(dir);
    fds -= 1;  // the directory stream's own descriptor
  }
  out->open_fds = fds;
  return true;
}

}  // namespace polar
