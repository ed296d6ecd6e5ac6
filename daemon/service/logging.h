// Logging setup for polar-loadd: native journal entries (priorities and
// structured fields) when systemd connected stderr to the journal, plain text
// otherwise; every line passes the secret redactor (exporters/log.h).
//
// SetupLogging() runs once in main() before anything logs; the sinks are
// thread-safe afterwards. The pieces are public so tests can build a logger
// around a capturing sink or a fake journal.
#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace polar {

enum class LogTarget {
  kJournal,   // stderr is systemd's journal stream: send native entries
  kTerminal,  // stderr is a tty: colours and timestamps
  kPlain,     // a file or pipe: timestamps, no colours
};

// systemd sets $JOURNAL_STREAM to "DEVICE:INODE" of the stream it connected
// to stdout/stderr. It is inherited by children whose stderr went elsewhere,
// so it only counts when it names `fd` itself (sd_journal_stream_fd(3)).
// `journal_stream` is the variable's value or null.
LogTarget DetectLogTarget(const char* journal_stream, int fd);

// Code logs with spdlog's macros (SPDLOG_INFO, SPDLOG_WARN, SPDLOG_ERROR, ...),
// not spdlog::info(): the macros pass the caller's file, line and function,
// which the journal shows as CODE_FILE (relative to the source root: the
// build maps it with -fmacro-prefix-map), CODE_LINE and CODE_FUNC.
// tests/package/log_calls_test.sh keeps it so.

// Installs the default logger "polar-loadd" for `target`.
void SetupLogging(LogTarget target);

// journald priority (syslog level) for an spdlog level: error 3, warn 4,
// info 6, debug/trace 7, critical 2.
int JournalPriority(spdlog::level::level_enum level);

// Writes each log line as one journal entry: MESSAGE, PRIORITY,
// SYSLOG_IDENTIFIER, CODE_FILE/CODE_LINE/CODE_FUNC when known, and the
// ScopedLogFields in effect. `send` receives "NAME=value" strings; the default
// calls sd_journal_sendv and falls back to stderr if journald refuses.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  using Sender = std::function<int(const std::vector<std::string>& fields)>;
  explicit JournalSink(std::string identifier, Sender send = {});

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  std::string identifier_;
  Sender send_;
};

// Passes every line to `inner` with registered secrets replaced by
// "[redacted]" (the payload is copied only when it holds a secret).
class RedactingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit RedactingSink(std::shared_ptr<spdlog::sinks::sink> inner)
      : inner_(std::move(inner)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override { inner_->flush(); }
  void set_pattern_(const std::string& pattern) override {
    inner_->set_pattern(pattern);
  }
  void set_formatter_(
      std::unique_ptr<spdlog::formatter> sink_formatter) override {
    inner_->set_formatter(std::move(sink_formatter));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace polar
