#include "daemon/net/listen_address.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>

namespace polar {

bool ListenAddress::IsLoopback() const {
  if (ipv6) return host == "::1";
  return host.rfind("127.", 0) == 0;
}

std::string ListenAddress::ToString() const {
  return ipv6 ? fmt::format("[{}]:{}", host, port)
              : fmt::format("{}:{}", host, port);
}

std::optional<ListenAddress> ParseListenAddress(std::string_view text,
                                                std::string* error) {
  static constexpr const char* kForms =
      "use HOST:PORT with a literal address, e.g. \"127.0.0.1:9477\" or "
      "\"[::1]:9477\"";
  ListenAddress out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() ||
        text[close + 1] != ':') {
      *error = fmt::format("\"{}\" is not an address; {}", text, kForms);
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    out.ipv6 = true;
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      *error = fmt::format("\"{}\" has no port; {}", text, kForms);
      return std::nullopt;
    }
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(out.ipv6 ? AF_INET6 : AF_INET, out.host.c_str(), buf) != 1) {
    *error =
        fmt::format("\"{}\" is not a literal IP address; {}", out.host, kForms);
    return std::nullopt;
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(),
                                   port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() ||
      ptr != port_text.data() + port_text.size() || port > 65535) {
    *error =
        fmt::format("\"{}\" is not a port (0-65535); {}", port_text, kForms);
    return std::nullopt;
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

}  // namespace polar
