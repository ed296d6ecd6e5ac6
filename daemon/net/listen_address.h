// ListenAddress: where a listener binds ("127.0.0.1:9477", "[::1]:0"), as the
// config file writes it.
//
// Pure functions, any thread. The parser returns std::nullopt and fills *error
// with a one-line reason that names the accepted forms, so config errors tell
// the operator how to fix the value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace polar {

struct ListenAddress {
  std::string host;  // literal IPv4 or IPv6 address, without brackets
  uint16_t port = 0;
  bool ipv6 = false;
  bool IsLoopback() const;
  std::string ToString() const;  // "127.0.0.1:9477" or "[::1]:9477"
  bool operator==(const ListenAddress&) const = default;
};
std::optional<ListenAddress> ParseListenAddress(std::string_view text,
                                                std::string* error);

}  // namespace polar
