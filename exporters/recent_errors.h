// RecentErrors: the most recent distinct request failures, for the status page
// ("what is going wrong right now"), in fixed memory.
//
// Owned by Metrics (one per daemon; scenarios reach it through StepRecorder);
// loop thread only. An entry is keyed by (scenario, step, outcome, HTTP
// status), all from fixed sets, and keeps a count, when it was first and last
// seen, and a short snippet of the latest response (status line, transport
// error, start of the body) that has been through the secret redaction of
// exporters/log.h. When the ring is full a new key replaces the entry seen
// longest ago. The snippet is refreshed at most once a second per entry, so a
// storm of 20,000 failures/s costs one compare per failure, not a copy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "exporters/clock.h"
#include "exporters/outcome.h"

namespace polar {

struct RecentError {
  std::string scenario;
  std::string step;
  Outcome outcome = Outcome::kOk;
  int status = 0;  // HTTP status; 0 when none arrived (timeout, connect_error)
  uint64_t count = 0;
  MonoTime first_seen{};
  MonoTime last_seen{};
  std::string snippet;  // redacted, at most kSnippetBytes (+ "...")
};

class RecentErrors {
 public:
  // 32 distinct failures: more than a page can show usefully, and the key is
  // made of fixed sets, so a healthy config has far fewer.
  static constexpr std::size_t kDefaultCapacity = 32;
  // Enough for Polar's {"error": ..., "detail": ...} (~100-300 bytes).
  static constexpr std::size_t kSnippetBytes = 240;

  explicit RecentErrors(std::size_t capacity = kDefaultCapacity);

  // One failure seen at `at`. `detail` is built only when the snippet is due
  // (first sighting, or a second after the last refresh).
  void Record(std::string_view scenario, std::string_view step, Outcome outcome,
              int status, MonoTime at, std::string_view error,
              std::string_view body);

  // Every entry, the most recently seen first.
  std::vector<RecentError> Snapshot() const;
  std::size_t capacity() const { return capacity_; }

  // "HTTP 500: <error> body: <start of body>", control characters blanked,
  // cut at kSnippetBytes, secrets redacted.
  static std::string MakeSnippet(int status, std::string_view error,
                                 std::string_view body);

 private:
  struct Entry {
    RecentError error;
    MonoTime snippet_at{};
  };
  std::size_t capacity_;
  std::vector<Entry> entries_;
};

}  // namespace polar
