#include "scenarios/scenario.h"

namespace polar {

StepRecorder::StepRecorder(Metrics& metrics, const std::string& scenario,
                           const std::string& step)
    : step_(metrics.Step(scenario, step)),
      scenario_(metrics.Scenario(scenario)) {}

void StepRecorder::Record(Outcome outcome, const Response& response) {
  step_.requests[static_cast<std::size_t>(outcome)]->Increment();
  step_.latency->Observe(ToSeconds(response.latency()));
  step_.service->Observe(ToSeconds(response.service()));
  scenario_.schedule_lag->Observe(ToSeconds(response.lag()));
}

}  // namespace polar
