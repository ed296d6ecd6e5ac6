#include "exporters/report.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <openssl/evp.h>

#include <array>

#include "exporters/log.h"
#include "exporters/markup.h"
#include "exporters/web_assets.h"

namespace polar {
namespace {

std::string Utc(WallTime t, const char* format = "{:%Y-%m-%d %H:%M:%S} UTC") {
  return fmt::format(fmt::runtime(format),
                     std::chrono::time_point_cast<std::chrono::seconds>(t));
}

std::string HumanDuration(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  if (s >= 86400)
    return fmt::format("{}d {}h {}m", s / 86400, s / 3600 % 24, s / 60 % 60);
  if (s >= 3600)
    return fmt::format("{}h {}m {}s", s / 3600, s / 60 % 60, s % 60);
  if (s >= 60) return fmt::format("{}m {}s", s / 60, s % 60);
  return fmt::format("{:.1f} s", seconds);
}

std::string Cell(std::string_view text, const char* cls = nullptr) {
  if (cls)
    return fmt::format("<td class=\"{}\">{}</td>", cls, EscapeMarkup(text));
  return fmt::format("<td>{}</td>", EscapeMarkup(text));
}

std::string Percent(double ratio) {
  if (ratio == 0) return "0%";
  if (ratio < 0.0001) return "<0.01%";
  return fmt::format("{:.2f}%", ratio * 100);
}

std::string Thresholds(const RunSummary& summary) {
  if (summary.thresholds.empty())
    return "<p class=\"note\">No thresholds configured: the run passes.</p>\n";
  std::string out =
      "<table id=\"thresholds\"><thead><tr><th>verdict</th><th>scenario / "
      "step</th><th>limit</th><th class=\"num\">actual</th><th "
      "class=\"num\">limit</th><th>from</th></tr></thead><tbody>\n";
  for (const ThresholdResult& r : summary.thresholds) {
    const Threshold& t = r.threshold;
    const char* verdict = r.passed ? "pass" : r.no_data ? "no data" : "fail";
    out += fmt::format(
        "<tr class=\"{}\"><td><span class=\"badge {}\">{}</span></td>",
        r.passed ? "pass" : "fail", r.passed ? "pass" : "fail", verdict);
    out += Cell(t.scenario + " / " + t.step);
    out += Cell(t.metric == ThresholdMetric::kErrorRatio
                    ? "error ratio"
                    : std::string(ThresholdMetricName(t.metric)) +
                          " latency from the intended start");
    out += Cell(r.no_data ? "no requests" : FormatThresholdValue(t, r.actual),
                "num");
    out += Cell(FormatThresholdValue(t, t.limit), "num");
    out += Cell(t.source);
    out += "</tr>\n";
  }
  return out + "</tbody></table>\n";
}

std::string Steps(const RunSummary& summary) {
  std::string out =
      "<table id=\"summary\"><thead><tr><th rowspan=\"2\">scenario / "
      "step</th><th class=\"num\" rowspan=\"2\">requests</th><th "
      "class=\"num\" rowspan=\"2\">per s</th><th class=\"num\" "
      "rowspan=\"2\">errors</th><th colspan=\"4\" class=\"group\">latency "
      "from the intended start</th><th colspan=\"4\" "
      "class=\"group\">service time</th><th rowspan=\"2\">failed "
      "outcomes</th></tr>\n<tr>";
  for (int i = 0; i < 2; ++i)
    out +=
        "<th class=\"num\">p50</th><th class=\"num\">p90</th><th "
        "class=\"num\">p99</th><th class=\"num\">max</th>";
  out += "</tr></thead><tbody>\n";
  if (summary.steps.empty())
    out += "<tr><td class=\"empty\" colspan=\"13\">no requests</td></tr>\n";
  for (const StepSummary& s : summary.steps) {
    out += "<tr>" + Cell(s.scenario + " / " + s.step) +
           Cell(fmt::format("{}", s.count), "num") +
           Cell(fmt::format("{:.2f}", s.rate), "num") +
           Cell(Percent(s.error_ratio), s.error_ratio > 0 ? "num bad" : "num");
    for (const LatencyStats* l : {&s.latency, &s.service}) {
      for (double v : {l->p50, l->p90, l->p99, l->max})
        out += Cell(s.count ? FormatLatency(v) : "–", "num");
    }
    std::string failed;
    for (Outcome o : AllOutcomes()) {
      const uint64_t n = s.outcomes[static_cast<std::size_t>(o)];
      if (o != Outcome::kOk && n > 0)
        failed += fmt::format("{}{} {}", failed.empty() ? "" : ", ",
                              OutcomeName(o), n);
    }
    out += Cell(failed.empty() ? "none" : failed) + "</tr>\n";
  }
  out += "</tbody></table>\n";
  out +=
      "<table id=\"arrivals\"><thead><tr><th>scenario</th><th "
      "class=\"num\">arrivals</th>";
  for (std::size_t i = 0; i < kDropReasonCount; ++i)
    out += fmt::format("<th class=\"num\">dropped: {}</th>",
                       DropReasonName(static_cast<DropReason>(i)));
  out += "</tr></thead><tbody>\n";
  for (const ScenarioTotals& t : summary.scenarios) {
    out +=
        "<tr>" + Cell(t.scenario) + Cell(fmt::format("{}", t.arrivals), "num");
    for (uint64_t d : t.dropped)
      out += Cell(fmt::format("{}", d), d ? "num bad" : "num");
    out += "</tr>\n";
  }
  return out + "</tbody></table>\n";
}

// JSON inside <script type="application/json">: "<" as \u003c, so nothing in
// it (a scenario name, a config string) can close the element.
std::string ScriptSafeJson(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  for (char c : json) {
    if (c == '<') {
      out += "\\u003c";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string Sha256Base64(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(),
             nullptr);
  std::array<unsigned char, 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1> b64{};
  const int n =
      EVP_EncodeBlock(b64.data(), digest.data(), static_cast<int>(length));
  return std::string(reinterpret_cast<const char*>(b64.data()),
                     static_cast<std::size_t>(n));
}

std::string ExpandReportPath(std::string_view pattern, WallTime start) {
  static constexpr std::string_view kStart = "{start}";
  const std::string stamp = Utc(start, "{:%Y%m%dT%H%M%SZ}");
  std::string out;
  std::size_t at = 0;
  for (std::size_t hit; (hit = pattern.find(kStart, at)) != pattern.npos;) {
    out.append(pattern.substr(at, hit - at));
    out += stamp;
    at = hit + kStart.size();
  }
  out.append(pattern.substr(at));
  return out;
}

std::string FormatReportHtml(const ReportInput& in) {
  const bool passed = in.summary.passed();
  const std::string_view css = ReportCss();
  const std::array<std::string_view, 3> scripts = {
      ChartJsLibrary(), ChartsScript(), ReportScript()};
  // Only these inline scripts and this style may run; no fetch, no image
  // from anywhere, no form, no frame: opening the file sends nothing.
  std::string policy = "default-src 'none'; script-src";
  for (std::string_view s : scripts)
    policy += " 'sha256-" + Sha256Base64(s) + "'";
  policy += "; style-src 'sha256-" + Sha256Base64(css) +
            "'; img-src data:; base-uri 'none'; form-action 'none'";

  std::string out;
  out.reserve(scripts[0].size() + in.charts_json.size() + 64 * 1024);
  out +=
      "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += fmt::format(
      "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n", policy);
  out +=
      "<meta name=\"viewport\" content=\"width=device-width, "
      "initial-scale=1\">\n";
  out += "<meta name=\"referrer\" content=\"no-referrer\">\n";
  out += fmt::format("<title>polar-loadd run {}: {}</title>\n",
                     EscapeMarkup(Utc(in.started, "{:%Y-%m-%d %H:%M} UTC")),
                     passed ? "passed" : "FAILED");
  out += "<style>";
  out += css;
  out += "</style>\n</head>\n<body>\n<header>\n";
  out += fmt::format(
      "<h1>polar-loadd run report <span class=\"verdict {}\" "
      "id=\"verdict\">{}</span></h1>\n",
      passed ? "pass" : "fail", passed ? "passed" : "failed");
  out += "<dl id=\"run\">\n";
  std::vector<std::pair<std::string, std::string>> facts = {
      {"started", Utc(in.started)},
      {"ended", Utc(in.ended)},
      {"duration", HumanDuration(in.summary.duration_seconds)},
      {"run", in.mode},
      {"ended by", in.ended_by},
      {"version", in.version + " (" + in.revision + ")"}};
  facts.insert(facts.end(), in.facts.begin(), in.facts.end());
  for (const auto& [k, v] : facts) {
    if (v.empty()) continue;
    out += fmt::format("<div><dt>{}</dt><dd>{}</dd></div>\n", EscapeMarkup(k),
                       EscapeMarkup(Redact(v)));
  }
  out += "</dl>\n</header>\n<main>\n";
  std::size_t held = 0;
  for (const auto& r : in.summary.thresholds) held += r.passed ? 1 : 0;
  out += fmt::format("<section>\n<h2>Thresholds: {} of {} held</h2>\n", held,
                     in.summary.thresholds.size());
  out += Thresholds(in.summary);
  out += "</section>\n<section>\n<h2>Summary</h2>\n";
  out +=
      "<p class=\"note\">Per step over the whole run: finished requests, "
      "their rate, the share not <code>ok</code>, and percentiles of the "
      "latency from the intended start (what a user would have felt) and of "
      "the service time (from the actual send), from the fine summary "
      "histogram (within 0.4 %).</p>\n";
  out += Steps(in.summary);
  out += "</section>\n<section id=\"charts-section\">\n<h2>Charts</h2>\n";
  out +=
      "<p class=\"note\">The whole run, each point one span (the span "
      "doubles as a run doubles, so a day has a few hundred points); "
      "percentiles come from each span's own histogram. Times are in this "
      "browser's time zone.</p>\n"
      "<noscript><p class=\"note\">The charts need JavaScript; the tables "
      "above do not.</p></noscript>\n<div id=\"charts\"></div>\n</section>\n";
  out += "<section>\n<h2>Configuration</h2>\n";
  out += fmt::format(
      "<p class=\"note\">{} as read at the start, with every "
      "secret replaced by {}.</p>\n",
      EscapeMarkup(in.config_path), EscapeMarkup(kRedacted));
  if (!in.notes.empty()) {
    out += "<ul class=\"notes\">\n";
    for (const std::string& n : in.notes)
      out += "<li>" + EscapeMarkup(Redact(n)) + "</li>\n";
    out += "</ul>\n";
  }
  out += "<pre id=\"config\">" + EscapeMarkup(Redact(in.config_text)) +
         "</pre>\n</section>\n</main>\n";
  out += fmt::format(
      "<footer>polar-loadd {} · charts by Chart.js {} (MIT License, "
      "© Chart.js Contributors), inlined</footer>\n",
      EscapeMarkup(in.version), EscapeMarkup(ChartJsVersion()));
  out += "<script type=\"application/json\" id=\"report-data\">";
  out += ScriptSafeJson(Redact(in.charts_json));
  out += "</script>\n";
  for (std::string_view s : scripts) {
    out += "<script>";
    out += s;
    out += "</script>\n";
  }
  out += "</body>\n</html>\n";
  return out;
}

}  // namespace polar
