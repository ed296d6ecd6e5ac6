#include "scenarios/event_visibility.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace polar {

using nlohmann::json;

std::string UrlEncode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
        (u >= '0' && u <= '9') || u == '-' || u == '_' || u == '.' ||
        u == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

EventVisibilityScenario::EventVisibilityScenario(ScenarioContext context,
                                                 EventVisibilityOptions options)
    : context_(std::move(context)),
      options_(std::move(options)),
      timers_(*context_.timers),
      rng_(context_.seed),
      ingest_(context_.metrics, context_.name, "ingest"),
      probe_(context_.metrics, context_.name, "probe"),
      series_(context_.metrics.Scenario(context_.name)),
      completion_(context_.metrics.Completion(context_.name,
                                              CompletionKind::kEventVisible)) {
  run_id_ = MakeRunId(context_.clock.WallNow(), rng_);
  customer_json_ = json(options_.probe_customer_id).dump();
  customer_query_ = UrlEncode(options_.probe_customer_id);
}

EventVisibilityScenario::~EventVisibilityScenario() {
  for (auto& [id, probe] : probes_) timers_.Cancel(probe->timer);
}

EventVisibilityScenario::Probe* EventVisibilityScenario::Find(uint64_t id) {
  auto it = probes_.find(id);
  return it == probes_.end() ? nullptr : it->second.get();
}

void EventVisibilityScenario::Start(const Arrival& arrival) {
  auto owned = std::make_unique<Probe>();
  Probe& p = *owned;
  p.id = next_probe_++;
  p.probe_id = fmt::format("{}-{}", run_id_, arrival.sequence);
  const WallTime wall = context_.clock.WallNow();
  p.start_timestamp =
      FormatIsoUtc(wall - std::chrono::duration_cast<WallTime::duration>(
                              options_.search_margin));
  std::string timestamp;
  if (options_.timestamp_backdate) {
    timestamp = fmt::format(
        R"("timestamp":"{}",)",
        FormatIsoUtc(wall - std::chrono::duration_cast<WallTime::duration>(
                                *options_.timestamp_backdate)));
  }
  Request r;
  r.method = Method::kPost;
  r.path = "/v1/events/ingest";
  r.intended = arrival.intended;
  r.body = fmt::format(
      R"({{"events":[{{"name":{},"external_customer_id":{},{})"
      R"("external_id":"polar-loadd-probe-{}","metadata":{{"probe_id":"{}"}}}}]}})",
      json(options_.event_name).dump(), customer_json_, timestamp, p.probe_id,
      p.probe_id);
  p.busy = true;
  const uint64_t id = p.id;
  probes_.emplace(id, std::move(owned));
  series_.in_flight->Increment();
  context_.transport.Send(std::move(r), [this, id](Response&& response) {
    OnIngested(id, std::move(response));
  });
}

void EventVisibilityScenario::OnIngested(uint64_t id, Response&& response) {
  Probe* p = Find(id);
  if (!p) return;
  p->busy = false;
  Outcome outcome = response.transport;
  if (outcome == Outcome::kOk) outcome = OutcomeFromStatus(response.status);
  if (outcome == Outcome::kOk) {
    json body = json::parse(response.body, nullptr, false);
    if (body.is_discarded()) {
      outcome = Outcome::kInvalidResponse;
    } else if (response.status != 200 || !body.is_object() ||
               body.value("inserted", json()) != 1) {
      // A duplicate (inserted 0) cannot be timed: the listed event would be
      // an older one.
      outcome = Outcome::kCheckFailed;
    }
  }
  ingest_.Record(outcome, response);
  if (outcome != Outcome::kOk) ExplainIngestRefusal(context_.name, response);
  if (outcome != Outcome::kOk) return End(*p);
  p->ingested_at = response.done;
  Poll(*p, response.done + options_.poll_interval);
}

void EventVisibilityScenario::Poll(Probe& p, MonoTime at) {
  if (at > p.ingested_at + options_.deadline) {
    completion_.lost->Increment();
    return End(p);
  }
  const uint64_t id = p.id;
  p.timer = timers_.At(at, [this, id, at] {
    Probe* probe = Find(id);
    if (!probe) return;
    probe->timer = Timers::kNone;
    Request r;
    r.method = Method::kGet;
    r.path = fmt::format(
        "/v1/events/?external_customer_id={}&metadata%5Bprobe_id%5D={}"
        "&start_timestamp={}&limit=1",
        customer_query_, UrlEncode(probe->probe_id),
        UrlEncode(probe->start_timestamp));
    r.intended = at;
    probe->busy = true;
    context_.transport.Send(std::move(r), [this, id](Response&& response) {
      OnPolled(id, std::move(response));
    });
  });
}

void EventVisibilityScenario::OnPolled(uint64_t id, Response&& response) {
  Probe* p = Find(id);
  if (!p) return;
  p->busy = false;
  Outcome outcome = response.transport;
  if (outcome == Outcome::kOk) outcome = OutcomeFromStatus(response.status);
  bool listed = false;
  if (outcome == Outcome::kOk) {
    json body = json::parse(response.body, nullptr, false);
    if (body.is_discarded()) {
      outcome = Outcome::kInvalidResponse;
    } else if (response.status != 200 || !body.is_object() ||
               !body.contains("items") || !body["items"].is_array() ||
               !body.contains("pagination") ||
               !body["pagination"].is_object() ||
               !body["pagination"]
                    .value("total_count", json())
                    .is_number_integer()) {
      outcome = Outcome::kCheckFailed;
    } else {
      listed = body["pagination"]["total_count"].get<int64_t>() >= 1;
      // The filter must have worked: what is listed is this probe.
      const json& items = body["items"];
      if (listed && !items.empty()) {
        const json& item = items[0];
        if (!item.is_object() || !item.contains("metadata") ||
            !item["metadata"].is_object() ||
            item["metadata"].value("probe_id", json()) != p->probe_id) {
          outcome = Outcome::kCheckFailed;
        }
      }
    }
  }
  probe_.Record(outcome, response);
  if (outcome != Outcome::kOk) return End(*p);
  if (listed && response.done - p->ingested_at > options_.deadline) {
    completion_.lost->Increment();  // seen, but only after the deadline
    return End(*p);
  }
  if (listed) {
    completion_.seconds->Observe(
        ToSeconds(std::max(Duration::zero(), response.done - p->ingested_at)));
    return End(*p);
  }
  Poll(*p, response.done + options_.poll_interval);
}

void EventVisibilityScenario::End(Probe& p) {
  timers_.Cancel(p.timer);
  series_.in_flight->Decrement();
  probes_.erase(p.id);
}

}  // namespace polar
