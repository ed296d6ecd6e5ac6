#include "daemon/service/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <sys/stat.h>
#include <sys/uio.h>
// Without this sd-journal.h turns sd_journal_sendv() into a macro that adds
// CODE_FILE/CODE_LINE/CODE_FUNC of the line calling it: this file, on the
// build machine's path, for every entry. The caller's come from spdlog's
// source location instead (JournalSink::sink_it_).
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>

#include "exporters/log.h"

namespace polar {

LogTarget DetectLogTarget(const char* journal_stream, int fd) {
  if (journal_stream && *journal_stream) {
    uintmax_t dev = 0;
    uintmax_t ino = 0;
    struct stat st {};
    if (std::sscanf(journal_stream, "%" SCNuMAX ":%" SCNuMAX, &dev, &ino) ==
            2 &&
        fstat(fd, &st) == 0 && static_cast<uintmax_t>(st.st_dev) == dev &&
        static_cast<uintmax_t>(st.st_ino) == ino) {
      return LogTarget::kJournal;
    }
  }
  return isatty(fd) ? LogTarget::kTerminal : LogTarget::kPlain;
}

int JournalPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical:
      return 2;  // LOG_CRIT
    case spdlog::level::err:
      return 3;  // LOG_ERR
    case spdlog::level::warn:
      return 4;  // LOG_WARNING
    case spdlog::level::info:
      return 6;  // LOG_INFO
    default:
      return 7;  // LOG_DEBUG
  }
}

namespace {

int SendToJournal(const std::vector<std::string>& fields) {
  std::vector<iovec> iov(fields.size());
  for (std::size_t i = 0; i < fields.size(); ++i) {
    iov[i].iov_base = const_cast<char*>(fields[i].data());
    iov[i].iov_len = fields[i].size();
  }
  return sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

}  // namespace

JournalSink::JournalSink(std::string identifier, Sender send)
    : identifier_(std::move(identifier)),
      send_(send ? std::move(send) : Sender(&SendToJournal)) {}

void JournalSink::sink_it_(const spdlog::details::log_msg& msg) {
  std::vector<std::string> fields;
  fields.reserve(8 + CurrentLogFields().size());
  spdlog::memory_buf_t formatted;
  formatter_->format(msg, formatted);
  std::string text(formatted.data(), formatted.size());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
    text.pop_back();
  fields.push_back("MESSAGE=" + text);
  fields.push_back("PRIORITY=" + std::to_string(JournalPriority(msg.level)));
  fields.push_back("SYSLOG_IDENTIFIER=" + identifier_);
  if (!msg.source.empty()) {
    fields.push_back(std::string("CODE_FILE=") + msg.source.filename);
    fields.push_back("CODE_LINE=" + std::to_string(msg.source.line));
    if (msg.source.funcname)
      fields.push_back(std::string("CODE_FUNC=") + msg.source.funcname);
  }
  for (const auto& [name, value] : CurrentLogFields())
    fields.push_back(name + "=" + Redact(value));
  if (send_(fields) < 0) {
    // journald is gone (restarting?): stderr is still the journal stream.
    std::fprintf(stderr, "<%d>%s\n", JournalPriority(msg.level), text.c_str());
  }
}

void RedactingSink::sink_it_(const spdlog::details::log_msg& msg) {
  std::string_view payload(msg.payload.data(), msg.payload.size());
  if (!ContainsSecret(payload)) {
    inner_->log(msg);
    return;
  }
  std::string clean = Redact(payload);
  spdlog::details::log_msg copy(msg);
  copy.payload = spdlog::string_view_t(clean.data(), clean.size());
  inner_->log(copy);
}

void SetupLogging(LogTarget target) {
  std::shared_ptr<spdlog::sinks::sink> inner;
  std::string pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v";
  switch (target) {
    case LogTarget::kJournal:
      inner = std::make_shared<JournalSink>("polar-loadd");
      pattern = "%v";  // the journal keeps time and priority itself
      break;
    case LogTarget::kTerminal:
      inner = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
      break;
    case LogTarget::kPlain:
      inner = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
          spdlog::color_mode::never);
      break;
  }
  auto logger = std::make_shared<spdlog::logger>(
      "polar-loadd", std::make_shared<RedactingSink>(std::move(inner)));
  spdlog::set_default_logger(std::move(logger));
  spdlog::set_pattern(pattern);
  // Errors and warnings reach the journal at once; info may batch.
  spdlog::flush_on(spdlog::level::warn);
}

}  // namespace polar
