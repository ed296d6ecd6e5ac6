#include "sim/simulator.h"

#include <strings.h>

#include <nlohmann/json.hpp>

#include "sim/token.h"

namespace polar::sim {
namespace {

using nlohmann::json;

// Splitmix-derived values, so every id follows from --seed.
uint64_t Derive(uint64_t seed, uint64_t salt) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ULL + salt * 0xbf58476d1ce4e5b9ULL + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

SimResponse Unauthorized() {
  SimResponse r;
  r.status = 401;
  r.body = R"({"error":"Unauthorized","detail":"Unauthorized"})";
  r.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="polar")");
  return r;
}

SimResponse InvalidToken() {
  SimResponse r;
  r.status = 401;
  r.body =
      R"({"error":"invalid_token","error_description":"The access token provided is expired, revoked, malformed, or invalid for other reasons."})";
  r.headers.emplace_back(
      "WWW-Authenticate",
      R"(Bearer realm="polar", error="invalid_token", error_description="The access token provided is expired, revoked, malformed, or invalid for other reasons.")");
  return r;
}

// FastAPI/pydantic validation error body, as Polar returns it (polar-api.md
// §6).
SimResponse ValidationError(json loc, std::string_view type,
                            std::string_view msg, json input) {
  SimResponse r;
  r.status = 422;
  json detail = json::array();
  detail.push_back({{"type", type},
                    {"loc", std::move(loc)},
                    {"msg", msg},
                    {"input", std::move(input)}});
  r.body =
      json{{"error", "RequestValidationError"}, {"detail", std::move(detail)}}
          .dump();
  return r;
}

using SysMicros = std::chrono::sys_time<std::chrono::microseconds>;

// Parses an RFC 3339 timestamp with an explicit offset; returns false when it
// has none. Microsecond precision (Polar's) also keeps years past 2262
// representable, unlike nanoseconds.
bool ParseTimestamp(const std::string& text, SysMicros* out) {
  int y, mo, d, h, mi;
  double s = 0;
  char rest[16] = {};
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%15s", &y, &mo, &d, &h,
                  &mi, &s, rest) < 6) {
    return false;
  }
  std::string tz(rest);
  long offset = 0;
  if (tz == "Z" || tz == "z") {
    offset = 0;
  } else if (tz.size() == 6 && (tz[0] == '+' || tz[0] == '-') && tz[3] == ':') {
    offset =
        (std::stol(tz.substr(1, 2)) * 60 + std::stol(tz.substr(4, 2))) * 60;
    if (tz[0] == '-') offset = -offset;
  } else {
    return false;  // naive datetimes are refused: Polar requires timezone-aware
                   // timestamps
  }
  using namespace std::chrono;
  auto days = sys_days(year{y} / month{static_cast<unsigned>(mo)} /
                       day{static_cast<unsigned>(d)});
  *out = SysMicros(days) + hours(h) + minutes(mi) +
         duration_cast<microseconds>(duration<double>(s)) - seconds(offset);
  return true;
}

}  // namespace

int64_t EventStore::InsertBatch(const std::vector<std::string>& external_ids) {
  std::lock_guard lock(mutex_);
  int64_t inserted = 0;
  for (const std::string& id : external_ids) {
    if (id.empty()) {
      ++inserted;
      continue;
    }
    if (!seen_.insert(id).second) continue;
    ++inserted;
    order_.push_back(id);
    if (order_.size() > capacity_) {
      seen_.erase(order_.front());
      order_.pop_front();
    }
  }
  return inserted;
}

Simulator::Simulator(const SimOptions& options)
    : options_(options), events_(options.max_remembered_events) {
  seeded_.organization_id =
      MakeUuid(Derive(options.seed, 1), Derive(options.seed, 2));
  seeded_.token = MakeToken("polar_oat_", Derive(options.seed, 3));
  for (int i = 0; i < options.customers; ++i) {
    seeded_.customer_external_ids.push_back("loadtest-customer-" +
                                            std::to_string(i));
    auto salt = static_cast<uint64_t>(100 + 2 * i);
    seeded_.customer_ids.push_back(
        MakeUuid(Derive(options.seed, salt), Derive(options.seed, salt + 1)));
  }
}

SimResponse Simulator::Handle(const SimRequest& request) {
  // Polar-Version: unknown versions are refused before anything else
  // (polar-api.md §0).
  if (const std::string* version = request.Header("polar-version")) {
    if (*version != "2026-04" && *version != "2026-10") return NotFound();
  }
  std::string_view path = request.path;
  if (path == "/healthz") {
    SimResponse r;
    r.body = R"({"status":"ok"})";
    return r;
  }
  const bool has_body_method = request.method == "POST" ||
                               request.method == "PUT" ||
                               request.method == "PATCH";
  if (has_body_method && !request.has_content_length) {
    return JsonError(411, "LengthRequired",
                     "A Content-Length header is required.");
  }
  if (request.body_too_large) {
    return JsonError(413, "RequestBodyTooLarge", "Request body is too large.");
  }
  if (path == "/v1/events/ingest") {
    if (request.method != "POST") {
      SimResponse r;
      r.status = 405;
      r.body = R"({"detail":"Method Not Allowed"})";
      return r;
    }
    return IngestEvents(request);
  }
  return NotFound();
}

SimResponse Simulator::IngestEvents(const SimRequest& request) {
  const std::string* auth = request.Header("authorization");
  if (!auth) return Unauthorized();
  // The scheme is case-insensitive (polar-api.md §1).
  if (auth->size() < 7 || strncasecmp(auth->c_str(), "bearer ", 7) != 0)
    return Unauthorized();
  std::string_view token = std::string_view(*auth).substr(7);
  if (token != seeded_.token) return InvalidToken();

  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) {
    return ValidationError(json::array({"body"}), "json_invalid",
                           "JSON decode error", json::object());
  }
  if (!body.is_object() || !body.contains("events") ||
      !body["events"].is_array()) {
    return ValidationError(json::array({"body", "events"}), "missing",
                           "Field required", body);
  }
  const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now());
  std::vector<std::string> external_ids;
  const json& events = body["events"];
  external_ids.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    const json& e = events[i];
    auto loc = [&](std::string_view field) {
      return json::array({"body", "events", i, field});
    };
    if (!e.is_object()) {
      return ValidationError(json::array({"body", "events", i}),
                             "model_attributes_type",
                             "Input should be a valid dictionary or object", e);
    }
    auto name = e.find("name");
    if (name == e.end() || !name->is_string()) {
      return ValidationError(loc("name"), "missing", "Field required", e);
    }
    if (name->get_ref<const std::string&>().size() > 128) {
      return ValidationError(loc("name"), "string_too_long",
                             "String should have at most 128 characters",
                             *name);
    }
    if (e.contains("organization_id")) {
      return ValidationError(loc("organization_id"), "value_error",
                             "Setting organization_id is disallowed when using "
                             "an organization token.",
                             e["organization_id"]);
    }
    auto ext = e.find("external_customer_id");
    auto cid = e.find("customer_id");
    if ((ext == e.end() || !ext->is_string()) &&
        (cid == e.end() || !cid->is_string())) {
      return ValidationError(loc("external_customer_id"), "missing",
                             "Field required", e);
    }
    if (auto ts = e.find("timestamp"); ts != e.end()) {
      SysMicros when;
      if (!ts->is_string() || !ParseTimestamp(ts->get<std::string>(), &when)) {
        return ValidationError(loc("timestamp"), "timezone_aware",
                               "Input should have timezone info", *ts);
      }
      if (when > now) {
        return ValidationError(loc("timestamp"), "value_error",
                               "Value error, Timestamp must be in the past.",
                               *ts);
      }
    }
    auto id = e.find("external_id");
    external_ids.push_back(
        id != e.end() && id->is_string() ? id->get<std::string>() : "");
  }
  int64_t inserted = events_.InsertBatch(external_ids);
  SimResponse r;
  r.body =
      json{{"inserted", inserted},
           {"duplicates", static_cast<int64_t>(external_ids.size()) - inserted}}
          .dump();
  return r;
}

}  // namespace polar::sim
