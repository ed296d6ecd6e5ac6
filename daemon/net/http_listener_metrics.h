// HttpListenerMetrics: what each listener (HttpServer) refuses and drops, as
// polar_loadd_http_* series with a `listener` label ("metrics", "webhooks";
// docs/metrics.md lists them), plus its open connections.
//
// Built by each HttpServer from the registry passed in; the families and
// children are shared by name, so a listener rebound on reload carries its
// counters on. Every (listener, reason) child is created up front, so rate()
// sees a zero before the first refusal. Loop thread only for updates; scraping
// may run on any thread.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <string_view>

#include "daemon/net/http_request.h"

namespace polar {

// A connection closed at accept, before it was served.
enum class HttpConnectionRefusal {
  kPerIpLimit,       // the client address already holds its share
  kConnectionLimit,  // the listener is full and nothing could be evicted
};
inline constexpr std::size_t kHttpConnectionRefusalCount = 2;
std::string_view HttpConnectionRefusalName(HttpConnectionRefusal refusal);

// An accepted connection the server closed before its request was done.
enum class HttpConnectionDrop {
  kEvicted,      // the oldest idle one, closed to make room for a new one
  kHeadTimeout,  // the whole request head not in within head_timeout
  kBodyTimeout,  // the body slower than the minimum rate, or over body_timeout
  kSendTimeout,  // the client read the response slower than the minimum rate
};
inline constexpr std::size_t kHttpConnectionDropCount = 4;
std::string_view HttpConnectionDropName(HttpConnectionDrop drop);

class HttpListenerMetrics {
 public:
  HttpListenerMetrics(prometheus::Registry& registry,
                      std::string_view listener);
  HttpListenerMetrics(const HttpListenerMetrics&) = delete;
  HttpListenerMetrics& operator=(const HttpListenerMetrics&) = delete;

  prometheus::Counter& refused(HttpConnectionRefusal r) {
    return *refused_[static_cast<std::size_t>(r)];
  }
  prometheus::Counter& dropped(HttpConnectionDrop d) {
    return *dropped_[static_cast<std::size_t>(d)];
  }
  prometheus::Counter& requests_refused(HttpRefusal r) {
    return *requests_refused_[static_cast<std::size_t>(r)];
  }
  // Open connections; incremented and decremented, never set, so two servers
  // of one listener (the old and the new during a reload) add up.
  prometheus::Gauge& open() { return *open_; }

 private:
  std::array<prometheus::Counter*, kHttpConnectionRefusalCount> refused_{};
  std::array<prometheus::Counter*, kHttpConnectionDropCount> dropped_{};
  std::array<prometheus::Counter*, kHttpRefusalCount> requests_refused_{};
  prometheus::Gauge* open_ = nullptr;
};

}  // namespace polar
