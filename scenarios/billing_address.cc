#include "scenarios/billing_address.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace polar {
namespace {

// USState and CASubdivision in server/polar/kit/address.py, without their
// "US-"/"CA-" prefixes.
constexpr std::array<std::string_view, 51> kUsStates = {
    "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA",
    "HI", "IA", "ID", "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME",
    "MI", "MN", "MO", "MS", "MT", "NC", "ND", "NE", "NH", "NJ", "NM",
    "NV", "NY", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX",
    "UT", "VA", "VT", "WA", "WI", "WV", "WY"};
constexpr std::array<std::string_view, 13> kCaSubdivisions = {
    "AB", "BC", "MB", "NB", "NL", "NS", "NT",
    "NU", "ON", "PE", "QC", "SK", "YT"};
// _SUPPORTED_COUNTRIES leaves these out: "US Trade Embargos".
constexpr std::array<std::string_view, 5> kEmbargoed = {"CU", "IR", "KP", "RU",
                                                        "SY"};

template <std::size_t N>
bool Contains(const std::array<std::string_view, N>& list,
              std::string_view code) {
  return std::find(list.begin(), list.end(), code) != list.end();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> NormalizeBillingAddress(
    BillingAddress& a) {
  std::vector<std::pair<std::string, std::string>> problems;
  for (char& ch : a.country)
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const bool letters =
      a.country.size() == 2 &&
      std::all_of(a.country.begin(), a.country.end(),
                  [](char ch) { return ch >= 'A' && ch <= 'Z'; });
  if (!letters) {
    problems.emplace_back(
        "country", "\"" + a.country +
                       "\" is not an ISO 3166-1 alpha-2 code such as \"SE\"");
    return problems;
  }
  if (Contains(kEmbargoed, a.country)) {
    problems.emplace_back(
        "country",
        "\"" + a.country +
            "\" is under a US trade embargo: Polar refuses addresses there");
  }
  if (!a.state.empty() && (a.country == "US" || a.country == "CA")) {
    std::string code = a.state;
    for (char& ch : code)
      ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (code.rfind(a.country + "-", 0) == 0) code = code.substr(3);
    const bool known = a.country == "US" ? Contains(kUsStates, code)
                                         : Contains(kCaSubdivisions, code);
    if (!known) {
      problems.emplace_back(
          "state",
          "\"" + a.state + "\" is not a " +
              (a.country == "US" ? "US state (e.g. \"CA\" or \"US-CA\")"
                                 : "Canadian province or territory "
                                   "(e.g. \"QC\" or \"CA-QC\")"));
    }
  }
  return problems;
}

}  // namespace polar
