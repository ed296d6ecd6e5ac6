// Run report: one self-contained HTML file for a finished run
// (`polar-loadd --once --report FILE.html`, or `daemon.report` when the daemon
// stops): what ran (version, times, the configuration file with its secrets
// redacted), the summary table, the thresholds passed or failed, and charts
// over the whole run. Chart.js and the charting script are inlined and the
// data is inlined as JSON, so the file opens from disk with no network; a
// Content-Security-Policy meta tag that allows only those inline scripts (by
// their SHA-256) and no connection at all makes sure nothing leaves the page.
// The tables are plain HTML: without JavaScript only the charts are missing.
//
// Pure formatting: any thread, no I/O. Size: Chart.js (195 KiB) and the
// scripts, plus the chart data, which is bounded by the charts' history
// (exporters/chart_history.h: at most 256 points per series whatever the
// run's length; docs/ci.md has the figures).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporters/clock.h"
#include "exporters/summary.h"

namespace polar {

struct ReportInput {
  RunSummary summary;  // thresholds evaluated
  std::string version, revision;
  WallTime started{}, ended{};
  // How the run was started and ended, e.g. "--once --duration 5m" and
  // "duration reached".
  std::string mode, ended_by;
  // Facts shown under the title, in order: ("target", URL), ("shard", ...).
  std::vector<std::pair<std::string, std::string>> facts;
  std::string config_path;
  // The configuration file as read. FormatReportHtml redacts it again
  // (Redact(), every registered secret), but the caller passes it through
  // RedactConfigText first: values of secret keys go even when not
  // registered.
  std::string config_text;
  std::vector<std::string> notes;  // e.g. environment variables that override
  std::string charts_json;         // StatusCharts::WholeJson() (daemon/status)
};

std::string FormatReportHtml(const ReportInput& in);

// `pattern` with "{start}" replaced by the run's start in UTC, e.g.
// "reports/run-{start}.html" -> "reports/run-20261204T203533Z.html", so
// scheduled runs keep one report each.
std::string ExpandReportPath(std::string_view pattern, WallTime start);

// The base64 SHA-256 of `text`, as a CSP source expression wants it.
std::string Sha256Base64(std::string_view text);

}  // namespace polar
