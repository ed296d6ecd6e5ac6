// The event_ingestion scenario type: its keys, parser, factory and load
// (scenarios/scenario_type.h). What it sends: scenarios/event_ingestion.h.
#include <fmt/format.h>

#include <sstream>

#include "scenarios/event_ingestion.h"
#include "scenarios/scenario_type.h"

namespace polar {
namespace {

// "a, b,,c " -> {"a", "b", "c"}: LOAD_TEST_EVENT_EXTERNAL_CUSTOMER_IDS, as
// the Locust suite reads it.
std::vector<std::string> SplitCommaList(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ',')) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::any ParseEventIngestion(ScenarioConfigReader& r) {
  EventIngestionOptions o;
  if (auto v = r.Int("batch_size", 1, 10'000))
    o.batch_size = static_cast<int>(*v);
  if (auto v = r.Strings("external_customer_ids"))
    o.external_customer_ids = std::move(*v);
  if (auto v = r.DurationIn("timestamp_backdate", Duration::zero(),
                            std::chrono::hours(1))) {
    o.timestamp_backdate = *v;
  }
  if (auto v = r.EnvInt("LOAD_TEST_EVENT_BATCH_SIZE", 1, 10'000)) {
    o.batch_size = static_cast<int>(*v);
    r.Note(fmt::format("LOAD_TEST_EVENT_BATCH_SIZE overrides {}.batch_size",
                       r.path()));
  }
  if (auto ids = r.Env("LOAD_TEST_EVENT_EXTERNAL_CUSTOMER_IDS")) {
    o.external_customer_ids = SplitCommaList(*ids);
    r.Note(
        fmt::format("LOAD_TEST_EVENT_EXTERNAL_CUSTOMER_IDS overrides "
                    "{}.external_customer_ids",
                    r.path()));
  }
  return o;
}

std::unique_ptr<Scenario> MakeEventIngestion(ScenarioContext context,
                                             const std::any& options) {
  return std::make_unique<EventIngestionScenario>(
      std::move(context), std::any_cast<const EventIngestionOptions&>(options));
}

// One ingest with the token.
PolarLoad EventIngestionLoad(const std::any&) {
  return PolarLoad{{{PolarBucket::kOrganization, 1, 1}}, ""};
}

}  // namespace

const ScenarioType& EventIngestionType() {
  static const ScenarioType kType{
      "event_ingestion",
      "one POST /v1/events/ingest batch per arrival, judged by Polar's counts",
      {
          {"batch_size", "integer", "7"},
          {"external_customer_ids", "array of strings", ""},
          {"timestamp_backdate", "duration", ""},
      },
      {"ingest"},
      "",
      &ParseEventIngestion,
      &MakeEventIngestion,
      &EventIngestionLoad,
      &SameOptions<EventIngestionOptions>,
  };
  return kType;
}

}  // namespace polar
