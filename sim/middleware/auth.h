// Auth: bearer-token authentication and scopes as Polar answers them
// (docs/polar-api.md §1): the seeded organization access tokens, RFC 6750
// 401/403 bodies for bad tokens and missing scopes, and Polar's own 401 when a
// route needs a token and none was sent.
//
// Immutable after construction (tokens are fixed at start); any thread.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sim/http/message.h"

namespace polar::sim {

struct AccessToken {
  std::string value;
  std::set<std::string> scopes;
  std::string organization_id;
};

class Auth {
 public:
  enum class Result { kNone, kInvalid, kOk };

  void Add(AccessToken token) { tokens_.push_back(std::move(token)); }
  // Reads "Authorization: Bearer ..." (scheme case-insensitive; a non-ASCII
  // token counts as absent).
  Result Authenticate(const SimRequest& request,
                      const AccessToken** token) const;
  static std::optional<std::string_view> BearerToken(const SimRequest& request);

  // True if the token has any of `accepted` (e.g. {"events:read",
  // "events:write"}).
  static bool HasAnyScope(const AccessToken& token,
                          const std::vector<std::string>& accepted);

  static SimResponse Unauthorized();  // no token where one is needed
  static SimResponse InvalidToken();  // unknown/expired/revoked token
  static SimResponse InsufficientScope(const std::vector<std::string>& needed);

 private:
  std::vector<AccessToken> tokens_;
};

}  // namespace polar::sim
