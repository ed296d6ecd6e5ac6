#include "sim/events.h"

#include <algorithm>
#include <cmath>

#include "sim/validation.h"

namespace polar::sim {
namespace {

// Polar flushes at most 5000 event ids per event.ingested job
// (server/polar/worker/_enqueue.py).
constexpr uint64_t kIdsPerJob = 5000;
// Requests arriving within this window share one event.ingested job, so
// 20,000 ingests/s cost ~100 job hand-offs/s instead of 20,000.
constexpr auto kCoalesceWindow = std::chrono::milliseconds(10);

bool MetadataMatches(const json& metadata, const std::string& key,
                     const std::vector<std::string>& values) {
  // Tinybird's JSONExtractString only extracts strings: a numeric or boolean
  // value never matches a metadata[key] filter.
  auto it = metadata.find(key);
  if (it == metadata.end() || !it->is_string()) return false;
  const auto& v = it->get_ref<const std::string&>();
  return std::find(values.begin(), values.end(), v) != values.end();
}

bool AnyOf(const std::vector<std::string>& wanted,
           const std::optional<std::string>& value) {
  if (wanted.empty()) return true;
  return value &&
         std::find(wanted.begin(), wanted.end(), *value) != wanted.end();
}

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
      if (v.empty() || v.size() > 500) return false;
      return Meta(json(std::move(v)));
    }
    if (depth_ != 3) return false;
    StoredEvent& e = events_->back();
    if (key_ == "name") {
      if (v.size() > 128) return false;
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

DedupIndex::DedupIndex(std::size_t capacity)
    : shards_count_(capacity >= 16384 ? 16 : 1),
      // Hashes spread unevenly over shards (a standard deviation of ~250 ids
      // per shard at 1M): 5% headroom keeps any shard from evicting before
      // the whole index holds `capacity` ids.
      per_shard_(shards_count_ == 1 ? std::max<std::size_t>(1, capacity)
                                    : capacity / shards_count_ +
                                          capacity / shards_count_ / 20 + 64),
      shards_(new Shard[shards_count_]) {
  // Tables at most half full keep linear probes short.
  std::size_t slots = 1;
  while (slots < per_shard_ * 2) slots <<= 1;
  for (std::size_t i = 0; i < shards_count_; ++i) {
    shards_[i].slots.assign(slots, 0);
    shards_[i].ring.assign(per_shard_, 0);
  }
}

bool DedupIndex::Shard::Contains(uint64_t h) const {
  std::size_t mask = slots.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots[i] == 0) return false;
    if (slots[i] == h) return true;
  }
}

void DedupIndex::Shard::Add(uint64_t h) {
  std::size_t mask = slots.size() - 1;
  std::size_t i = h & mask;
  while (slots[i] != 0) i = (i + 1) & mask;
  slots[i] = h;
}

void DedupIndex::Shard::Remove(uint64_t h) {
  // Backward-shift deletion keeps probe chains intact without tombstones.
  std::size_t mask = slots.size() - 1;
  std::size_t i = h & mask;
  while (slots[i] != h) {
    if (slots[i] == 0) return;
    i = (i + 1) & mask;
  }
  std::size_t j = i;
  while (true) {
    slots[i] = 0;
    while (true) {
      j = (j + 1) & mask;
      if (slots[j] == 0) return;
      std::size_t home = slots[j] & mask;
      // Move slots[j] into the hole at i unless its home lies in (i, j].
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) break;
    }
    slots[i] = slots[j];
    i = j;
  }
}

std::vector<bool> DedupIndex::Insert(
    const std::vector<std::string>& external_ids) {
  std::vector<bool> fresh(external_ids.size(), true);
  for (std::size_t k = 0; k < external_ids.size(); ++k) {
    const std::string& id = external_ids[k];
    if (id.empty()) continue;  // NULL external_ids never collide
    uint64_t h = std::hash<std::string>{}(id);
    // Mix so shard and slot bits are independent; 0 marks an empty slot.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    if (h == 0) h = 1;
    Shard& shard = shards_[(h >> 59) % shards_count_];
    std::lock_guard lock(shard.mutex);
    if (shard.Contains(h)) {
      fresh[k] = false;
      continue;
    }
    if (shard.ring_size == per_shard_) {
      shard.Remove(shard.ring[shard.ring_head]);
      shard.ring_head = (shard.ring_head + 1) % per_shard_;
      --shard.ring_size;
    }
    shard.Add(h);
    shard.ring[(shard.ring_head + shard.ring_size) % per_shard_] = h;
    ++shard.ring_size;
  }
  return fresh;
}

int64_t DedupIndex::InsertBatch(const std::vector<std::string>& external_ids) {
  auto fresh = Insert(external_ids);
  return std::count(fresh.begin(), fresh.end(), true);
}

std::pair<uint64_t, uint64_t> EventStore::Append(
    std::vector<StoredEvent>& events) {
  std::unique_lock lock(mutex_);
  uint64_t first = first_seq_ + ring_.size();
  for (auto& e : events) ring_.push_back(std::move(e));
  while (ring_.size() > capacity_) {
    ring_.pop_front();
    ++first_seq_;
  }
  return {first, events.size()};
}

void EventStore::MarkVisible(uint64_t first, uint64_t count,
                             SteadyClock::time_point at) {
  std::unique_lock lock(mutex_);
  for (uint64_t seq = std::max(first, first_seq_); seq < first + count; ++seq) {
    uint64_t index = seq - first_seq_;
    if (index >= ring_.size()) break;
    ring_[index].visible_at = at;
  }
}

std::pair<std::vector<StoredEvent>, int64_t> EventStore::List(
    const EventQuery& q, SteadyClock::time_point now) const {
  std::shared_lock lock(mutex_);
  std::vector<const StoredEvent*> hits;
  for (const StoredEvent& e : ring_) {
    if (e.visible_at > now) continue;
    if (!AnyOf(q.external_customer_ids, e.external_customer_id)) continue;
    if (!AnyOf(q.customer_ids, e.customer_id)) continue;
    if (!q.names.empty() &&
        std::find(q.names.begin(), q.names.end(), e.name) == q.names.end())
      continue;
    if (q.start && !(e.timestamp > *q.start)) continue;
    if (q.end && !(e.timestamp < *q.end)) continue;
    bool ok = true;
    for (const auto& [key, values] : q.metadata) {
      if (!MetadataMatches(e.metadata, key, values)) {
        ok = false;
        break;
      }
    }
    if (ok) hits.push_back(&e);
  }
  std::stable_sort(hits.begin(), hits.end(),
                   [&](const StoredEvent* a, const StoredEvent* b) {
                     return q.ascending ? a->timestamp < b->timestamp
                                        : a->timestamp > b->timestamp;
                   });
  std::vector<StoredEvent> page;
  const PageRange range = PageOf(q.page, q.limit, hits.size());
  for (std::size_t i = range.begin; i < range.end; ++i)
    page.push_back(*hits[i]);
  return {std::move(page), static_cast<int64_t>(hits.size())};
}

std::size_t EventStore::size() const {
  std::shared_lock lock(mutex_);
  return ring_.size();
}

EventsApi::EventsApi(const EventOptions& options, const Organization& org,
                     CustomerStore* customers, Worker* worker)
    : options_(options),
      org_(org),
      customers_(customers),
      worker_(worker),
      dedup_(options.max_remembered_ids),
      store_(options.max_stored_events) {}

SimResponse EventsApi::Ingest(const SimRequest& request) {
  // Reused per thread: a batch's vectors cost no allocation in steady state.
  thread_local std::vector<StoredEvent> parsed;
  thread_local std::vector<std::string> external_ids;
  parsed.clear();
  external_ids.clear();
  const SysMicros now = NowMicros();
  {
    FastIngest fast(now, &parsed, &external_ids);
    if (json::sax_parse(request.body, &fast) && fast.complete())
      return Store(parsed, external_ids);
  }
  parsed.clear();
  external_ids.clear();
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) return JsonDecodeError("Expecting value");
  ValidationErrors errors;
  if (!body.is_object()) {
    errors.Add(Loc({"body"}), "model_attributes_type",
               "Input should be a valid dictionary or object to extract fields "
               "from",
               body);
    return errors.Response();
  }
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
  thread_local std::vector<StoredEvent> inserted;
  inserted.clear();
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    if (!fresh[i]) continue;
    parsed[i].id = NewId();
    inserted.push_back(std::move(parsed[i]));
  }
  const int64_t n = static_cast<int64_t>(inserted.size());
  const int64_t duplicates = static_cast<int64_t>(parsed.size()) - n;
  inserted_total_.fetch_add(static_cast<uint64_t>(n),
                            std::memory_order_relaxed);
  duplicates_total_.fetch_add(static_cast<uint64_t>(duplicates),
                              std::memory_order_relaxed);
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
                     auto at = SteadyClock::now() + lag;
                     for (const auto& [first, count] : batch)
                       store_.MarkVisible(first, count, at);
                     return JobResult::Done();
                   });
}

SimResponse EventsApi::List(const SimRequest& request) {
  ValidationErrors errors;
  EventQuery q;
  auto int_param = [&](const char* name, int64_t* out) {
    const std::string* v = request.Query(name);
    if (!v) return;
    try {
      std::size_t used = 0;
      long long n = std::stoll(*v, &used);
      if (used != v->size()) throw std::invalid_argument(*v);
      if (n <= 0) {
        errors.Add(Loc({"query", name}), "greater_than",
                   "Input should be greater than 0", *v, {{"gt", 0}});
        return;
      }
      *out = n;
    } catch (const std::exception&) {
      errors.Add(Loc({"query", name}), "int_parsing",
                 "Input should be a valid integer, unable to parse string as "
                 "an integer",
                 *v);
    }
  };
  int_param("page", &q.page);
  int_param("limit", &q.limit);
  q.limit = std::min(q.limit, kMaxPageLimit);
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
      SimResponse r;
      r.body = R"({"items":[],"pagination":{"total_count":0,"max_page":0}})";
      return r;
    }
  }

  auto [page, total] = store_.List(q, SteadyClock::now());
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
  int64_t max_page = (total + q.limit - 1) / q.limit;
  SimResponse r;
  r.body =
      json{{"items", std::move(items)},
           {"pagination", {{"total_count", total}, {"max_page", max_page}}}}
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace polar::sim
