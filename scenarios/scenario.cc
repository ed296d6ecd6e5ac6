#include "scenarios/scenario.h"

#include <spdlog/spdlog.h>

#include "exporters/log.h"

namespace polar {
namespace {

// Enough of a body to show Polar's error detail ({"error": ..., "detail": ...}
// is ~100-300 bytes), short enough that a flood cannot fill the journal.
constexpr std::size_t kBodyExcerptBytes = 200;

std::string Excerpt(const std::string& body) {
  std::string out;
  for (char c : body.substr(0, kBodyExcerptBytes)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  if (body.size() > kBodyExcerptBytes) out += "...";
  return out;
}

}  // namespace

StepRecorder::StepRecorder(Metrics& metrics, const std::string& scenario,
                           const std::string& step)
    : scenario_name_(scenario),
      step_name_(step),
      step_(metrics.Step(scenario, step)),
      scenario_(metrics.Scenario(scenario)),
      recent_errors_(metrics.recent_errors()) {}

void StepRecorder::Record(Outcome outcome, const Response& response) {
  step_.requests[static_cast<std::size_t>(outcome)]->Increment();
  if (outcome == Outcome::kOk || outcome == Outcome::kTimeout) {
    step_.latency->Observe(ToSeconds(response.latency()));
    step_.service->Observe(ToSeconds(response.service()));
    step_.latency_fine.Record(response.latency().count());
    step_.service_fine.Record(response.service().count());
  }
  // Every request was due and sent (or tried) at some point: its lag is ours
  // whatever Polar answered.
  scenario_.schedule_lag->Observe(ToSeconds(response.lag()));
  if (outcome != Outcome::kOk) {
    recent_errors_.Record(scenario_name_, step_name_, outcome,
                          static_cast<int>(response.status), response.done,
                          response.error, response.body);
    LogFailure(outcome, response);
  }
}

void ExplainIngestRefusal(const std::string& scenario,
                          const Response& response) {
  static bool said = false;
  if (said || response.status != 422 ||
      response.body.find("organization_id is required") == std::string::npos)
    return;
  said = true;
  SPDLOG_ERROR(
      "scenario {}: Polar refused the events with 422 \"organization_id is "
      "required\": the token is not an organization access token. With a "
      "personal access token or an OAuth token Polar wants the organization "
      "in every event, which polar-loadd does not send; use an organization "
      "access token (polar_oat_...) of the organization under load",
      scenario);
}

void StepRecorder::LogFailure(Outcome outcome, const Response& response) {
  std::string_view outcome_name = OutcomeName(outcome);
  std::string key = scenario_name_ + "/" + step_name_ + "/";
  key += outcome_name;
  uint64_t suppressed = 0;
  if (!AllowErrorLog(key, response.done, &suppressed)) return;
  ScopedLogFields fields(
      {{"POLAR_SCENARIO", scenario_name_},
       {"POLAR_STEP", step_name_},
       {"POLAR_OUTCOME", std::string(outcome_name)},
       {"POLAR_HTTP_STATUS", std::to_string(response.status)}});
  std::string detail;
  if (response.status != 0)
    detail += " HTTP " + std::to_string(response.status);
  if (!response.error.empty()) detail += " " + response.error;
  if (!response.body.empty()) detail += " body: " + Excerpt(response.body);
  SPDLOG_WARN("scenario {} step {}: {}:{}{}", scenario_name_, step_name_,
              outcome_name, detail, SuppressedSuffix(suppressed));
}

}  // namespace polar
