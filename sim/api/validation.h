// Request validation in Polar's (FastAPI + pydantic v2) shape: errors collect
// as {"type","loc","msg","input","ctx"?} and come back together as one 422
// {"error":"RequestValidationError","detail":[...]}
// (docs/polar-api.md §6).
//
// Plain values and pure functions; any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "sim/http/message.h"
#include "sim/http/response.h"

namespace polar::sim {

using nlohmann::json;

class ValidationErrors {
 public:
  void Add(json loc, std::string_view type, std::string_view msg, json input,
           json ctx = nullptr);
  bool empty() const { return detail_.empty(); }
  const json& detail() const { return detail_; }
  // error is "RequestValidationError" for schema errors and
  // "PolarRequestValidationError" for the service's own checks.
  SimResponse Response(std::string_view error = "RequestValidationError") const;

  // Field checkers: `obj` is the object holding `key`, `loc` the location of
  // `obj`. Absent keys and null pass (optional fields); a wrong type is
  // recorded. They return true when the value is present, non-null and valid.
  bool OptString(const json& obj, const char* key, const json& loc,
                 std::size_t max_len = 0, std::size_t min_len = 0);
  bool OptInt(const json& obj, const char* key, const json& loc,
              std::optional<int64_t> ge = std::nullopt,
              std::optional<int64_t> le = std::nullopt);
  bool OptBool(const json& obj, const char* key, const json& loc);
  bool OptUuid(const json& obj, const char* key, const json& loc);
  bool OptEmail(const json& obj, const char* key, const json& loc);
  // Polar's AddressInput: country required (upper-cased first, then one of
  // the supported codes), line1/line2/postal_code/city/state strings, a US
  // state or CA subdivision that exists.
  bool OptAddress(const json& obj, const char* key, const json& loc);
  // Polar's metadata: at most 50 keys of 1-40 characters; values strings of
  // 1-500 characters, integers, floats or booleans.
  bool OptMetadata(const json& obj, const char* key, const json& loc,
                   bool event_metadata = false);
  void Missing(const json& obj, const char* key, const json& loc);

 private:
  json detail_ = json::array();
};

json Loc(std::initializer_list<json> parts);
json Append(json loc, json part);

bool IsUuid(std::string_view s);
// Characters (Unicode code points) in UTF-8 text, as pydantic measures
// min_length/max_length; a byte that does not start a sequence does not count.
std::size_t Utf8Length(std::string_view s);
// Email syntax plus the special-use domains email_validator refuses
// (example.com, .test, .invalid, .localhost, ...). polar-sim does no DNS.
bool EmailError(std::string_view email, std::string* why);
// ISO 3166 alpha-2 codes (pycountry's), and the ones Polar accepts in an
// input address: all but the US trade embargoes CU, IR, KP, SY, RU
// (server/polar/kit/address.py, docs/polar-api.md §2.2).
bool IsCountry(std::string_view code);
bool IsSupportedCountry(std::string_view code);
// An AddressInput as Polar stores and answers it: the country upper-cased,
// empty strings as null, a US or CA state prefixed ("CA" -> "US-CA"), all
// six keys present. `in` must have passed OptAddress.
json NormalizeAddress(const json& in);

// A body that is not JSON: FastAPI's json_invalid error.
SimResponse JsonDecodeError(std::string_view why);

// Polar clamps `limit` to API_PAGINATION_MAX_LIMIT = 100 on every list route
// (server/polar/kit/pagination.py, docs/polar-api.md §0); larger values are not
// refused.
inline constexpr int64_t kMaxPageLimit = 100;

// The items [begin, end) of page `page` (1-based) of `limit` items per page in
// a list of `total`. Both come from the query string and may be as large as
// 2^63-1, so (page - 1) * limit is only computed once it is known to fit: a
// page past the end is empty, as on Polar. (Multiplying first overflowed, found
// by tests/fuzz/sim_request_fuzz.cc: page=2^62+1&limit=4 wrapped to page 1.)
struct PageRange {
  std::size_t begin = 0;
  std::size_t end = 0;
};
PageRange PageOf(int64_t page, int64_t limit, std::size_t total);

}  // namespace polar::sim
