// The [webhooks] table: defaults, every key, the secret forms, registration
// URLs, and that the secret reaches the redactor but no error message.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "daemon/config/config.h"
#include "tests/support/process.h"
#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using testing::FakeEnv;

using namespace std::chrono_literals;

constexpr std::string_view kWebhookBase = R"(
[target]
base_url = "http://127.0.0.1:8000"
token = "polar_oat_secret"

[metrics]
listen = "127.0.0.1:0"

[scenarios.ingest]
type = "event_ingestion"
rate = "1/s"
)";

constexpr std::string_view kConfigSecret =
    "whsec_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u";

ConfigResult Parse(std::string_view webhooks) {
  return ParseConfig(std::string(kWebhookBase) + std::string(webhooks),
                     "test.toml", FakeEnv());
}

std::string AllErrors(const ConfigResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.ToString() + "\n";
  return out;
}

TEST(WebhookConfig, NoTableMeansNoReceiver) {
  ConfigResult r = Parse("");
  ASSERT_TRUE(r.config) << AllErrors(r);
  EXPECT_FALSE(r.config->webhooks.enabled);
}

TEST(WebhookConfig, DefaultsAreLoopbackAndPolarsOwnRules) {
  ConfigResult r = Parse(std::string("[webhooks]\nsecret = \"") +
                         std::string(kConfigSecret) + "\"\n");
  ASSERT_TRUE(r.config) << AllErrors(r);
  const WebhooksConfig& w = r.config->webhooks;
  EXPECT_TRUE(w.enabled);
  EXPECT_EQ(w.listen.ToString(), "127.0.0.1:9478");
  EXPECT_EQ(w.secret_format, WebhookSecretFormat::kPolar);
  EXPECT_EQ(w.key, kConfigSecret);  // Polar's key: the whole string
  EXPECT_EQ(w.tolerance, 5min);
  EXPECT_EQ(w.deadline, 10min);
  EXPECT_EQ(w.unmatched_after, 10s);
  EXPECT_EQ(w.max_body_bytes, 256u * 1024);
  EXPECT_EQ(w.max_header_bytes, 16u * 1024);
  EXPECT_EQ(w.remember_ids, 100'000u);
  EXPECT_EQ(w.max_expectations, 100'000u);
  EXPECT_TRUE(w.register_url.empty());
  // The secret goes to the redactor (with and without its prefix).
  EXPECT_NE(std::find(r.secrets.begin(), r.secrets.end(), kConfigSecret),
            r.secrets.end());
  EXPECT_NE(
      std::find(r.secrets.begin(), r.secrets.end(), kConfigSecret.substr(6)),
      r.secrets.end());
}

TEST(WebhookConfig, EveryKeyIsRead) {
  ConfigResult r = Parse(R"(
[webhooks]
listen = "[::1]:0"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
secret_format = "standard"
tolerance = "30s"
max_body_bytes = 65536
max_header_bytes = 4096
remember_ids = 5000
deadline = "2m"
max_expectations = 777
unmatched_after = "3s"
)");
  ASSERT_TRUE(r.config) << AllErrors(r);
  const WebhooksConfig& w = r.config->webhooks;
  EXPECT_TRUE(w.listen.ipv6);
  EXPECT_EQ(w.secret_format, WebhookSecretFormat::kStandard);
  EXPECT_EQ(w.key.size(), 24u);  // base64-decoded
  EXPECT_EQ(w.tolerance, 30s);
  EXPECT_EQ(w.max_body_bytes, 65536u);
  EXPECT_EQ(w.max_header_bytes, 4096u);
  EXPECT_EQ(w.remember_ids, 5000u);
  EXPECT_EQ(w.deadline, 2min);
  EXPECT_EQ(w.max_expectations, 777u);
  EXPECT_EQ(w.unmatched_after, 3s);
}

TEST(WebhookConfig, TheSecretFileHoldsTheWholeWhsecString) {
  std::string dir = testing::TempDir();
  testing::WriteFile(dir + "/webhook-secret",
                     std::string(kConfigSecret) + "\n");
  ConfigResult r =
      Parse("[webhooks]\nsecret_file = \"" + dir + "/webhook-secret\"\n");
  ASSERT_TRUE(r.config) << AllErrors(r);
  EXPECT_EQ(r.config->webhooks.key, kConfigSecret);  // newline trimmed
  ConfigResult missing =
      Parse("[webhooks]\nsecret_file = \"" + dir + "/nope\"\n");
  EXPECT_FALSE(missing.config);
  EXPECT_NE(AllErrors(missing).find("webhooks.secret_file"), std::string::npos);
}

TEST(WebhookConfig, ProblemsAreReportedWithoutEverQuotingTheSecret) {
  const std::string short_secret = "whsec_shortbutsecret";
  ConfigResult r = Parse(R"(
[webhooks]
secret = ")" + short_secret +
                         R"("
secret_file = "/x"
secret_format = "hex"
tolerance = "2h"
max_body_bytes = 10
max_header_bytes = 1000000
deadline = "0s"
colour = "blue"
)");
  EXPECT_FALSE(r.config);
  std::string all = AllErrors(r);
  for (const char* key :
       {"test.toml:", "webhooks.secret:", "webhooks.secret_format",
        "webhooks.tolerance", "webhooks.max_body_bytes",
        "webhooks.max_header_bytes", "webhooks.deadline", "webhooks.colour"}) {
    EXPECT_NE(all.find(key), std::string::npos) << key << "\n" << all;
  }
  ConfigResult too_short =
      Parse("[webhooks]\nsecret = \"" + short_secret + "\"\n");
  std::string msg = AllErrors(too_short);
  EXPECT_NE(msg.find("shorter than 32"), std::string::npos) << msg;
  for (const std::string& text : {all, msg}) {
    EXPECT_EQ(text.find("shortbutsecret"), std::string::npos) << text;
  }
  // Redacted even though the config is invalid.
  EXPECT_NE(std::find(too_short.secrets.begin(), too_short.secrets.end(),
                      short_secret),
            too_short.secrets.end());
}

TEST(WebhookConfig, ASecretOrARegisterUrlIsRequired) {
  ConfigResult r = Parse("[webhooks]\nlisten = \"127.0.0.1:0\"\n");
  EXPECT_FALSE(r.config);
  EXPECT_NE(AllErrors(r).find("register_url"), std::string::npos)
      << AllErrors(r);
}

TEST(WebhookConfig, RegisterUrlsMustBePublicHttpsUnlessLoopbackIsAllowed) {
  ConfigResult ok = Parse(
      "[webhooks]\nregister_url = "
      "\"https://loadbox.example.org/webhooks/polar\"\n");
  ASSERT_TRUE(ok.config) << AllErrors(ok);
  EXPECT_EQ(ok.config->webhooks.register_url,
            "https://loadbox.example.org/webhooks/polar");
  EXPECT_TRUE(ok.config->webhooks.key.empty());

  for (const char* url :
       {"http://loadbox.example.org/webhooks/polar",
        "https://127.0.0.1:9478/webhooks/polar",
        "https://localhost/webhooks/polar", "https://[::1]:9478/x",
        "https://10.1.2.3/x", "https://192.168.0.4/x", "https://172.20.0.1/x",
        "ftp://example.org/x", "not a url"}) {
    ConfigResult r =
        Parse(std::string("[webhooks]\nregister_url = \"") + url + "\"\n");
    EXPECT_FALSE(r.config) << url;
    EXPECT_NE(AllErrors(r).find("webhooks.register_url"), std::string::npos)
        << url << ": " << AllErrors(r);
  }
  // polar-sim with --allow-loopback-webhooks: an explicit opt-in.
  for (const char* url : {"http://127.0.0.1:9478/webhooks/polar",
                          "https://localhost:9478/webhooks/polar",
                          "http://[::1]:9478/webhooks/polar"}) {
    ConfigResult r = Parse(std::string("[webhooks]\nregister_url = \"") + url +
                           "\"\nregister_allow_loopback = true\n");
    EXPECT_TRUE(r.config) << url << ": " << AllErrors(r);
  }
  // ... which still refuses private and public http URLs.
  ConfigResult r = Parse(
      "[webhooks]\nregister_url = \"http://10.0.0.1/x\"\n"
      "register_allow_loopback = true\n");
  EXPECT_FALSE(r.config);
}

TEST(WebhookConfig, RegistrationTakesTheSecretFromPolarNotFromTheFile) {
  ConfigResult r = Parse(std::string("[webhooks]\nsecret = \"") +
                         std::string(kConfigSecret) +
                         "\"\nregister_url = \"https://a.example.org/w\"\n");
  EXPECT_FALSE(r.config);
  EXPECT_NE(AllErrors(r).find("comes from Polar"), std::string::npos)
      << AllErrors(r);
  ConfigResult lonely = Parse(std::string("[webhooks]\nsecret = \"") +
                              std::string(kConfigSecret) +
                              "\"\nregister_allow_loopback = true\n");
  EXPECT_FALSE(lonely.config);
}

TEST(WebhookConfig, TheReceiverNeedsItsOwnAddress) {
  ConfigResult r = ParseConfig(R"(
[target]
token = "polar_oat_secret"
[metrics]
listen = "127.0.0.1:9999"
[webhooks]
listen = "127.0.0.1:9999"
secret = "whsec_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u"
[scenarios.ingest]
type = "event_ingestion"
rate = "1/s"
)",
                               "test.toml", FakeEnv());
  EXPECT_FALSE(r.config);
  EXPECT_NE(AllErrors(r).find("webhooks.listen"), std::string::npos)
      << AllErrors(r);
}

TEST(WebhookConfig, TheShippedExampleDocumentsEveryKeyWithValidDefaults) {
  // The example ships [webhooks] enabled against polar-sim (registration of
  // its own loopback URL) and every other key commented out with its
  // default. Those defaults, uncommented, with the secret file pointed at a
  // real file and registration left out (it replaces the secret), must
  // parse to the parser's defaults, and every key the parser knows must be
  // there.
  std::ifstream in(std::string(POLAR_SOURCE_DIR) +
                   "/packaging/polar-loadd.toml");
  std::stringstream text;
  text << in.rdbuf();
  std::string dir = testing::TempDir();
  testing::WriteFile(dir + "/webhook-secret", std::string(kConfigSecret));
  std::string table;
  std::set<std::string> keys;
  std::map<std::string, std::string> set_keys;  // not commented out
  std::regex key_line(R"(^(# )?([a-z_]+) = (.*)$)");
  bool inside = false;
  std::string line;
  while (std::getline(text, line)) {
    if (line == "[webhooks]") {
      inside = true;
      table += "[webhooks]\n";
      continue;
    }
    if (!inside) continue;
    if (!line.empty() && line[0] == '[') break;  // the next real table
    std::smatch m;
    if (!std::regex_match(line, m, key_line)) continue;
    keys.insert(m[2]);
    if (!m[1].matched) set_keys[m[2]] = m[3];
    if (m[2] == "register_url" || m[2] == "register_allow_loopback" ||
        m[2] == "secret")
      continue;
    if (m[2] == "secret_file") {
      table += "secret_file = \"" + dir + "/webhook-secret\"\n";
      continue;
    }
    table += m[2].str() + " = " + m[3].str() + "\n";
  }
  ASSERT_TRUE(inside) << "no [webhooks] table in the example";
  // What is set: the receiver and its registration in polar-sim, on the
  // listener the URL names.
  EXPECT_EQ(set_keys,
            (std::map<std::string, std::string>{
                {"listen", "\"127.0.0.1:9478\""},
                {"register_url", "\"http://127.0.0.1:9478/webhooks/polar\""},
                {"register_allow_loopback", "true"}}));
  // The defaults the example shows are the parser's defaults.
  ConfigResult shown = Parse(table);
  ASSERT_TRUE(shown.config) << AllErrors(shown) << table;
  ConfigResult defaults =
      Parse("[webhooks]\nsecret_file = \"" + dir + "/webhook-secret\"\n");
  ASSERT_TRUE(defaults.config) << AllErrors(defaults);
  const WebhooksConfig& a = shown.config->webhooks;
  const WebhooksConfig& b = defaults.config->webhooks;
  EXPECT_EQ(a.listen.ToString(), b.listen.ToString());
  EXPECT_EQ(a.secret_format, b.secret_format);
  EXPECT_EQ(a.tolerance, b.tolerance);
  EXPECT_EQ(a.max_body_bytes, b.max_body_bytes);
  EXPECT_EQ(a.max_header_bytes, b.max_header_bytes);
  EXPECT_EQ(a.remember_ids, b.remember_ids);
  EXPECT_EQ(a.deadline, b.deadline);
  EXPECT_EQ(a.max_expectations, b.max_expectations);
  EXPECT_EQ(a.unmatched_after, b.unmatched_after);
  // Every key the parser accepts is documented (an unknown one would have
  // failed above). The parser's list, from its own error message:
  ConfigResult unknown = Parse("[webhooks]\nnope = 1\n");
  std::smatch allowed;
  std::string msg = AllErrors(unknown);
  ASSERT_TRUE(
      std::regex_search(msg, allowed, std::regex("allowed here: ([a-z_, ]+)")))
      << msg;
  std::stringstream list(allowed[1].str());
  std::string key;
  while (std::getline(list, key, ',')) {
    key.erase(0, key.find_first_not_of(' '));
    EXPECT_TRUE(keys.count(key))
        << "webhooks." << key << " is not in packaging/polar-loadd.toml";
  }
}

}  // namespace
}  // namespace polar
