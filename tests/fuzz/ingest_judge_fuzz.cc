// Fuzz target: the event-ingestion scenario's handling of Polar's answer,
// which is untrusted input: JudgeIngestResponse (status, then the JSON body's
// counts), and the whole path a response takes through the scenario (the
// judge, the step's metrics, the rate-limited failure log with its body
// excerpt) via a fake Transport.
//
// Input: byte 0 picks the transport outcome, bytes 1-2 the status (0-999),
// byte 3 the batch size (1-256); the rest is the body. Wherever the quick
// reader of Polar's usual answer (ingest_detail::ReadCountsQuickly) answers,
// the full JSON parser must read the same counts from the same body.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "exporters/metrics.h"
#include "scenarios/event_ingestion.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

class FakeTransport final : public polar::Transport {
 public:
  void Send(polar::Request request, polar::ResponseCallback done) override {
    last_ = std::move(request);
    done_ = std::move(done);
  }
  void Answer(polar::Response&& r) {
    auto done = std::move(done_);
    done(std::move(r));
  }

 private:
  polar::Request last_;
  polar::ResponseCallback done_;
};

struct World {
  World() {
    // Messages are formatted as in the daemon, then dropped.
    auto logger = std::make_shared<spdlog::logger>(
        "fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  prometheus::Registry registry;
  polar::Metrics metrics{registry};
  polar::FakeClock clock;
  FakeTransport transport;
  // One scenario per batch size the input can ask for, built on first use.
  std::unique_ptr<polar::EventIngestionScenario> scenarios[256];

  polar::EventIngestionScenario& ScenarioFor(int batch_size) {
    auto& s = scenarios[batch_size - 1];
    if (!s) {
      polar::EventIngestionOptions options;
      options.batch_size = batch_size;
      s = std::make_unique<polar::EventIngestionScenario>(
          polar::ScenarioContext{"fuzz", transport, clock, metrics, 1},
          options);
    }
    return *s;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World;  // shared by every input, never freed
  if (size < 4) return 0;
  static constexpr polar::Outcome kTransport[] = {
      polar::Outcome::kOk, polar::Outcome::kTimeout,
      polar::Outcome::kConnectError, polar::Outcome::kTlsError,
      polar::Outcome::kInvalidResponse};
  polar::Response response;
  response.transport = kTransport[data[0] % std::size(kTransport)];
  response.status = (data[1] << 8 | data[2]) % 1000;
  const int batch_size = data[3] + 1;
  response.body.assign(reinterpret_cast<const char*>(data + 4), size - 4);

  uint64_t quick_inserted = 0;
  std::optional<uint64_t> quick_duplicates;
  if (polar::ingest_detail::ReadCountsQuickly(response.body, &quick_inserted,
                                              &quick_duplicates)) {
    const auto json = nlohmann::json::parse(response.body, nullptr, false);
    if (json.is_discarded() || !json.is_object()) __builtin_trap();
    if (json.size() != (quick_duplicates ? 2u : 1u)) __builtin_trap();
    auto same = [&](const char* key, uint64_t want) {
      auto it = json.find(key);
      return it != json.end() && it->is_number_unsigned() &&
             it->get<uint64_t>() == want;
    };
    if (!same("inserted", quick_inserted)) __builtin_trap();
    if (quick_duplicates && !same("duplicates", *quick_duplicates))
      __builtin_trap();
  }

  int64_t inserted = -1, duplicates = -1;
  const polar::Outcome outcome =
      polar::JudgeIngestResponse(response, batch_size, &inserted, &duplicates);
  if (inserted < 0 || duplicates < 0 || inserted + duplicates > batch_size)
    __builtin_trap();  // counts out of range
  if (outcome == polar::Outcome::kOk && inserted + duplicates != batch_size)
    __builtin_trap();

  // The same answer through the scenario: Start() sends, Answer() responds.
  polar::EventIngestionScenario& scenario = world->ScenarioFor(batch_size);
  world->clock.Advance(std::chrono::milliseconds(1));
  scenario.Start(polar::Arrival{world->clock.Now(), 0});
  response.intended = response.sent = world->clock.Now();
  response.done = response.sent + std::chrono::milliseconds(3);
  world->transport.Answer(std::move(response));
  if (scenario.in_flight() != 0) __builtin_trap();
  return 0;
}
