#include "sim/api/io.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace polar::sim {

std::optional<SimResponse> ReadObject(const SimRequest& request, json* body) {
  *body = json::parse(request.body, nullptr, false);
  if (body->is_discarded()) return JsonDecodeError("Expecting value");
  if (!body->is_object()) {
    ValidationErrors e;
    e.Add(Loc({"body"}), "model_attributes_type",
          "Input should be a valid dictionary or object to extract fields from",
          *body);
    return e.Response();
  }
  return std::nullopt;
}

void ReadPage(const SimRequest& request, PageQuery* out,
              ValidationErrors& errors) {
  for (auto [name, value] :
       {std::pair<const char*, int64_t*>{"page", &out->page},
        {"limit", &out->limit}}) {
    const std::string* v = request.Query(name);
    if (!v) continue;
    char* end = nullptr;
    errno = 0;
    long long n = std::strtoll(v->c_str(), &end, 10);
    if (v->empty() || end == v->c_str() || *end || errno == ERANGE) {
      errors.Add(Loc({"query", name}), "int_parsing",
                 "Input should be a valid integer, unable to parse string as "
                 "an integer",
                 *v);
    } else if (n <= 0) {
      errors.Add(Loc({"query", name}), "greater_than",
                 "Input should be greater than 0", *v, {{"gt", 0}});
    } else {
      *value = n;
    }
  }
  out->limit = std::min(out->limit, kMaxPageLimit);
}

std::optional<SimResponse> ReadPage(const SimRequest& request, PageQuery* out) {
  ValidationErrors errors;
  ReadPage(request, out, errors);
  if (!errors.empty()) return errors.Response();
  return std::nullopt;
}

SimResponse ListResponse(json items, int64_t total, int64_t limit) {
  return Json(
      200,
      {{"items", std::move(items)},
       {"pagination",
        {{"total_count", total}, {"max_page", (total + limit - 1) / limit}}}});
}

SimResponse PathUuidError(const char* name, const std::string& value) {
  ValidationErrors e;
  e.Add(Loc({"path", name}), "uuid_parsing", "Input should be a valid UUID",
        value);
  return e.Response();
}

}  // namespace polar::sim
