// The run report: one HTML file that runs only its own inlined scripts (each
// allowed by its SHA-256 in the page's Content-Security-Policy, no connection
// allowed at all), shows the configuration without a secret, and whose data
// cannot break out of its <script> element. Plus daemon.report in the config.
#include "exporters/report.h"

#include <gtest/gtest.h>

#include <regex>

#include "daemon/config/config.h"
#include "exporters/log.h"
#include "exporters/markup.h"
#include "exporters/web_assets.h"
#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using namespace std::chrono_literals;
using testing::FakeEnv;

ReportInput SmallReport() {
  ReportInput in;
  in.version = "0.1.0";
  in.revision = "abc";
  in.started = WallTime{std::chrono::seconds(1'796'400'000)};
  in.ended = in.started + 5min;
  in.mode = "--once --duration 5m";
  in.ended_by = "duration reached";
  in.summary.duration_seconds = 300;
  StepSummary step;
  step.scenario = "ingest";
  step.step = "ingest";
  step.count = 1500;
  step.outcomes[0] = 1497;
  step.outcomes[static_cast<std::size_t>(Outcome::kTimeout)] = 3;
  step.error_ratio = 0.002;
  step.latency = {0.0021, 0.004, 0.0123, 0.9};
  in.summary.steps.push_back(step);
  Threshold t{"ingest", "ingest", ThresholdMetric::kLatencyP99, 0.01,
              "scenarios.ingest.thresholds.ingest.p99"};
  in.summary.thresholds = EvaluateThresholds(in.summary.steps, {t});
  in.config_path = "/etc/polar-loadd/polar-loadd.toml";
  in.config_text = "[target]\nbase_url = \"http://127.0.0.1:8000\"\n";
  in.charts_json = R"({"scenarios":[],"start_ms":0,"now_ms":1})";
  return in;
}

// One escaper serves the report, the status page and the JUnit file: every
// character that could open a tag, end a quoted attribute (either quote) or
// start an entity becomes an entity, and nothing else changes.
TEST(Markup, EscapesWhatCouldOpenATagEndAnAttributeOrStartAnEntity) {
  EXPECT_EQ(EscapeMarkup(R"(<a href="x" title='y'>Tom & Jerry</a>)"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; "
            "Jerry&lt;/a&gt;");
  EXPECT_EQ(EscapeMarkup("p99 <= 1.00s, caf\xc3\xa9"),
            "p99 &lt;= 1.00s, caf\xc3\xa9");
  EXPECT_EQ(EscapeMarkup(""), "");
}

TEST(Report, RunsOnlyItsOwnInlineScriptsAndConnectsNowhere) {
  const std::string html = FormatReportHtml(SmallReport());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      html, m,
      std::regex("<meta http-equiv=\"Content-Security-Policy\" "
                 "content=\"([^\"]*)\">")));
  const std::string policy = m[1];
  EXPECT_EQ(policy.rfind("default-src 'none';", 0), 0u) << policy;
  EXPECT_EQ(policy.find("connect-src"), std::string::npos);  // none: default
  EXPECT_EQ(policy.find("unsafe-inline"), std::string::npos);
  // Every executable script is inline and allowed by its own hash; the data
  // block is not a script. (Found by hand: std::regex recurses per
  // character and Chart.js is 195 KiB.)
  auto element = [&](const std::string& tag, std::size_t from,
                     std::string* attrs, std::string* body) -> std::size_t {
    const std::size_t open = html.find("<" + tag, from);
    if (open == std::string::npos) return open;
    const std::size_t gt = html.find('>', open);
    const std::size_t close = html.find("</" + tag + ">", gt);
    *attrs = html.substr(open + 1 + tag.size(), gt - open - 1 - tag.size());
    *body = html.substr(gt + 1, close - gt - 1);
    return close;
  };
  int scripts = 0;
  std::string attrs, body;
  for (std::size_t at = 0;
       (at = element("script", at, &attrs, &body)) != std::string::npos;) {
    if (attrs == " type=\"application/json\" id=\"report-data\"") continue;
    EXPECT_EQ(attrs, "");  // no src=: nothing to fetch
    EXPECT_NE(policy.find("'sha256-" + Sha256Base64(body) + "'"),
              std::string::npos);
    ++scripts;
  }
  EXPECT_EQ(scripts, 3);  // Chart.js, the charts, the report's own
  EXPECT_NE(html.find(std::string(ChartJsLibrary())), std::string::npos);
  ASSERT_NE(element("style", 0, &attrs, &body), std::string::npos);
  EXPECT_NE(policy.find("style-src 'sha256-" + Sha256Base64(body) + "'"),
            std::string::npos);
  // No reference to anything outside the file.
  EXPECT_EQ(html.find(" src="), std::string::npos);
  EXPECT_EQ(html.find(" href="), std::string::npos);
}

TEST(Report, ShowsTheVerdictSummaryAndThresholds) {
  const std::string html = FormatReportHtml(SmallReport());
  EXPECT_NE(html.find("<span class=\"verdict fail\" id=\"verdict\">failed"),
            std::string::npos);
  EXPECT_NE(html.find("<h2>Thresholds: 0 of 1 held</h2>"), std::string::npos);
  EXPECT_NE(html.find("12.3ms"), std::string::npos);  // the p99 that failed
  EXPECT_NE(html.find("timeout 3"), std::string::npos);
  EXPECT_NE(html.find("scenarios.ingest.thresholds.ingest.p99"),
            std::string::npos);
}

TEST(Report, TheDataCannotCloseItsScriptElement) {
  ReportInput in = SmallReport();
  in.charts_json =
      R"js({"scenarios":[{"name":"</script><script>alert(1)"}]})js";
  const std::string html = FormatReportHtml(in);
  EXPECT_EQ(html.find("</script><script>alert"), std::string::npos);
  EXPECT_NE(html.find("\\u003c/script>\\u003cscript>alert(1)"),
            std::string::npos);
}

TEST(Report, TheConfigurationHasNoSecretEvenOnesNotRegistered) {
  const std::string token = "polar_oat_TokenInTheFile0123456789abcdefghijklmno";
  const std::string control = "control-token-0123456789abcdef";
  const std::string webhook = "whsec_WebhookSecret0123456789abcdefghijklmnop";
  const std::string from_file =
      "polar_oat_ReadFromATokenFile0123456789abcdefgh";
  const std::string text = "# the old token was " + token + "\n[target]\n" +
                           "token = \"" + token + "\"\n[control]\ntoken = '" +
                           control + "'\n[webhooks]\nsecret = \"\"\"" +
                           webhook + "\"\"\"\n[scenarios.ingest]\n" +
                           "type = \"event_ingestion\"  # " + from_file + "\n";
  const std::string redacted = RedactConfigText(text);
  for (const std::string& s : {token, control, webhook})
    EXPECT_EQ(redacted.find(s), std::string::npos) << s << "\n" << redacted;
  EXPECT_NE(redacted.find("token = \"[redacted]\""), std::string::npos);
  EXPECT_NE(redacted.find("# the old token was [redacted]"), std::string::npos);
  EXPECT_NE(redacted.find("type = \"event_ingestion\""), std::string::npos);
  // A secret from a file is not in the text's keys: the report redacts every
  // secret the daemon registered on top.
  RegisterSecret(from_file);
  ReportInput in = SmallReport();
  in.config_text = redacted;
  in.notes = {"token from " + from_file};
  const std::string html = FormatReportHtml(in);
  ClearSecretsForTesting();
  for (const std::string& s : {token, control, webhook, from_file})
    EXPECT_EQ(html.find(s), std::string::npos) << s;
  EXPECT_NE(html.find("token = &quot;[redacted]&quot;"), std::string::npos);
  EXPECT_NE(html.find("<li>token from [redacted]</li>"), std::string::npos);
}

TEST(Report, APathTakesTheRunsStartSoScheduledRunsKeepOneEach) {
  const WallTime start{std::chrono::seconds(1'796'416'533)};
  EXPECT_EQ(ExpandReportPath("/var/lib/polar-loadd/run-{start}.html", start),
            "/var/lib/polar-loadd/run-20261204T203533Z.html");
  EXPECT_EQ(ExpandReportPath("report.html", start), "report.html");
}

TEST(Report, DaemonReportIsAFileNotADirectory) {
  const std::string base =
      "[target]\ntoken = \"polar_oat_x0123456789\"\n"
      "[scenarios.a]\ntype = \"event_ingestion\"\nrate = \"1/s\"\n";
  ConfigResult ok = ParseConfig(
      base + "[daemon]\nreport = \"/var/lib/polar-loadd/run-{start}.html\"\n",
      "t.toml", FakeEnv());
  ASSERT_TRUE(ok.config) << ok.errors.front().ToString();
  EXPECT_EQ(ok.config->daemon.report, "/var/lib/polar-loadd/run-{start}.html");
  EXPECT_NE(ok.config->text.find("[daemon]"), std::string::npos);
  ConfigResult dir =
      ParseConfig(base + "[daemon]\nreport = \"/var/lib/polar-loadd/\"\n",
                  "t.toml", FakeEnv());
  ASSERT_EQ(dir.errors.size(), 1u);
  EXPECT_EQ(dir.errors[0].ToString(),
            "t.toml:7:10: daemon.report: \"/var/lib/polar-loadd/\" is a "
            "directory; name the report file, e.g. "
            "\"/var/lib/polar-loadd/run-{start}.html\"");
  ConfigResult empty =
      ParseConfig(base + "[daemon]\nreport = \"\"\n", "t.toml", FakeEnv());
  ASSERT_EQ(empty.errors.size(), 1u);
  EXPECT_EQ(empty.errors[0].key, "daemon.report");
}

}  // namespace
}  // namespace polar
