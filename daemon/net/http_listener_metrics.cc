#include "daemon/net/http_listener_metrics.h"

#include <prometheus/family.h>

#include <string>

namespace polar {

std::string_view HttpConnectionRefusalName(HttpConnectionRefusal refusal) {
  switch (refusal) {
    case HttpConnectionRefusal::kPerIpLimit:
      return "per_ip_limit";
    case HttpConnectionRefusal::kConnectionLimit:
      return "connection_limit";
  }
  return "connection_limit";
}

std::string_view HttpConnectionDropName(HttpConnectionDrop drop) {
  switch (drop) {
    case HttpConnectionDrop::kEvicted:
      return "evicted";
    case HttpConnectionDrop::kHeadTimeout:
      return "head_timeout";
    case HttpConnectionDrop::kBodyTimeout:
      return "body_timeout";
    case HttpConnectionDrop::kSendTimeout:
      return "send_timeout";
  }
  return "evicted";
}

HttpListenerMetrics::HttpListenerMetrics(prometheus::Registry& registry,
                                         std::string_view listener) {
  const std::string name(listener);
  auto& refused =
      prometheus::BuildCounter()
          .Name("polar_loadd_http_connections_refused_total")
          .Help(
              "Connections a listener closed at accept, by reason: the "
              "client address's limit, or the listener full with nothing "
              "to evict.")
          .Register(registry);
  auto& dropped =
      prometheus::BuildCounter()
          .Name("polar_loadd_http_connections_dropped_total")
          .Help(
              "Connections a listener closed before their request was done, "
              "by reason: evicted for a new one, or a deadline or minimum "
              "rate missed.")
          .Register(registry);
  auto& requests =
      prometheus::BuildCounter()
          .Name("polar_loadd_http_requests_refused_total")
          .Help(
              "Requests a listener refused before any handler saw them, by "
              "reason (malformed or ambiguous framing, bad target, size, "
              "Host).")
          .Register(registry);
  open_ = &prometheus::BuildGauge()
               .Name("polar_loadd_http_connections")
               .Help("Open connections of a listener.")
               .Register(registry)
               .Add({{"listener", name}});
  for (std::size_t i = 0; i < kHttpConnectionRefusalCount; ++i) {
    refused_[i] =
        &refused.Add({{"listener", name},
                      {"reason", std::string(HttpConnectionRefusalName(
                                     static_cast<HttpConnectionRefusal>(i)))}});
  }
  for (std::size_t i = 0; i < kHttpConnectionDropCount; ++i) {
    dropped_[i] =
        &dropped.Add({{"listener", name},
                      {"reason", std::string(HttpConnectionDropName(
                                     static_cast<HttpConnectionDrop>(i)))}});
  }
  for (std::size_t i = 0; i < kHttpRefusalCount; ++i) {
    requests_refused_[i] = &requests.Add(
        {{"listener", name},
         {"reason",
          std::string(HttpRefusalName(static_cast<HttpRefusal>(i)))}});
  }
}

}  // namespace polar
