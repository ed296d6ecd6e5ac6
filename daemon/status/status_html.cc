#include "daemon/status/status_html.h"

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "exporters/markup.h"

namespace polar {
namespace {

using nlohmann::json;

// The same formats as status.js, so a page that loads without JavaScript
// reads like one with it.
std::string Rate(const json& v) {
  if (!v.is_number()) return "–";
  const double x = v.get<double>();
  if (x == 0) return "0";
  if (x < 10) return fmt::format("{:.2f}", x);
  if (x < 100) return fmt::format("{:.1f}", x);
  return fmt::format("{}", static_cast<long long>(std::llround(x)));
}

std::string Pct(const json& v) {
  if (!v.is_number()) return "–";
  const double x = v.get<double>();
  if (x == 0) return "0%";
  if (x < 0.001) return "<0.1%";
  return x < 0.1 ? fmt::format("{:.1f}%", 100 * x)
                 : fmt::format("{:.0f}%", 100 * x);
}

std::string Seconds(const json& v) {
  if (!v.is_number()) return "–";
  const double s = v.get<double>();
  if (s < 0.001) return fmt::format("{:.3g} µs", s * 1e6);
  if (s < 1) return fmt::format("{:.3g} ms", s * 1e3);
  return fmt::format("{:.3g} s", s);
}

std::string Age(double seconds) {
  const auto s = std::max<long long>(0, std::llround(seconds));
  const long long d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
  if (d) return fmt::format("{}d {}h", d, h);
  if (h) return fmt::format("{}h {}m", h, m);
  if (m) return fmt::format("{}m {}s", m, s % 60);
  return fmt::format("{}s", s);
}

std::string Td(std::string_view text, std::string_view cls = {},
               std::string_view field = {}) {
  std::string out = "<td";
  if (!field.empty()) out += fmt::format(" data-field=\"{}\"", field);
  if (!cls.empty()) out += fmt::format(" class=\"{}\"", cls);
  return out + ">" + EscapeMarkup(text) + "</td>";
}

std::string Empty(int columns, std::string_view text) {
  return fmt::format("<tr><td class=\"empty\" colspan=\"{}\">{}</td></tr>",
                     columns, EscapeMarkup(text));
}

std::string Badges(const json& control) {
  std::string out;
  auto badge = [&](const char* cls, const std::string& text) {
    out += fmt::format("<span class=\"badge {}\">{}</span>", cls,
                       EscapeMarkup(text));
  };
  if (control.value("paused", false)) badge("paused", "paused");
  if (control.contains("override") && control["override"].is_object()) {
    const json& o = control["override"];
    const json left = o.value("remaining_seconds", json(nullptr));
    badge("override",
          fmt::format("override {}/s · {}", Rate(o.value("rate", json())),
                      left.is_number() ? Age(left.get<double>()) + " left"
                                       : "until reload"));
  }
  if (control.value("retry_after_remaining_seconds", 0.0) > 0)
    badge("backoff",
          "Retry-After " +
              Age(control["retry_after_remaining_seconds"].get<double>()));
  if (control.value("burst_pending", 0) > 0)
    badge("override",
          fmt::format("burst {} left", control["burst_pending"].get<long>()));
  if (out.empty()) badge("running", "running");
  return out;
}

std::string Scenarios(const json& st) {
  std::string out;
  for (const json& s : st.value("scenarios", json::array())) {
    const std::string name = s.value("name", "");
    const json error_ratio = s.value("error_ratio", json());
    std::string drops;
    const json dropped = s.value("dropped_last_minute", json::object());
    for (const auto& [reason, n] : dropped.items()) {
      if (n.is_number() && n.get<double>() > 0)
        drops += fmt::format("{}{} {}", drops.empty() ? "" : ", ", reason,
                             n.get<long long>());
    }
    out += fmt::format("<tr class=\"scenario\" data-scenario=\"{}\">",
                       EscapeMarkup(name));
    out += Td(name, "", "name");
    out += "<td data-field=\"state\">" +
           Badges(s.value("control", json::object())) + "</td>";
    out += Td(Rate(s.value("target_rate", json())), "num", "target");
    out += Td(Rate(s.value("achieved_rate", json())), "num", "achieved");
    out += Td(Rate(s.value("completed_rate", json())), "num", "done");
    out +=
        Td(Pct(error_ratio),
           error_ratio.is_number() && error_ratio.get<double>() > 0 ? "num bad"
                                                                    : "num",
           "errors");
    out += Td("", "num", "p50") + Td("", "num", "p99");
    const json in_flight = s.value("in_flight", json());
    out += Td(fmt::format("{} / {}",
                          in_flight.is_number()
                              ? fmt::format("{:g}", in_flight.get<double>())
                              : "–",
                          s.value("max_in_flight", 0)),
              "num", "in_flight");
    out +=
        Td(drops.empty() ? "0" : drops, drops.empty() ? "" : "bad", "dropped");
    out += Td("", "", "actions") + "</tr>\n";
    for (const json& step : s.value("steps", json::array())) {
      const json er = step.value("error_ratio", json());
      out += fmt::format(
          "<tr class=\"step\" data-scenario=\"{}\" data-step=\"{}\">",
          EscapeMarkup(name), EscapeMarkup(step.value("step", "")));
      out += Td(step.value("step", ""), "", "name") + Td("", "", "state") +
             Td("", "num", "target") + Td("", "num", "achieved");
      out += Td(Rate(step.value("rate", json())), "num", "done");
      out += Td(Pct(er),
                er.is_number() && er.get<double>() > 0 ? "num bad" : "num",
                "errors");
      out += Td(Seconds(step.value("p50_seconds", json())), "num", "p50");
      out += Td(Seconds(step.value("p99_seconds", json())), "num", "p99");
      out += Td("", "num", "in_flight") + Td("", "", "dropped") +
             Td("", "", "actions") + "</tr>\n";
    }
  }
  if (out.empty()) return Empty(11, "no scenarios");
  return out;
}

std::string Webhooks(const json& st) {
  const json w = st.value("webhooks", json::object());
  const json verdicts = w.value("verdicts", json::array());
  const json rows = w.value("rows", json::array());
  if (rows.empty()) {
    return "<p class=\"note empty\" id=\"webhooks-empty\">" +
           EscapeMarkup(
               verdicts.empty()
                   ? "No webhook receiver ([webhooks] is not configured)."
                   : "No webhook deliveries yet.") +
           "</p>";
  }
  std::string out =
      "<table id=\"webhook-matrix\"><thead><tr><th>event type</th>";
  for (const json& v : verdicts)
    out += "<th class=\"num\">" + EscapeMarkup(v.get<std::string>()) + "</th>";
  out +=
      "<th class=\"num\">per min</th><th class=\"num\">p50</th><th "
      "class=\"num\">p99</th><th "
      "class=\"num\">evicted</th></tr></thead><tbody>";
  for (const json& r : rows) {
    const std::string type = r.value("type", "");
    out += fmt::format("<tr data-type=\"{}\">", EscapeMarkup(type)) + Td(type);
    for (const json& v : verdicts) {
      const long long n =
          r["counts"].value(v.get<std::string>(), static_cast<long long>(0));
      std::string cls = "num";
      if (n == 0) {
        cls += " zero";
      } else if (v != "ok" && v != "duplicate") {
        cls += " bad";
      }
      out += Td(fmt::format("{}", n), cls);
    }
    out += Td(Rate(r.value("per_minute", json())), "num");
    out += Td(Seconds(r.value("p50_seconds", json())), "num");
    out += Td(Seconds(r.value("p99_seconds", json())), "num");
    out += Td(fmt::format("{}", r.value("evicted", 0)), "num") + "</tr>";
  }
  out += "</tbody></table>";
  const long long hidden = w.value("hidden_types", 0);
  if (hidden > 0)
    out += fmt::format(
        "<p class=\"note\">{} event type{} with no deliveries "
        "hidden.</p>",
        hidden, hidden == 1 ? "" : "s");
  return out;
}

std::string Background(const json& st) {
  std::string out;
  for (const json& b : st.value("background", json::array())) {
    const std::string metric = b.value("metric", "");
    if (metric.rfind("polar_loadd_webhook_", 0) == 0) continue;
    if (b.value("total", 0) == 0) continue;
    std::string labels;
    const json label_set = b.value("labels", json::object());
    for (const auto& [k, v] : label_set.items())
      labels += fmt::format("{}{}={}", labels.empty() ? "" : " ", k,
                            v.get<std::string>());
    const bool histogram = b.value("type", "") == "histogram";
    out += "<tr>" + Td(metric) + Td(labels) +
           Td(Rate(b.value("per_minute", json())), "num") +
           Td(histogram ? Seconds(b.value("p50_seconds", json())) : "", "num") +
           Td(histogram ? Seconds(b.value("p99_seconds", json())) : "", "num") +
           Td(fmt::format("{}", b.value("total", 0)), "num") + "</tr>\n";
  }
  if (out.empty()) return Empty(6, "no completions measured yet");
  return out;
}

std::string Errors(const json& st) {
  std::string out;
  for (const json& e : st.value("errors", json::array())) {
    const long status = e.value("status", 0L);
    out += "<tr>" + Td(Age(e.value("last_seen_seconds_ago", 0.0)) + " ago") +
           Td(e.value("scenario", "") + " / " + e.value("step", "")) +
           Td(e.value("outcome", ""), "bad") +
           Td(status ? fmt::format("{}", status) : "–", "num") +
           Td(fmt::format("{}", e.value("count", 0)), "num") +
           Td(e.value("snippet", ""), "snippet") + "</tr>\n";
  }
  if (out.empty()) return Empty(6, "no failed requests since the start");
  return out;
}

}  // namespace

std::string RenderStatusPage(std::string_view page,
                             std::string_view status_json,
                             std::string_view now_utc) {
  const json st = json::parse(status_json, nullptr, false);
  std::map<std::string, std::string, std::less<>> parts;
  if (!st.is_discarded()) {
    const json r = st.value("last_reload", json::object());
    const std::string result = r.value("result", "none");
    std::string reload = result == "none"
                             ? "none since start"
                             : fmt::format("{} {} ago", result,
                                           Age(r.value("seconds_ago", 0.0)));
    if (result == "failure")
      reload += fmt::format(" ({} problems)", r.value("problems", 0));
    parts["version"] = EscapeMarkup(st.value("version", "") + " (" +
                                    st.value("revision", "") + ")");
    parts["uptime"] = EscapeMarkup(Age(st.value("uptime_seconds", 0.0)));
    parts["config"] = EscapeMarkup(st.value("config_path", ""));
    parts["reload"] = EscapeMarkup(reload);
    parts["in_flight"] = fmt::format("{}", st.value("in_flight", 0));
    parts["control"] = st.value("control_enabled", false)
                           ? "enabled (token required)"
                           : "disabled (no token configured)";
    parts["live"] = "as of " + EscapeMarkup(now_utc);
    parts["scenarios"] = Scenarios(st);
    parts["webhooks"] = Webhooks(st);
    parts["background"] = Background(st);
    parts["errors"] = Errors(st);
  }
  std::string out;
  out.reserve(page.size() + 8192);
  static constexpr std::string_view kOpen = "<!--server:";
  std::size_t at = 0;
  for (std::size_t hit; (hit = page.find(kOpen, at)) != page.npos;) {
    const std::size_t close = page.find("-->", hit);
    if (close == page.npos) break;
    out.append(page.substr(at, hit - at));
    const std::string_view name =
        page.substr(hit + kOpen.size(), close - hit - kOpen.size());
    auto part = parts.find(name);
    if (part != parts.end()) out += part->second;
    at = close + 3;
  }
  out.append(page.substr(at));
  return out;
}

}  // namespace polar
