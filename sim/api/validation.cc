#include "sim/api/validation.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

namespace polar::sim {
namespace {

// Polar's Address country enum (OpenAPI Address.country), space-separated.
constexpr std::string_view kCountries =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI "
    "BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN "
    "CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK "
    "FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM "
    "HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK "
    "ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP "
    "NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW "
    "SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF "
    "TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW";

// pycountry has no XK; Polar's enum is pycountry's list.
constexpr std::string_view kEmbargoed = "CU IR KP SY RU";

constexpr std::string_view kUsStates =
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS "
    "MO "
    "MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI "
    "WY "
    "DC";
constexpr std::string_view kCaSubdivisions =
    "AB BC MB NB NL NS NT NU ON PE QC SK YT";

bool InList(std::string_view list, std::string_view code) {
  if (code.size() != 2) return false;
  for (std::size_t i = 0; i + 2 <= list.size(); i += 3)
    if (list.substr(i, 2) == code) return true;
  return false;
}

std::string UpperAscii(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// "'AD', 'AE', ... or 'ZW'": pydantic's enum message, over the supported
// codes.
const std::string& SupportedCountriesText() {
  static const std::string text = [] {
    std::vector<std::string> codes;
    for (std::size_t i = 0; i + 2 <= kCountries.size(); i += 3) {
      std::string_view c = kCountries.substr(i, 2);
      if (!InList(kEmbargoed, c)) codes.emplace_back(c);
    }
    std::string out;
    for (std::size_t i = 0; i < codes.size(); ++i) {
      if (i > 0) out += i + 1 == codes.size() ? " or " : ", ";
      out += "'" + codes[i] + "'";
    }
    return out;
  }();
  return text;
}

// A US state or CA subdivision, with or without its "US-"/"CA-" prefix.
bool IsStateOf(const std::string& country, std::string state) {
  if (state.rfind(country + "-", 0) == 0) state = state.substr(3);
  return InList(country == "US" ? kUsStates : kCaSubdivisions, state);
}

}  // namespace

std::size_t Utf8Length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

bool IsSupportedCountry(std::string_view code) {
  return IsCountry(code) && !InList(kEmbargoed, code);
}

json Loc(std::initializer_list<json> parts) {
  json loc = json::array();
  for (const json& p : parts) loc.push_back(p);
  return loc;
}

json Append(json loc, json part) {
  loc.push_back(std::move(part));
  return loc;
}

void ValidationErrors::Add(json loc, std::string_view type,
                           std::string_view msg, json input, json ctx) {
  json e = {{"type", type},
            {"loc", std::move(loc)},
            {"msg", msg},
            {"input", std::move(input)}};
  if (!ctx.is_null()) e["ctx"] = std::move(ctx);
  detail_.push_back(std::move(e));
}

SimResponse ValidationErrors::Response(std::string_view error) const {
  SimResponse r;
  r.status = 422;
  r.body = json{{"error", error}, {"detail", detail_}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

void ValidationErrors::Missing(const json& obj, const char* key,
                               const json& loc) {
  Add(Append(loc, key), "missing", "Field required", obj);
}

bool ValidationErrors::OptString(const json& obj, const char* key,
                                 const json& loc, std::size_t max_len,
                                 std::size_t min_len) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  if (!it->is_string()) {
    Add(Append(loc, key), "string_type", "Input should be a valid string", *it);
    return false;
  }
  std::size_t n = Utf8Length(it->get_ref<const std::string&>());
  if (max_len && n > max_len) {
    Add(Append(loc, key), "string_too_long",
        "String should have at most " + std::to_string(max_len) + " characters",
        *it, {{"max_length", max_len}});
    return false;
  }
  if (min_len && n < min_len) {
    Add(Append(loc, key), "string_too_short",
        "String should have at least " + std::to_string(min_len) +
            (min_len == 1 ? " character" : " characters"),
        *it, {{"min_length", min_len}});
    return false;
  }
  return true;
}

bool ValidationErrors::OptInt(const json& obj, const char* key, const json& loc,
                              std::optional<int64_t> ge,
                              std::optional<int64_t> le) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  if (!it->is_number_integer()) {
    Add(Append(loc, key), "int_type", "Input should be a valid integer", *it);
    return false;
  }
  int64_t v = it->get<int64_t>();
  if (ge && v < *ge) {
    Add(Append(loc, key), "greater_than_equal",
        "Input should be greater than or equal to " + std::to_string(*ge), *it,
        {{"ge", *ge}});
    return false;
  }
  if (le && v > *le) {
    Add(Append(loc, key), "less_than_equal",
        "Input should be less than or equal to " + std::to_string(*le), *it,
        {{"le", *le}});
    return false;
  }
  return true;
}

bool ValidationErrors::OptBool(const json& obj, const char* key,
                               const json& loc) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  if (!it->is_boolean()) {
    Add(Append(loc, key), "bool_type", "Input should be a valid boolean", *it);
    return false;
  }
  return true;
}

bool ValidationErrors::OptUuid(const json& obj, const char* key,
                               const json& loc) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  if (!it->is_string() || !IsUuid(it->get_ref<const std::string&>())) {
    Add(Append(loc, key), "uuid_parsing", "Input should be a valid UUID", *it);
    return false;
  }
  return true;
}

bool ValidationErrors::OptEmail(const json& obj, const char* key,
                                const json& loc) {
  if (!OptString(obj, key, loc)) return false;
  std::string why;
  if (EmailError(obj[key].get_ref<const std::string&>(), &why)) {
    Add(Append(loc, key), "value_error",
        "value is not a valid email address: " + why, obj[key],
        {{"reason", why}});
    return false;
  }
  return true;
}

bool ValidationErrors::OptAddress(const json& obj, const char* key,
                                  const json& loc) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  json here = Append(loc, key);
  if (!it->is_object()) {
    Add(here, "model_attributes_type",
        "Input should be a valid dictionary or object to extract fields from",
        *it);
    return false;
  }
  std::size_t before = detail_.size();
  for (const char* f : {"line1", "line2", "postal_code", "city", "state"})
    OptString(*it, f, here);
  auto country = it->find("country");
  std::string code;
  if (country == it->end()) {
    Missing(*it, "country", here);
  } else {
    // BeforeValidator(upper_if_str), then the CountryAlpha2Input enum.
    if (country->is_string()) code = UpperAscii(country->get<std::string>());
    if (!IsSupportedCountry(code)) {
      Add(Append(here, "country"), "enum",
          "Input should be " + SupportedCountriesText(), *country,
          {{"expected", SupportedCountriesText()}});
    }
  }
  if (detail_.size() != before) return false;
  // Address.validate_state (a model validator, so the error is the
  // address's): US and CA states must exist, with or without their prefix.
  auto state = it->find("state");
  if (state != it->end() && state->is_string() && !state->empty() &&
      (code == "US" || code == "CA")) {
    if (!IsStateOf(code, state->get<std::string>())) {
      Add(here, "value_error",
          code == "US" ? "Value error, Invalid US state"
                       : "Value error, Invalid CA subdivision",
          *it, {{"error", json::object()}});
      return false;
    }
  }
  return true;
}

json NormalizeAddress(const json& in) {
  json out = {{"line1", nullptr}, {"line2", nullptr}, {"postal_code", nullptr},
              {"city", nullptr},  {"state", nullptr}, {"country", nullptr}};
  for (const char* f : {"line1", "line2", "postal_code", "city", "state"}) {
    auto v = in.find(f);
    // EmptyStrToNone.
    if (v != in.end() && v->is_string() &&
        !v->get_ref<const std::string&>().empty())
      out[f] = *v;
  }
  const std::string country = UpperAscii(in.value("country", ""));
  out["country"] = country;
  if (out["state"].is_string() && (country == "US" || country == "CA")) {
    std::string state = out["state"].get<std::string>();
    if (state.rfind(country + "-", 0) != 0)
      out["state"] = country + "-" + state;
  }
  return out;
}

bool ValidationErrors::OptMetadata(const json& obj, const char* key,
                                   const json& loc, bool event_metadata) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  json here = Append(loc, key);
  if (!it->is_object()) {
    Add(here, "dict_type", "Input should be a valid dictionary", *it);
    return false;
  }
  std::size_t before = detail_.size();
  if (!event_metadata && it->size() > 50) {
    Add(here, "too_long",
        "Dictionary should have at most 50 items after validation, not " +
            std::to_string(it->size()),
        *it, {{"field_type", "Dictionary"}, {"max_length", 50}});
  }
  for (const auto& [k, v] : it->items()) {
    const std::size_t key_length = Utf8Length(k);
    if (event_metadata && (k == "_cost" || k == "_llm")) {
      if (!v.is_object()) {
        Add(Append(here, k), "model_type", "Input should be an object", v);
      } else if (k == "_cost") {
        if (!v.contains("amount") ||
            !(v["amount"].is_number() || v["amount"].is_string()))
          Missing(v, "amount", Append(here, k));
        if (v.value("currency", "") != "usd")
          Add(Append(Append(here, k), "currency"), "string_pattern_mismatch",
              "String should match pattern 'usd'", v.value("currency", json()));
      } else {
        for (const char* f : {"vendor", "model"})
          if (!v.contains(f) || !v[f].is_string())
            Missing(v, f, Append(here, k));
        for (const char* f : {"input_tokens", "output_tokens", "total_tokens"})
          if (!v.contains(f) || !v[f].is_number_integer())
            Missing(v, f, Append(here, k));
      }
      continue;
    }
    if (!event_metadata && (key_length == 0 || key_length > 40)) {
      Add(Append(here, k), "string_too_long",
          "String should have at most 40 characters", k, {{"max_length", 40}});
      continue;
    }
    if (v.is_string()) {
      std::size_t n = Utf8Length(v.get_ref<const std::string&>());
      if (n < 1 || n > 500) {
        Add(Append(here, k), n < 1 ? "string_too_short" : "string_too_long",
            n < 1 ? "String should have at least 1 character"
                  : "String should have at most 500 characters",
            v);
      }
    } else if (!v.is_number() && !v.is_boolean()) {
      Add(Append(here, k), "string_type", "Input should be a valid string", v);
    }
  }
  return detail_.size() == before;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

bool EmailError(std::string_view email, std::string* why) {
  auto at = email.find('@');
  if (at == std::string_view::npos) {
    *why = "An email address must have an @-sign.";
    return true;
  }
  if (at == 0) {
    *why = "There must be something before the @-sign.";
    return true;
  }
  std::string domain(email.substr(at + 1));
  for (char& c : domain)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (domain.empty()) {
    *why = "There must be something after the @-sign.";
    return true;
  }
  if (domain.find('.') == std::string::npos) {
    *why = "The part after the @-sign is not valid. It should have a period.";
    return true;
  }
  auto ends_with = [&](std::string_view suffix) {
    return domain.size() >= suffix.size() &&
           domain.compare(domain.size() - suffix.size(), suffix.size(),
                          suffix) == 0;
  };
  // email_validator's special-use names (RFC 6761 and friends).
  for (std::string_view special :
       {"example.com", "example.net", "example.org", ".example", ".test",
        ".invalid", ".localhost", ".local", ".onion", ".arpa"}) {
    bool hit = special.front() == '.' ? ends_with(special)
                                      : (domain == special ||
                                         ends_with("." + std::string(special)));
    if (hit) {
      *why = "The domain name " + domain +
             " is a special-use or reserved name that cannot be used with "
             "email.";
      return true;
    }
  }
  return false;
}

bool IsCountry(std::string_view code) { return InList(kCountries, code); }

SimResponse JsonDecodeError(std::string_view why) {
  ValidationErrors e;
  e.Add(Loc({"body", 0}), "json_invalid", "JSON decode error", json::object(),
        {{"error", why}});
  return e.Response();
}

PageRange PageOf(int64_t page, int64_t limit, std::size_t total) {
  if (page < 1 || limit < 1) return {total, total};
  const auto skipped_pages = static_cast<uint64_t>(page - 1);
  const auto per_page = static_cast<uint64_t>(limit);
  // Past this test skipped_pages * per_page <= total: no overflow.
  if (skipped_pages > total / per_page) return {total, total};
  const std::size_t begin = skipped_pages * per_page;
  return {begin, begin + std::min<uint64_t>(per_page, total - begin)};
}

}  // namespace polar::sim
