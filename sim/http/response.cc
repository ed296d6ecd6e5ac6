#include "sim/http/response.h"

namespace polar::sim {
namespace {

const char* ReasonPhrase(int status) {
  switch (status) {
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 429:
      return "Too Many Requests";
    default:
      return "Error";
  }
}

}  // namespace

SimResponse Json(int status, const json& body) {
  SimResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

SimResponse JsonError(int status, std::string_view error,
                      std::string_view detail) {
  return Json(status, {{"error", error}, {"detail", detail}});
}

SimResponse NotFound() {
  SimResponse r;
  r.status = 404;
  r.body = R"({"detail":"Not Found"})";
  return r;
}

SimResponse ResourceNotFound() {
  return JsonError(404, "ResourceNotFound", "Not found");
}

SimResponse MethodNotAllowed() {
  SimResponse r;
  r.status = 405;
  r.body = R"({"detail":"Method Not Allowed"})";
  return r;
}

SimResponse PlainError(int status) {
  SimResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = ReasonPhrase(status);
  return r;
}

}  // namespace polar::sim
