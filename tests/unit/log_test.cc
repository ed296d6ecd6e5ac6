// Log hygiene: rate limits, secret redaction through every error path, the
// journal sink's fields and the journal detection.
#include "exporters/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "daemon/config/config.h"
#include "daemon/service/logging.h"
#include "scenarios/scenario.h"
#include "tests/support/process.h"

namespace polar {
namespace {

using namespace std::chrono_literals;
using Time = LogLimiter::Time;

TEST(LogLimiter, ABurstPassesThenOneMessagePerRefillInterval) {
  LogLimiter limiter({.burst = 3, .refill = 10s, .max_keys = 16});
  Time t0{};
  uint64_t suppressed = 99;
  int passed = 0;
  for (int i = 0; i < 100; ++i) passed += limiter.Allow("k", t0, &suppressed);
  EXPECT_EQ(passed, 3);
  EXPECT_FALSE(limiter.Allow("k", t0 + 9s, &suppressed));
  EXPECT_TRUE(limiter.Allow("k", t0 + 10s, &suppressed));
  EXPECT_FALSE(limiter.Allow("k", t0 + 11s, &suppressed));
}

TEST(LogLimiter, TheNextMessageThatPassesSaysHowManyWereSuppressed) {
  LogLimiter limiter({.burst = 1, .refill = 1s, .max_keys = 16});
  Time t0{};
  uint64_t suppressed = 99;
  ASSERT_TRUE(limiter.Allow("k", t0, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  for (int i = 0; i < 41; ++i)
    EXPECT_FALSE(limiter.Allow("k", t0, &suppressed));
  ASSERT_TRUE(limiter.Allow("k", t0 + 1s, &suppressed));
  EXPECT_EQ(suppressed, 41u);
  EXPECT_EQ(SuppressedSuffix(41), " (suppressed 41 similar messages)");
  EXPECT_EQ(SuppressedSuffix(0), "");
}

TEST(LogLimiter, KeysAreLimitedIndependently) {
  LogLimiter limiter({.burst = 1, .refill = 1h, .max_keys = 16});
  uint64_t suppressed = 0;
  EXPECT_TRUE(limiter.Allow("a/ingest/timeout", Time{}, &suppressed));
  EXPECT_FALSE(limiter.Allow("a/ingest/timeout", Time{}, &suppressed));
  EXPECT_TRUE(limiter.Allow("a/ingest/http_5xx", Time{}, &suppressed));
}

TEST(LogLimiter, AStormThatStoppedIsStillReportedByFlush) {
  LogLimiter limiter({.burst = 1, .refill = 1s, .max_keys = 16});
  uint64_t suppressed = 0;
  limiter.Allow("k", Time{}, &suppressed);
  for (int i = 0; i < 7; ++i) limiter.Allow("k", Time{}, &suppressed);
  std::vector<std::pair<std::string, uint64_t>> reported;
  auto report = [&](const std::string& key, uint64_t n) {
    reported.emplace_back(key, n);
  };
  limiter.Flush(Time{} + 500ms, report);  // no token yet
  EXPECT_TRUE(reported.empty());
  limiter.Flush(Time{} + 1s, report);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0], (std::pair<std::string, uint64_t>{"k", 7}));
  limiter.Flush(Time{} + 10s, report);  // nothing new to report
  EXPECT_EQ(reported.size(), 1u);
}

TEST(LogLimiter, MemoryStaysBoundedWhateverKeysCallersInvent) {
  LogLimiter limiter({.burst = 2, .refill = 1h, .max_keys = 4});
  uint64_t suppressed = 0;
  int passed = 0;
  for (int i = 0; i < 1000; ++i)
    passed += limiter.Allow("key-" + std::to_string(i), Time{}, &suppressed);
  // The first 4 keys get buckets of their own (one message each here); the
  // other 996 share one overflow bucket, which passes its burst of 2.
  EXPECT_EQ(passed, 4 + 2);
}

TEST(Redaction, ARegisteredSecretIsReplacedWhereverItAppears) {
  ClearSecretsForTesting();
  RegisterSecret("polar_oat_abcdefghijklmnop");
  EXPECT_EQ(Redact("Bearer polar_oat_abcdefghijklmnop and "
                   "xpolar_oat_abcdefghijklmnopx"),
            "Bearer [redacted] and x[redacted]x");
  EXPECT_TRUE(ContainsSecret("..polar_oat_abcdefghijklmnop.."));
  EXPECT_FALSE(ContainsSecret("polar_oat_abcdefghijklmno"));
  ClearSecretsForTesting();
}

TEST(Redaction, TooShortSecretsAreNotScrubbedFromEveryLine) {
  ClearSecretsForTesting();
  RegisterSecret("t");
  EXPECT_EQ(Redact("the text stays"), "the text stays");
  ClearSecretsForTesting();
}

// A logger like the daemon's (RedactingSink in front of the real sink) that
// writes into a string.
struct CapturingLogger {
  CapturingLogger() {
    auto inner = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<RedactingSink>(inner));
    logger->set_pattern("%l %v");
    previous = spdlog::default_logger();
    spdlog::set_default_logger(logger);
  }
  ~CapturingLogger() { spdlog::set_default_logger(previous); }
  std::string text() {
    logger->flush();
    return out.str();
  }
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  std::shared_ptr<spdlog::logger> previous;
};

TEST(Redaction, TheTokenNeverReachesTheLogThroughAnyErrorPath) {
  ClearSecretsForTesting();
  const std::string token = "polar_oat_S3cr3tT0kenForRedactionTest0123456789";
  CapturingLogger log;

  // 1. An invalid config that holds the token: every error is logged.
  ConfigResult r = ParseConfig(
      "[target]\ntoken = \"" + token + "\"\nbase_url = \"ftp://" + token +
          "@example\"\ntimeout = \"soon\"\n[scenarios.x]\ntype = \"nope\"\n",
      "bad.toml", [](const char*) { return std::nullopt; });
  ASSERT_FALSE(r.config);
  ASSERT_FALSE(r.errors.empty());
  for (const std::string& s : r.secrets) RegisterSecret(s);
  for (const ConfigError& e : r.errors) spdlog::error("{}", e.ToString());

  // 2. A failed request whose transport error and body echo the token (a
  // proxy or a target that reflects the Authorization header).
  prometheus::Registry registry;
  Metrics metrics(registry);
  StepRecorder recorder(metrics, "redaction-test", "ingest");
  Response response;
  response.status = 401;
  response.body = R"({"detail":"invalid token Bearer )" + token + R"("})";
  response.error = "proxy said: Authorization: Bearer " + token;
  response.done = std::chrono::steady_clock::now();
  recorder.Record(Outcome::kHttp4xx, response);

  // 3. Structured journal fields carrying it.
  std::vector<std::string> journal;
  JournalSink sink("polar-loadd", [&](const std::vector<std::string>& f) {
    journal.insert(journal.end(), f.begin(), f.end());
    return 0;
  });
  {
    ScopedLogFields fields({{"POLAR_DETAIL", "token=" + token}});
    spdlog::logger journal_logger(
        "j", std::make_shared<RedactingSink>(
                 std::shared_ptr<JournalSink>(&sink, [](JournalSink*) {})));
    journal_logger.error("upstream echoed {}", token);
  }

  std::string text = log.text();
  EXPECT_EQ(text.find(token), std::string::npos) << text;
  EXPECT_NE(text.find("[redacted]"), std::string::npos) << text;
  EXPECT_NE(text.find("redaction-test"), std::string::npos)
      << "the failed request must be logged: " << text;
  EXPECT_NE(text.find("bad.toml:4:11: target.timeout"), std::string::npos)
      << text;
  for (const std::string& field : journal) {
    EXPECT_EQ(field.find(token), std::string::npos) << field;
  }
  ClearSecretsForTesting();
}

TEST(JournalSink, EachLineIsOneEntryWithPriorityIdentifierAndFields) {
  std::vector<std::vector<std::string>> entries;
  auto sink = std::make_shared<JournalSink>(
      "polar-loadd", [&](const std::vector<std::string>& fields) {
        entries.push_back(fields);
        return 0;
      });
  spdlog::logger logger("j", sink);
  logger.set_pattern("%v");
  {
    ScopedLogFields outer({{"POLAR_SCENARIO", "ingest"}});
    ScopedLogFields inner({{"POLAR_OUTCOME", "timeout"}});
    logger.error("scenario ingest step ingest: timeout");
  }
  logger.warn("after the scope");
  logger.info("info");
  ASSERT_EQ(entries.size(), 3u);
  auto has = [](const std::vector<std::string>& e, const std::string& f) {
    return std::find(e.begin(), e.end(), f) != e.end();
  };
  EXPECT_TRUE(has(entries[0], "MESSAGE=scenario ingest step ingest: timeout"));
  EXPECT_TRUE(has(entries[0], "PRIORITY=3"));
  EXPECT_TRUE(has(entries[0], "SYSLOG_IDENTIFIER=polar-loadd"));
  EXPECT_TRUE(has(entries[0], "POLAR_SCENARIO=ingest"));
  EXPECT_TRUE(has(entries[0], "POLAR_OUTCOME=timeout"));
  EXPECT_TRUE(has(entries[1], "PRIORITY=4"));
  EXPECT_FALSE(has(entries[1], "POLAR_SCENARIO=ingest"))
      << "fields end with their scope";
  EXPECT_TRUE(has(entries[2], "PRIORITY=6"));
}

TEST(JournalSink, EntriesNameTheCallersFileLineAndFunctionFromTheSourceRoot) {
  // What the daemon's code writes: SPDLOG_INFO etc. on the default logger,
  // through the redacting sink, as SetupLogging(kJournal) builds it.
  std::vector<std::vector<std::string>> entries;
  auto journal = std::make_shared<JournalSink>(
      "polar-loadd", [&](const std::vector<std::string>& fields) {
        entries.push_back(fields);
        return 0;
      });
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "polar-loadd", std::make_shared<RedactingSink>(journal));
  logger->set_pattern("%v");  // as SetupLogging(kJournal) sets it
  spdlog::set_default_logger(logger);
  const int line = __LINE__ + 1;
  SPDLOG_WARN("a warning from {}", "the test");
  const std::string function = __FUNCTION__;
  spdlog::set_default_logger(previous);
  ASSERT_EQ(entries.size(), 1u);
  auto field = [&](const std::string& name) {
    std::string value;
    int seen = 0;
    for (const auto& f : entries[0]) {
      if (f.rfind(name + "=", 0) == 0) {
        value = f.substr(name.size() + 1);
        ++seen;
      }
    }
    EXPECT_EQ(seen, 1) << name << " appears " << seen << " times";
    return value;
  };
  // Relative to the source root (-fmacro-prefix-map), not the build machine's
  // checkout, and the caller's, not the sink's.
  EXPECT_EQ(field("CODE_FILE"), "tests/unit/log_test.cc");
  EXPECT_EQ(field("CODE_LINE"), std::to_string(line));
  EXPECT_EQ(field("CODE_FUNC"), function);
  EXPECT_EQ(field("MESSAGE"), "a warning from the test");
}

TEST(LogTarget, TheJournalIsUsedOnlyWhenJournalStreamNamesStderrItself) {
  std::string dir = testing::TempDir();
  int fd = open((dir + "/stderr").c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  std::string mine =
      std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  std::string other =
      std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  EXPECT_EQ(DetectLogTarget(mine.c_str(), fd), LogTarget::kJournal);
  // Inherited from a parent whose stderr went to the journal: not ours.
  EXPECT_EQ(DetectLogTarget(other.c_str(), fd), LogTarget::kPlain);
  EXPECT_EQ(DetectLogTarget(nullptr, fd), LogTarget::kPlain);
  EXPECT_EQ(DetectLogTarget("garbage", fd), LogTarget::kPlain);
  close(fd);
}

}  // namespace
}  // namespace polar
