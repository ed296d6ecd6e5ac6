#include "exporters/outcome.h"

namespace polar {

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kHttp4xx:
      return "http_4xx";
    case Outcome::kHttp5xx:
      return "http_5xx";
    case Outcome::kRateLimited:
      return "rate_limited";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kConnectError:
      return "connect_error";
    case Outcome::kTlsError:
      return "tls_error";
    case Outcome::kInvalidResponse:
      return "invalid_response";
    case Outcome::kCheckFailed:
      return "check_failed";
  }
  return "invalid_response";
}

const std::array<Outcome, kOutcomeCount>& AllOutcomes() {
  static constexpr std::array<Outcome, kOutcomeCount> kAll = {
      Outcome::kOk,          Outcome::kHttp4xx,         Outcome::kHttp5xx,
      Outcome::kRateLimited, Outcome::kTimeout,         Outcome::kConnectError,
      Outcome::kTlsError,    Outcome::kInvalidResponse, Outcome::kCheckFailed,
  };
  return kAll;
}

Outcome OutcomeFromStatus(long status) {
  if (status >= 200 && status < 300) return Outcome::kOk;
  if (status == 429) return Outcome::kRateLimited;
  if (status >= 400 && status < 500) return Outcome::kHttp4xx;
  if (status >= 500 && status < 600) return Outcome::kHttp5xx;
  return Outcome::kInvalidResponse;
}

}  // namespace polar
