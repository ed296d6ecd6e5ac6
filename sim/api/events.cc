#include "sim/api/events.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "sim/api/io.h"
#include "sim/api/validation.h"

namespace polar::sim {
namespace {

// Polar flushes at most 5000 event ids per event.ingested job
// (server/polar/worker/_enqueue.py).
constexpr uint64_t kIdsPerJob = 5000;
// Requests arriving within this window share one event.ingested job, so
// 20,000 ingests/s cost ~100 job hand-offs/s instead of 20,000.
constexpr auto kCoalesceWindow = std::chrono::milliseconds(10);

// Query strings decode '+' as a space; a timestamp offset sent unencoded
// arrives as " 00:00".
bool ParseQueryTimestamp(std::string text, SysMicros* out) {
  for (char& c : text)
    if (c == ' ') c = '+';
  return ParseTimestamp(text, out);
}

// The common ingest body, parsed without building a DOM: {"events":[{...}]}
// whose events have a name, an external_customer_id and optionally
// external_id, timestamp, external_member_id, parent_id and flat metadata.
// Anything else (another shape, an error to report, customer_id,
// organization_id, _cost/_llm) makes it give up, and the full validating
// parser below handles the body, so both paths answer alike. At 20,000
// requests/s the DOM's allocations were a third of polar-sim's time.
class FastIngest : public nlohmann::json_sax<json> {
 public:
  FastIngest(SysMicros now, std::vector<StoredEvent>* events,
             std::vector<std::string>* external_ids)
      : now_(now), events_(events), external_ids_(external_ids) {}

  bool complete() const { return saw_events_ && depth_ == 0; }

  bool null() override {
    if (depth_ == 3 && (key_ == "external_id" || key_ == "parent_id" ||
                        key_ == "external_member_id"))
      return true;  // explicit nulls of optional fields
    return false;
  }
  bool boolean(bool v) override { return Meta(json(v)); }
  bool number_integer(number_integer_t v) override { return Meta(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return Meta(json(v)); }
  bool number_float(number_float_t v, const string_t&) override {
    return Meta(json(v));
  }
  bool binary(binary_t&) override { return false; }
  bool string(string_t& v) override {
    if (depth_ == 4) {
      if (v.empty() || Utf8Length(v) > 500) return false;
      return Meta(json(std::move(v)));
    }
    if (depth_ != 3) return false;
    StoredEvent& e = events_->back();
    if (key_ == "name") {
      if (Utf8Length(v) > 128) return false;
      e.name = std::move(v);
      has_name_ = true;
    } else if (key_ == "external_customer_id") {
      e.external_customer_id = std::move(v);
    } else if (key_ == "external_id") {
      external_ids_->back() = std::move(v);
    } else if (key_ == "timestamp") {
      SysMicros when;
      if (!ParseTimestamp(v, &when) || when > now_) return false;
      e.timestamp = when;
    } else if (key_ == "external_member_id") {
      e.external_member_id = std::move(v);
    } else if (key_ != "parent_id") {
      return false;
    }
    return true;
  }
  bool start_object(std::size_t) override {
    ++depth_;
    if (depth_ == 1) return true;
    if (depth_ == 3 && in_events_) {
      events_->emplace_back();
      events_->back().timestamp = now_;
      external_ids_->emplace_back();
      has_name_ = false;
      return true;
    }
    if (depth_ == 4 && key_ == "metadata") return true;
    return false;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      if (k != "events") return false;
      return true;
    }
    if (depth_ == 3) {
      key_ = std::move(k);
      return true;
    }
    if (depth_ == 4) {
      meta_key_ = std::move(k);
      return true;
    }
    return false;
  }
  bool end_object() override {
    if (depth_ == 3) {
      const StoredEvent& e = events_->back();
      if (!has_name_ || !e.external_customer_id) return false;
    }
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    if (depth_ == 2 && !saw_events_) {
      in_events_ = true;
      return true;
    }
    return false;
  }
  bool end_array() override {
    --depth_;
    in_events_ = false;
    saw_events_ = true;
    return true;
  }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool Meta(json v) {
    if (depth_ != 4 || meta_key_.empty() || meta_key_.front() == '_')
      return false;
    events_->back().metadata[meta_key_] = std::move(v);
    return true;
  }

  SysMicros now_;
  std::vector<StoredEvent>* events_;
  std::vector<std::string>* external_ids_;
  int depth_ = 0;
  bool in_events_ = false;
  bool saw_events_ = false;
  bool has_name_ = false;
  std::string key_, meta_key_;
};

}  // namespace

EventsApi::EventsApi(const EventOptions& options, const Organization& org,
                     CustomerStore* customers, Worker* worker,
                     const Clock& clock, prometheus::Registry& registry)
    : options_(options),
      org_(org),
      customers_(customers),
      worker_(worker),
      clock_(clock),
      dedup_(options.max_remembered_ids),
      store_(options.max_stored_events) {
  auto& ingested = prometheus::BuildCounter()
                       .Name("polar_sim_events_ingested_total")
                       .Help(
                           "Events answered by POST /v1/events/ingest, by "
                           "result: inserted, or duplicate (an external_id "
                           "seen before).")
                       .Register(registry);
  inserted_total_ = &ingested.Add({{"result", "inserted"}});
  duplicates_total_ = &ingested.Add({{"result", "duplicate"}});
  stored_ = &prometheus::BuildGauge()
                 .Name("polar_sim_events_stored")
                 .Help("Events held for GET /v1/events/.")
                 .Register(registry)
                 .Add({});
  forgotten_ = &prometheus::BuildCounter()
                    .Name("polar_sim_event_ids_forgotten_total")
                    .Help(
                        "external_ids the dedup memory (--max-event-ids) "
                        "forgot to make room since start; one sent again is "
                        "inserted where Polar would count a duplicate.")
                    .Register(registry)
                    .Add({});
}

void EventsApi::UpdateGauges() {
  stored_->Set(static_cast<double>(store_.size()));
  // The index counts; the counter catches up (concurrent scrapes add each
  // forgotten id once).
  const uint64_t now = dedup_.forgotten();
  uint64_t reported = forgotten_reported_.load();
  while (reported < now &&
         !forgotten_reported_.compare_exchange_weak(reported, now)) {
  }
  if (reported < now)
    forgotten_->Increment(static_cast<double>(now - reported));
}

SimResponse EventsApi::Ingest(const SimRequest& request) {
  // Reused per thread: a batch's vectors cost no allocation in steady state.
  thread_local std::vector<StoredEvent> parsed;
  thread_local std::vector<std::string> external_ids;
  parsed.clear();
  external_ids.clear();
  const SysMicros now = clock_.WallNow();
  {
    FastIngest fast(now, &parsed, &external_ids);
    if (json::sax_parse(request.body, &fast) && fast.complete())
      return Store(parsed, external_ids);
  }
  parsed.clear();
  external_ids.clear();
  json body;
  if (auto error = ReadObject(request, &body)) return *error;
  ValidationErrors errors;
  auto events_it = body.find("events");
  if (events_it == body.end()) {
    errors.Missing(body, "events", Loc({"body"}));
    return errors.Response();
  }
  if (!events_it->is_array()) {
    errors.Add(Loc({"body", "events"}), "list_type",
               "Input should be a valid list", *events_it);
    return errors.Response();
  }
  json& events = *events_it;
  for (std::size_t i = 0; i < events.size(); ++i) {
    json& e = events[i];
    const json loc = Loc({"body", "events", i});
    if (!e.is_object()) {
      errors.Add(loc, "model_attributes_type",
                 "Input should be a valid dictionary or object to extract "
                 "fields from",
                 e);
      continue;
    }
    const bool by_customer = e.contains("customer_id");
    const bool by_external = e.contains("external_customer_id");
    if (!by_customer && !by_external) {
      // Neither member of the union matches: pydantic reports both, tagged.
      errors.Missing(e, "customer_id", Append(loc, "EventCreateCustomer"));
      errors.Missing(e, "external_customer_id",
                     Append(loc, "EventCreateExternalCustomer"));
      continue;
    }
    StoredEvent out;
    if (!e.contains("name")) {
      errors.Missing(e, "name", loc);
    } else if (errors.OptString(e, "name", loc, 128)) {
      out.name = e["name"].get<std::string>();
    } else if (e["name"].is_null()) {
      errors.Add(Append(loc, "name"), "string_type",
                 "Input should be a valid string", nullptr);
    }
    if (by_customer) {
      if (errors.OptUuid(e, "customer_id", loc)) {
        out.customer_id = e["customer_id"].get<std::string>();
      } else if (e["customer_id"].is_null()) {
        errors.Add(Append(loc, "customer_id"), "uuid_type",
                   "UUID input should be a string, bytes or UUID object",
                   nullptr);
      }
      if (errors.OptUuid(e, "member_id", loc))
        out.member_id = e["member_id"].get<std::string>();
    } else {
      if (errors.OptString(e, "external_customer_id", loc)) {
        out.external_customer_id = e["external_customer_id"].get<std::string>();
      } else if (e["external_customer_id"].is_null()) {
        errors.Add(Append(loc, "external_customer_id"), "string_type",
                   "Input should be a valid string", nullptr);
      }
      if (errors.OptString(e, "external_member_id", loc))
        out.external_member_id = e["external_member_id"].get<std::string>();
    }
    out.timestamp = now;
    if (auto ts = e.find("timestamp"); ts != e.end()) {
      SysMicros when;
      if (!ts->is_string() || !ParseTimestamp(ts->get<std::string>(), &when)) {
        errors.Add(Append(loc, "timestamp"), "timezone_aware",
                   "Input should have timezone info", *ts);
      } else if (when > now) {
        errors.Add(Append(loc, "timestamp"), "value_error",
                   "Value error, Timestamp must be in the past.", *ts,
                   {{"error", {}}});
      } else {
        out.timestamp = when;
      }
    }
    errors.OptUuid(e, "organization_id", loc);
    errors.OptString(e, "external_id", loc);
    errors.OptString(e, "parent_id", loc);
    if (errors.OptMetadata(e, "metadata", loc, /*event_metadata=*/true))
      out.metadata = std::move(e["metadata"]);
    auto id = e.find("external_id");
    external_ids.push_back(id != e.end() && id->is_string()
                               ? id->get<std::string>()
                               : std::string());
    parsed.push_back(std::move(out));
  }
  if (!errors.empty()) return errors.Response();

  // The service's own checks (polar/event/service.py ingest), after the schema.
  for (std::size_t i = 0; i < events.size(); ++i) {
    const json& e = events[i];
    if (auto org = e.find("organization_id");
        org != e.end() && !org->is_null()) {
      errors.Add(Loc({"body", "events", i, "organization_id"}),
                 "organization_token",
                 "Setting organization_id is disallowed when using an "
                 "organization token.",
                 *org);
    }
    if (parsed[i].customer_id && !customers_->ById(*parsed[i].customer_id)) {
      errors.Add(Loc({"body", "events", i, "customer_id"}), "customer_id",
                 "Customer not found.", *parsed[i].customer_id);
    }
  }
  if (!errors.empty()) return errors.Response("PolarRequestValidationError");

  return Store(parsed, external_ids);
}

SimResponse EventsApi::Store(std::vector<StoredEvent>& parsed,
                             const std::vector<std::string>& external_ids) {
  std::vector<bool> fresh = dedup_.Insert(external_ids);
  if (dedup_.forgotten() > 0 && !said_forgetting_.exchange(true)) {
    std::fprintf(stderr,
                 "polar-sim: the dedup memory is full (--max-event-ids %zu): "
                 "the oldest external_ids are forgotten from now on, and one "
                 "of them sent again is inserted where Polar would answer a "
                 "duplicate (polar_sim_event_ids_forgotten_total)\n",
                 options_.max_remembered_ids);
  }
  thread_local std::vector<StoredEvent> inserted;
  inserted.clear();
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    if (!fresh[i]) continue;
    parsed[i].id = NewId();
    inserted.push_back(std::move(parsed[i]));
  }
  const int64_t n = static_cast<int64_t>(inserted.size());
  const int64_t duplicates = static_cast<int64_t>(parsed.size()) - n;
  if (n > 0) inserted_total_->Increment(static_cast<double>(n));
  if (duplicates > 0)
    duplicates_total_->Increment(static_cast<double>(duplicates));
  if (n > 0) {
    auto [first, count] = store_.Append(inserted);
    EnqueueIngested(first, count);
  }
  SimResponse r;
  r.body = "{\"inserted\":" + std::to_string(n) +
           ",\"duplicates\":" + std::to_string(duplicates) + "}";
  return r;
}

void EventsApi::EnqueueIngested(uint64_t first, uint64_t count) {
  {
    std::lock_guard lock(pending_mutex_);
    pending_.emplace_back(first, count);
    if (job_queued_) return;
    job_queued_ = true;
  }
  if (!worker_->Enqueue(
          kQueueLow, "event.ingested",
          [this](JobContext& ctx) {
            ctx.Work();
            RunIngested();
            return JobResult::Done();
          },
          kCoalesceWindow)) {
    // Queue full: these events never become visible, as when Polar's worker
    // loses jobs. The drop is counted by the worker.
    std::lock_guard lock(pending_mutex_);
    pending_.clear();
    job_queued_ = false;
  }
}

void EventsApi::RunIngested() {
  std::vector<std::pair<uint64_t, uint64_t>> batch;
  uint64_t ids = 0;
  bool more = false;
  {
    std::lock_guard lock(pending_mutex_);
    std::size_t taken = 0;
    while (taken < pending_.size() && ids < kIdsPerJob) {
      batch.push_back(pending_[taken]);
      ids += pending_[taken].second;
      ++taken;
    }
    pending_.erase(pending_.begin(),
                   pending_.begin() + static_cast<std::ptrdiff_t>(taken));
    more = !pending_.empty();
    job_queued_ = more;
  }
  if (more) {
    worker_->Enqueue(
        kQueueLow, "event.ingested",
        [this](JobContext& ctx) {
          ctx.Work();
          RunIngested();
          return JobResult::Done();
        },
        kCoalesceWindow);
  }
  if (batch.empty()) return;
  worker_->Enqueue(kQueueTinybird, "tinybird.ingest",
                   [this, batch = std::move(batch)](JobContext& ctx) {
                     ctx.Work();
                     Duration lag;
                     {
                       std::lock_guard lock(lag_mutex_);
                       lag = options_.visibility_lag.Sample(lag_rng_);
                     }
                     auto at = clock_.Now() + lag;
                     for (const auto& [first, count] : batch)
                       store_.MarkVisible(first, count, at);
                     return JobResult::Done();
                   });
}

SimResponse EventsApi::List(const SimRequest& request) {
  ValidationErrors errors;
  EventQuery q;
  PageQuery page_query;
  ReadPage(request, &page_query, errors);
  q.page = page_query.page;
  q.limit = page_query.limit;
  q.external_customer_ids = request.QueryAll("external_customer_id");
  q.customer_ids = request.QueryAll("customer_id");
  q.names = request.QueryAll("name");
  for (const char* name : {"start_timestamp", "end_timestamp"}) {
    const std::string* v = request.Query(name);
    if (!v) continue;
    SysMicros t;
    if (!ParseQueryTimestamp(*v, &t)) {
      errors.Add(Loc({"query", name}), "datetime_from_date_parsing",
                 "Input should be a valid datetime or date", *v);
      continue;
    }
    (std::string_view(name) == "start_timestamp" ? q.start : q.end) = t;
  }
  if (const std::string* sorting = request.Query("sorting")) {
    if (*sorting == "timestamp") {
      q.ascending = true;
    } else if (*sorting != "-timestamp") {
      errors.Add(Loc({"query", "sorting", 0}), "enum",
                 "Input should be 'timestamp' or '-timestamp'", *sorting,
                 {{"expected", "'timestamp' or '-timestamp'"}});
    }
  }
  for (const auto& [key, value] : request.query) {
    if (key.size() > 10 && key.rfind("metadata[", 0) == 0 &&
        key.back() == ']') {
      std::string k = key.substr(9, key.size() - 10);
      auto it = std::find_if(q.metadata.begin(), q.metadata.end(),
                             [&](const auto& p) { return p.first == k; });
      if (it == q.metadata.end()) {
        q.metadata.emplace_back(k, std::vector<std::string>{value});
      } else {
        it->second.push_back(value);
      }
    }
  }
  if (!errors.empty()) return errors.Response();
  // Another organization's id lists nothing: the token only sees its own.
  for (const std::string& org : request.QueryAll("organization_id")) {
    if (org != org_.id) {
      return ListResponse(json::array(), 0, q.limit);
    }
  }

  auto [page, total] = store_.List(q, clock_.Now());
  json items = json::array();
  for (const StoredEvent& e : page) {
    std::optional<Customer> customer;
    if (e.customer_id) {
      customer = customers_->ById(*e.customer_id);
    } else if (e.external_customer_id) {
      customer = customers_->ByExternalId(*e.external_customer_id);
    }
    items.push_back(
        {{"id", e.id},
         {"timestamp", FormatTimestamp(e.timestamp)},
         {"organization_id", org_.id},
         {"customer_id", customer ? json(customer->id) : json(nullptr)},
         {"customer", customer ? CustomerJson(*customer) : json(nullptr)},
         {"external_customer_id", e.external_customer_id
                                      ? json(*e.external_customer_id)
                                      : json(nullptr)},
         {"member_id", e.member_id ? json(*e.member_id) : json(nullptr)},
         {"external_member_id",
          e.external_member_id ? json(*e.external_member_id) : json(nullptr)},
         {"child_count", 0},
         {"parent_id", nullptr},
         {"label", e.name},
         {"name", e.name},
         {"source", "user"},
         {"metadata", e.metadata}});
  }
  return ListResponse(std::move(items), total, q.limit);
}

}  // namespace polar::sim
