// Request and response helpers for polar-sim's API handlers, so each handler
// states only what is its own: reading a JSON object body as FastAPI does,
// page/limit query parameters as Polar's pagination reads them, the list
// envelope, and a path id that is not a UUID.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "sim/api/validation.h"
#include "sim/http/message.h"
#include "sim/http/response.h"

namespace polar::sim {

// The body as a JSON object. Not JSON: 422 json_invalid; JSON but not an
// object: 422 model_attributes_type at ["body"]. The error is returned, the
// object stored in *body.
std::optional<SimResponse> ReadObject(const SimRequest& request, json* body);

// Polar's pagination (server/polar/kit/pagination.py): page >= 1 (default 1),
// limit >= 1 (default 10), silently clamped to kMaxPageLimit. A value that is
// not an integer is 422 int_parsing; zero or less, 422 greater_than.
struct PageQuery {
  int64_t page = 1;
  int64_t limit = 10;
};
std::optional<SimResponse> ReadPage(const SimRequest& request, PageQuery* out);
// As ReadPage, adding its errors to `errors` (for routes with more query
// parameters to check).
void ReadPage(const SimRequest& request, PageQuery* out,
              ValidationErrors& errors);

// {"items": [...], "pagination": {"total_count", "max_page"}}
SimResponse ListResponse(json items, int64_t total, int64_t limit);

// 422 uuid_parsing at ["path", name].
SimResponse PathUuidError(const char* name, const std::string& value);

}  // namespace polar::sim
