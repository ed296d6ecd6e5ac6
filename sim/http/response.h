// Response helpers: the bodies every polar-sim route answers with, in Polar's
// shapes (docs/polar-api.md §6): JSON values, {"error","detail"}
// errors, FastAPI's own 404/405 bodies and Starlette's plain-text 5xx.
//
// Pure functions; any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "sim/http/message.h"

namespace polar::sim {

using nlohmann::json;

// `body` serialised compactly; bytes that are not UTF-8 become U+FFFD (an
// input echoed in a 422 may hold any bytes, and dump() would throw on them).
SimResponse Json(int status, const json& body);
// {"error": error, "detail": detail}
SimResponse JsonError(int status, std::string_view error,
                      std::string_view detail);
SimResponse NotFound();  // {"detail":"Not Found"}
// 404 {"error":"ResourceNotFound","detail":"Not found"}: an id that names no
// object of the route's kind.
SimResponse ResourceNotFound();
SimResponse MethodNotAllowed();  // {"detail":"Method Not Allowed"}
// Starlette's plain-text error ("Internal Server Error", ...), as an unhandled
// exception or an injected fault answers.
SimResponse PlainError(int status);

}  // namespace polar::sim
