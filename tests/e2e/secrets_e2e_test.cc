// End to end: the API token never leaves polar-loadd except in the
// Authorization header. Full runs that provoke every path a secret could leak
// through (401s from a target that echoes the Authorization header back in
// its body, 5xx and transport errors, a failed reload whose errors quote a
// new token, --check-config on such a file, a --once run with its summaries),
// then every output is searched for the secret: stderr and stdout (the logs;
// under systemd they are the journal), /metrics and every other path on the
// metrics listener, the sd_notify messages (the STATUS= line `systemctl
// status` shows), the summary text, JSON and JUnit. Each test also checks the
// secret really was echoed (the "[redacted]" marker) so it cannot pass by
// never provoking a leak.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "tests/support/notify_socket.h"
#include "tests/support/process.h"
#include "tests/support/test_http_server.h"

namespace polar::secrets_e2e {
namespace {

using namespace std::chrono_literals;
using testing::NotifySocket;
using testing::Process;
using testing::TestHttpServer;

// Tokens shaped like Polar's (polar_oat_ + 43 characters); each test uses its
// own so a leak is attributable.
const std::string kToken = "polar_oat_SecretFromTokenFile0123456789abcdefghijk";
const std::string kNewToken =
    "polar_oat_SecretOfAFailedReload0123456789abcdefghi";
const std::string kEnvToken =
    "polar_oat_SecretFromTheEnvironment0123456789abcdef";
// Webhook secrets shaped like Polar's (whsec_ + 43 characters).
const std::string kWebhookSecret =
    "whsec_SecretOfTheWebhookReceiver0123456789abcdefg";
const std::string kNewWebhookSecret =
    "whsec_SecretOfAFailedReloadsReceiver0123456789abc";

// A [webhooks] table with a literal secret; `extra` lines go inside it.
std::string WebhooksTable(const std::string& secret,
                          const std::string& extra = "") {
  return "[webhooks]\nlisten = \"127.0.0.1:0\"\nsecret = \"" + secret + "\"\n" +
         extra;
}

std::string Config(const std::string& base_url, const std::string& token_line,
                   const std::string& extra = "") {
  return fmt::format(R"([target]
base_url = "{}"
{}
timeout = "2s"

[metrics]
listen = "127.0.0.1:0"

[scenarios.ingest]
type = "event_ingestion"
rate = "20/s"
batch_size = 1
{}
)",
                     base_url, token_line, extra);
}

// Fails the test, naming where, for every secret found in `text`.
void ExpectNoSecret(const std::string& where, const std::string& text,
                    const std::vector<std::string>& secrets) {
  for (const std::string& secret : secrets) {
    const std::size_t at = text.find(secret);
    EXPECT_EQ(at, std::string::npos)
        << "a secret appears in " << where << ": ..."
        << text.substr(at > 80 ? at - 80 : 0, 200) << "...";
  }
}

TEST(Secrets,
     NoTokenInLogsMetricsStatusOrNotifyAfter401sErrorsAndAFailedReload) {
  const std::vector<std::string> secrets = {kToken, kNewToken, kWebhookSecret,
                                            kNewWebhookSecret};
  // A proxy that answers 401 with the Authorization header in its body.
  TestHttpServer echo(
      {.status = 401, .body = R"({"detail":"bad credentials: {AUTH}"})"});
  // Nothing listens on a port freed right away: connect errors, whose curl
  // messages carry the URL (not the token; checked anyway).
  std::string refused_url;
  {
    TestHttpServer gone({});
    refused_url = gone.base_url();
  }

  const std::string dir = testing::TempDir();
  const std::string token_file = dir + "/polar-token";
  testing::WriteFile(token_file, kToken + "\n");
  const std::string path = dir + "/polar-loadd.toml";
  const std::string token_line = "token_file = \"" + token_file + "\"";
  testing::WriteFile(
      path, Config(echo.base_url(), token_line, WebhooksTable(kWebhookSecret)));
  NotifySocket notify;
  Process loadd(POLAR_LOADD_BIN, {"--config", path},
                {{"NOTIFY_SOCKET", notify.path()}});
  ASSERT_TRUE(notify.WaitFor("READY=1", 0, 15s)) << loadd.Stderr();
  ASSERT_TRUE(loadd.WaitForStderr("http_4xx", 10s)) << loadd.Stderr();

  // A forged delivery whose body and headers carry the receiver's secret:
  // refused, counted, and never echoed into a log line.
  std::smatch wm;
  const std::string started = loadd.Stderr();
  ASSERT_TRUE(std::regex_search(
      started, wm,
      std::regex(R"(webhook receiver on (http://127\.0\.0\.1:[0-9]+))")))
      << started;
  const std::string receiver = wm[1].str();
  auto forged = testing::HttpRequest(
      "POST", receiver + "/webhooks/polar",
      R"({"type":"checkout.created","data":{"id":")" + kWebhookSecret + "\"}}",
      {"Content-Type: application/json", "webhook-id: " + kWebhookSecret,
       "webhook-timestamp: 1700000000",
       "webhook-signature: v1," + kWebhookSecret});
  EXPECT_EQ(forged.status / 100, 4) << forged.body << forged.error;
  ExpectNoSecret("the receiver's answer", forged.body, secrets);

  // A reload that fails: a new token and webhook secret in the file, and
  // errors that quote them (an unsupported scheme whose user part is the
  // token, unknown keys named after them). They are never used, and never
  // printed.
  std::size_t from = notify.size();
  testing::WriteFile(
      path,
      Config("ftp://" + kNewToken + "@127.0.0.1:1",
             "token = \"" + kNewToken + "\"\n" + kNewToken + " = 1",
             WebhooksTable(kNewWebhookSecret, kNewWebhookSecret + " = 1\n")));
  loadd.Signal(SIGHUP);
  ASSERT_TRUE(notify.WaitFor("READY=1", from, 10s)) << loadd.Stderr();
  ASSERT_TRUE(loadd.WaitForStderr("still running the previous", 5s));

  // A reload that works, to a target that refuses connections.
  from = notify.size();
  testing::WriteFile(
      path, Config(refused_url, token_line, WebhooksTable(kWebhookSecret)));
  loadd.Signal(SIGHUP);
  ASSERT_TRUE(notify.WaitFor("READY=1", from, 10s)) << loadd.Stderr();
  ASSERT_TRUE(loadd.WaitForStderr("connect_error", 10s)) << loadd.Stderr();

  // Everything the metrics listener serves, known paths or not.
  const std::string err = loadd.Stderr();
  std::regex re(R"(metrics on (http://127\.0\.0\.1:[0-9]+)/metrics)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(err, m, re)) << err;
  const std::string base = m[1].str();
  for (const std::string& p : std::vector<std::string>{
           "/metrics", "/", "/api/status", "/api/scenarios", "/" + kToken,
           "/" + kWebhookSecret}) {
    auto r = testing::HttpGet(base + p);
    EXPECT_NE(r.status, 0) << p << ": " << r.error;
    ExpectNoSecret("GET " + p, r.body, secrets);
  }
  auto metrics = testing::HttpGet(base + "/metrics");
  EXPECT_NE(metrics.body.find("outcome=\"http_4xx\""), std::string::npos);

  loadd.Signal(SIGTERM);
  EXPECT_EQ(loadd.Wait(15s), 0);
  const std::string log = loadd.Stderr();
  ExpectNoSecret("stderr (the log)", log, secrets);
  ExpectNoSecret("stdout", loadd.Stdout(), secrets);
  std::string sd;
  for (const auto& message : notify.Messages()) sd += message.text + "\n";
  EXPECT_NE(sd.find("STATUS="), std::string::npos) << sd;
  ExpectNoSecret("sd_notify messages", sd, secrets);
  // It was provoked: the echo and the reload's errors reached the log.
  EXPECT_NE(log.find("bad credentials: Bearer [redacted]"), std::string::npos)
      << log;
  EXPECT_NE(log.find("ftp://[redacted]@"), std::string::npos) << log;
  EXPECT_NE(log.find("webhooks.[redacted]"), std::string::npos) << log;
}

TEST(Secrets, CheckConfigNeverPrintsTheTokenItQuotes) {
  const std::string path = testing::TempDir() + "/bad.toml";
  testing::WriteFile(path, Config("ftp://" + kNewToken + "@127.0.0.1:1",
                                  "token = \"" + kNewToken + "\"",
                                  "max_in_flight = \"" + kNewToken + "\""));
  Process check(POLAR_LOADD_BIN, {"--check-config", "--config", path});
  EXPECT_EQ(check.Wait(10s), 78);
  const std::string out = check.Stdout() + check.Stderr();
  ExpectNoSecret("--check-config output", out, {kNewToken});
  EXPECT_NE(out.find("[redacted]"), std::string::npos) << out;
  EXPECT_NE(out.find("target.base_url"), std::string::npos) << out;
}

TEST(Secrets, NoTokenInTheOnceSummaryTextJsonOrJUnit) {
  TestHttpServer echo(
      {.status = 401, .body = R"({"detail":"bad credentials: {AUTH}"})"});
  const std::string dir = testing::TempDir();
  const std::string path = dir + "/once.toml";
  testing::WriteFile(path, Config(echo.base_url(), "", R"(
[scenarios.ingest.thresholds.ingest]
error_ratio = 0.01
)"));
  Process loadd(
      POLAR_LOADD_BIN,
      {"--config", path, "--once", "--duration", "1s", "--summary-json",
       dir + "/summary.json", "--junit", dir + "/junit.xml"},
      {{"LOAD_TEST_API_TOKEN", kEnvToken}});
  ASSERT_EQ(loadd.Wait(30s), 1) << loadd.Stderr();  // the 401s fail it
  const std::string out = loadd.Stdout();
  const std::string json = testing::ReadFile(dir + "/summary.json");
  const std::string junit = testing::ReadFile(dir + "/junit.xml");
  EXPECT_NE(out.find("FAIL ingest/ingest error ratio"), std::string::npos)
      << out;
  EXPECT_NE(json.find("http_4xx"), std::string::npos) << json;
  EXPECT_NE(junit.find("failures=\"1\""), std::string::npos) << junit;
  EXPECT_NE(loadd.Stderr().find("Bearer [redacted]"), std::string::npos)
      << loadd.Stderr();
  ExpectNoSecret("the summary (stdout)", out, {kEnvToken});
  ExpectNoSecret("stderr", loadd.Stderr(), {kEnvToken});
  ExpectNoSecret("summary.json", json, {kEnvToken});
  ExpectNoSecret("junit.xml", junit, {kEnvToken});
}

TEST(Secrets, NoSecretInTheRunReportEvenWrittenInTheConfigFile) {
  const std::string control = "control-token-in-the-file-0123456789abcdef";
  TestHttpServer echo(
      {.status = 401, .body = R"({"detail":"bad credentials: {AUTH}"})"});
  const std::string dir = testing::TempDir();
  const std::string path = dir + "/once.toml";
  testing::WriteFile(path,
                     "# token was " + kToken + "\n" +
                         Config(echo.base_url(), "token = \"" + kToken + "\"",
                                "\n[control]\ntoken = \"" + control + "\"\n\n" +
                                    WebhooksTable(kWebhookSecret)));
  Process loadd(POLAR_LOADD_BIN, {"--config", path, "--once", "--duration",
                                  "1s", "--report", dir + "/report.html"});
  ASSERT_EQ(loadd.Wait(30s), 0) << loadd.Stderr();  // no thresholds
  const std::string html = testing::ReadFile(dir + "/report.html");
  ExpectNoSecret("the run report", html, {kToken, control, kWebhookSecret});
  // The config is in it, with the values replaced.
  EXPECT_NE(html.find("# token was [redacted]"), std::string::npos);
  EXPECT_NE(html.find("token = &quot;[redacted]&quot;"), std::string::npos);
  EXPECT_NE(html.find("secret = &quot;[redacted]&quot;"), std::string::npos);
  EXPECT_NE(html.find("http_4xx"), std::string::npos);  // the 401s ran
}

}  // namespace
}  // namespace polar::secrets_e2e
