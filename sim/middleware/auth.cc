#include "sim/middleware/auth.h"

#include <strings.h>

#include <algorithm>

namespace polar::sim {

std::optional<std::string_view> Auth::BearerToken(const SimRequest& request) {
  const std::string* header = request.Header("authorization");
  if (!header) return std::nullopt;
  if (header->size() < 7 || strncasecmp(header->c_str(), "bearer ", 7) != 0)
    return std::nullopt;
  std::string_view token = std::string_view(*header).substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  if (token.empty()) return std::nullopt;
  for (char c : token)
    if (static_cast<unsigned char>(c) > 127) return std::nullopt;
  return token;
}

Auth::Result Auth::Authenticate(const SimRequest& request,
                                const AccessToken** token) const {
  auto bearer = BearerToken(request);
  if (!bearer) return Result::kNone;
  for (const AccessToken& t : tokens_) {
    if (t.value == *bearer) {
      *token = &t;
      return Result::kOk;
    }
  }
  return Result::kInvalid;
}

bool Auth::HasAnyScope(const AccessToken& token,
                       const std::vector<std::string>& accepted) {
  return std::any_of(accepted.begin(), accepted.end(),
                     [&](const auto& s) { return token.scopes.count(s) > 0; });
}

SimResponse Auth::Unauthorized() {
  SimResponse r;
  r.status = 401;
  r.body = R"({"error":"Unauthorized","detail":"Unauthorized"})";
  r.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="polar")");
  return r;
}

SimResponse Auth::InvalidToken() {
  SimResponse r;
  r.status = 401;
  r.body =
      R"({"error":"invalid_token","error_description":"The access token provided is expired, revoked, malformed, or invalid for other reasons."})";
  r.headers.emplace_back(
      "WWW-Authenticate",
      R"(Bearer realm="polar", error="invalid_token", error_description="The access token provided is expired, revoked, malformed, or invalid for other reasons.")");
  return r;
}

SimResponse Auth::InsufficientScope(const std::vector<std::string>& needed) {
  std::string scopes;
  for (const auto& s : needed) scopes += (scopes.empty() ? "" : " ") + s;
  SimResponse r;
  r.status = 403;
  r.body =
      R"({"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token."})";
  r.headers.emplace_back(
      "WWW-Authenticate",
      R"(Bearer realm="polar", error="insufficient_scope", error_description="The request requires higher privileges than provided by the access token.", scope=")" +
          scopes + "\"");
  return r;
}

}  // namespace polar::sim
