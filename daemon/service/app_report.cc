// App's run report (exporters/report.h): where it goes (--report, else
// daemon.report, "{start}" expanded), a check at the start that it can be
// written there (a day-long run must not find out at its end), and the
// writing when the run ends: a one-shot run after its summary, the service
// after it stopped and drained. Loop thread (or after the loop), like app.h.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "daemon/service/app.h"
#include "exporters/log.h"
#include "exporters/report.h"
#include "polar/version.h"

namespace polar {

std::string App::ReportPath() const {
  const std::string& pattern =
      run_.report.empty() ? config_->daemon.report : run_.report;
  if (pattern.empty()) return "";
  return ExpandReportPath(pattern, started_wall_);
}

bool App::CheckReportPath() const {
  const std::string path = ReportPath();
  if (path.empty()) return true;
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (::access(dir.c_str(), W_OK) != 0) {
    SPDLOG_ERROR("cannot write the run report to {}: {}: {}", path,
                 dir.string(), std::strerror(errno));
    return false;
  }
  return true;
}

std::vector<Threshold> App::Thresholds() const {
  std::vector<Threshold> thresholds;
  for (const ScenarioConfig& sc : config_->scenarios)
    thresholds.insert(thresholds.end(), sc.thresholds.begin(),
                      sc.thresholds.end());
  return thresholds;
}

bool App::WriteReport(const RunSummary& summary) {
  const std::string path = ReportPath();
  if (path.empty()) return true;
  ReportInput in;
  in.summary = summary;
  in.version = kVersion;
  in.revision = kRevision;
  in.started = started_wall_;
  in.ended = started_wall_ + std::chrono::duration_cast<WallTime::duration>(
                                 clock_.Now() - started_);
  in.mode = run_.once ? "--once --duration " + FormatDuration(run_.duration)
                      : "service";
  in.ended_by = stopped_by_;
  in.facts.emplace_back("target", config_->target.base_url);
  if (config_->cluster.shard.sharded())
    in.facts.emplace_back("shard", config_->cluster.shard.ToString());
  in.config_path = config_->path;
  in.config_text = RedactConfigText(config_->text);
  in.notes = config_->notes;
  std::vector<std::string> order;  // the status page's order
  for (const ScenarioConfig& sc : config_->scenarios) order.push_back(sc.name);
  in.charts_json = status_board_->charts().WholeJson(order);
  const std::string html = FormatReportHtml(in);
  // Written beside and renamed into place: a reader never sees half a file.
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << html;
    out.close();
    if (!out) {
      SPDLOG_ERROR("cannot write the run report {}", partial);
      std::remove(partial.c_str());
      return false;
    }
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    SPDLOG_ERROR("cannot write the run report {}: {}", path,
                 std::strerror(errno));
    std::remove(partial.c_str());
    return false;
  }
  SPDLOG_INFO("run report: {} ({} KiB)", path, (html.size() + 1023) / 1024);
  return true;
}

}  // namespace polar
