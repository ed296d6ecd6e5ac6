#include "scenarios/event_ingestion.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace polar {

EventIngestionScenario::EventIngestionScenario(ScenarioContext context,
                                               EventIngestionOptions options)
    : context_(std::move(context)),
      options_(std::move(options)),
      rng_(context_.seed),
      customers_(1),
      ingest_(context_.metrics, context_.name, "ingest"),
      series_(context_.metrics.Scenario(context_.name)),
      inserted_(context_.metrics.Events(context_.name, "inserted")),
      duplicates_(context_.metrics.Events(context_.name, "duplicate")) {
  if (options_.external_customer_ids.empty()) {
    for (int i = 0; i < 20; ++i) {
      options_.external_customer_ids.push_back(
          fmt::format("loadtest-customer-{}", i));
    }
  }
  customers_ = PowerLawPicker(options_.external_customer_ids.size());
  // A run id from the wall clock and the seed: restarts never reuse an
  // external_id, so Polar's dedup index never turns fresh load into
  // "duplicates".
  run_id_ = MakeRunId(context_.clock.WallNow(), rng_);
}

std::string EventIngestionScenario::BuildBatch(uint64_t sequence) {
  // Hand-built JSON: at 20,000 batches/s a DOM builder costs more than the HTTP
  // work itself. Every value written here is either generated from fixed
  // alphabets or escaped by nlohmann::json::dump.
  std::string body;
  body.reserve(64 + static_cast<std::size_t>(options_.batch_size) * 240);
  body += R"({"events":[)";
  const auto& ids = options_.external_customer_ids;
  // One timestamp for the whole batch: the events are generated together.
  std::string timestamp;
  if (options_.timestamp_backdate) {
    timestamp =
        fmt::format(R"("timestamp":"{}",)",
                    FormatIsoUtc(context_.clock.WallNow() -
                                 std::chrono::duration_cast<WallTime::duration>(
                                     *options_.timestamp_backdate)));
  }
  for (int i = 0; i < options_.batch_size; ++i) {
    if (i) body += ',';
    const std::string& customer = ids[customers_.Pick(rng_)];
    const char* name =
        rng_.Uniform() < 0.7 ? "generate.text" : "generate.image";
    const char* slug = rng_.Uniform() < 0.6 ? "v1:meter:pack" : "v1:meter:tier";
    const double price = 0.01 + rng_.Uniform() * 0.99;
    fmt::format_to(
        std::back_inserter(body),
        R"({{"name":"{}","external_customer_id":{},{}"external_id":"loadtest-{}-{}-{}",)"
        R"("metadata":{{"selectedMeterSlug":"{}","totalPrice":{:.2f}}}}})",
        name, nlohmann::json(customer).dump(), timestamp, run_id_, sequence, i,
        slug, price);
  }
  body += "]}";
  return body;
}

void EventIngestionScenario::Start(const Arrival& arrival) {
  Request request;
  request.method = Method::kPost;
  request.path = "/v1/events/ingest";
  request.body = BuildBatch(arrival.sequence);
  request.intended = arrival.intended;
  ++in_flight_;
  series_.in_flight->Increment();
  context_.transport.Send(std::move(request), [this](Response&& response) {
    OnResponse(std::move(response));
  });
}

void EventIngestionScenario::OnResponse(Response&& response) {
  --in_flight_;
  series_.in_flight->Decrement();
  int64_t inserted = 0;
  int64_t duplicates = 0;
  Outcome outcome = JudgeIngestResponse(response, options_.batch_size,
                                        &inserted, &duplicates);
  ingest_.Record(outcome, response);
  if (inserted > 0) inserted_.Increment(static_cast<double>(inserted));
  if (duplicates > 0) duplicates_.Increment(static_cast<double>(duplicates));
}

Outcome JudgeIngestResponse(const Response& response, int batch_size,
                            int64_t* inserted, int64_t* duplicates) {
  *inserted = 0;
  *duplicates = 0;
  if (response.transport != Outcome::kOk) return response.transport;
  Outcome by_status = OutcomeFromStatus(response.status);
  if (by_status != Outcome::kOk) return by_status;
  if (response.status != 200)
    return Outcome::kCheckFailed;  // Polar answers ingest with 200
  auto json =
      nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object())
    return Outcome::kInvalidResponse;
  // Each count must be an integer in [0, batch_size]: checked one by one, so
  // their sum cannot overflow whatever the target wrote (inserted = 2^63 - 1
  // plus duplicates = 1 was signed overflow before).
  auto count = [&](const char* key, bool required, int64_t* out) {
    auto it = json.find(key);
    if (it == json.end()) return !required;
    if (!it->is_number_integer()) return false;
    if (it->is_number_unsigned()) {
      const uint64_t v = it->get<uint64_t>();
      if (v > static_cast<uint64_t>(batch_size)) return false;
      *out = static_cast<int64_t>(v);
      return true;
    }
    const int64_t v = it->get<int64_t>();
    if (v < 0 || v > batch_size) return false;
    *out = v;
    return true;
  };
  int64_t ins = 0;
  int64_t dup = 0;
  if (!count("inserted", true, &ins) || !count("duplicates", false, &dup))
    return Outcome::kCheckFailed;
  // More events than the batch held (6 + 2 of 7, found by the fuzz target) is
  // not believed either: events_total would count events never sent. Fewer is
  // (a short count says what Polar stored).
  if (ins + dup > batch_size) return Outcome::kCheckFailed;
  *inserted = ins;
  *duplicates = dup;
  if (ins + dup != batch_size) return Outcome::kCheckFailed;
  return Outcome::kOk;
}

}  // namespace polar
