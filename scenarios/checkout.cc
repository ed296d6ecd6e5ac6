#include "scenarios/checkout.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace polar {
namespace {

using nlohmann::json;

// A stream outlives the steps before confirm (three think times and three
// requests) and then the completion deadline; the transport's own deadline
// is only a backstop behind the scenario's, so it gets a minute more.
constexpr Duration kStreamBackstop = std::chrono::seconds(60);

bool IsJsonString(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() &&
         !it->get_ref<const std::string&>().empty();
}

const std::string& Str(const json& j, const char* key) {
  return j.find(key)->get_ref<const std::string&>();
}

}  // namespace

struct CheckoutScenario::Flow {
  uint64_t id = 0;
  MonoTime start{};  // the arrival's intended start
  int depth = 0;     // the last funnel step: 0 create, 1 update, 2 status,
                     // 3 confirm
  std::size_t email_index = 0;
  bool email_new = false;  // no confirm of this run used the address before
  std::string email;
  std::string name;
  std::string checkout_id;
  std::string secret;

  bool busy = false;  // a Send is on the wire (a flow never ends meanwhile)
  Timers::Id timer = Timers::kNone;     // think time or the next poll
  Timers::Id deadline = Timers::kNone;  // completion deadline
  bool expired = false;  // the deadline passed while a request was out

  // The SSE stream (completion = stream).
  StreamId stream = kNoStream;
  bool stream_reconnect = false;  // the server said {"type": "reconnect"}
  bool verify_on_open = false;    // check `succeeded` once the new one is live
  bool stream_open = false;       // headers arrived and were right
  bool stream_gone = false;       // ended without a failure: poll instead
  bool stream_recorded = false;   // its step outcome is counted
  std::optional<Outcome> stream_failed;
  Response stream_head;  // timings of the stream's request, for its step
  std::unique_ptr<SseParser> sse;
  bool confirm_waiting = false;  // think time over, waiting for the stream

  bool confirmed = false;
  MonoTime confirmed_at{};
  std::optional<MonoTime> succeeded_seen;  // on the stream
};

CheckoutScenario::CheckoutScenario(ScenarioContext context,
                                   CheckoutOptions options)
    : context_(std::move(context)),
      options_(std::move(options)),
      timers_(*context_.timers),
      rng_(context_.seed),
      // This shard's slice of the pool (all of it when unsharded; config
      // makes the pool at least as large as the shard count).
      email_state_(std::max<std::size_t>(
                       1, context_.shard.SliceSize(static_cast<uint64_t>(
                              std::max(1, options_.customer_pool)))),
                   EmailState::kUnused),
      create_(context_.metrics, context_.name, "create"),
      update_(context_.metrics, context_.name, "update"),
      status_(context_.metrics, context_.name, "status"),
      confirm_(context_.metrics, context_.name, "confirm"),
      series_(context_.metrics.Scenario(context_.name)),
      completion_(context_.metrics.Completion(
          context_.name, CompletionKind::kCheckoutSucceeded)) {
  run_id_ = MakeRunId(context_.clock.WallNow(), rng_);
  if (options_.completion == CompletionMode::kStream) {
    stream_.emplace(context_.metrics, context_.name, "stream");
  } else {
    get_.emplace(context_.metrics, context_.name, "get");
  }
}

CheckoutScenario::~CheckoutScenario() {
  // Only timers: the transport may already be gone at shutdown (App destroys
  // the engine first, abandoning what is on the wire without callbacks).
  for (auto& [id, flow] : flows_) {
    timers_.Cancel(flow->timer);
    timers_.Cancel(flow->deadline);
  }
}

CheckoutScenario::Flow* CheckoutScenario::Find(uint64_t id) {
  auto it = flows_.find(id);
  return it == flows_.end() ? nullptr : it->second.get();
}

StepRecorder& CheckoutScenario::Recorder(Step step) {
  switch (step) {
    case Step::kCreate:
      return create_;
    case Step::kUpdate:
      return update_;
    case Step::kStatus:
      return status_;
    case Step::kConfirm:
      return confirm_;
    case Step::kGet:
      break;
  }
  if (!get_) get_.emplace(context_.metrics, context_.name, "get");
  return *get_;
}

void CheckoutScenario::Start(const Arrival& arrival) {
  auto owned = std::make_unique<Flow>();
  Flow& f = *owned;
  f.id = next_flow_++;
  f.start = arrival.intended;
  // Every draw happens for every flow, so a seed gives the same sequence of
  // funnels, addresses and names whatever the target answers.
  const double u = rng_.Uniform();
  f.depth = u < options_.confirm_ratio  ? 3
            : u < options_.status_ratio ? 2
            : u < options_.update_ratio ? 1
                                        : 0;
  f.email_index = rng_.Below(email_state_.size());
  // The address carries the pool index, which is this shard's own
  // (index % N == i): shards never share a customer.
  f.email = AsciiLower(TaggedEmail(
      options_.customer_email,
      fmt::format("{}-{}", run_id_, context_.shard.SliceItem(f.email_index))));
  f.name = RandomCustomerName(rng_);
  flows_.emplace(f.id, std::move(owned));
  series_.in_flight->Increment();
  SendStep(f, Step::kCreate, arrival.intended);
}

std::string CheckoutScenario::CustomerBody(const Flow& f) const {
  json body = {{"customer_email", f.email}, {"customer_name", f.name}};
  if (options_.billing_address) {
    const BillingAddress& a = *options_.billing_address;
    json address = {{"country", a.country}};
    for (const auto& [key, value] :
         {std::pair<const char*, const std::string*>{"line1", &a.line1},
          {"line2", &a.line2},
          {"postal_code", &a.postal_code},
          {"city", &a.city},
          {"state", &a.state}}) {
      if (!value->empty()) address[key] = *value;
    }
    body["customer_billing_address"] = std::move(address);
  }
  return body.dump();
}

void CheckoutScenario::SendStep(Flow& f, Step step, MonoTime intended) {
  Request r;
  r.intended = intended;
  const std::string client = "/v1/checkouts/client/" + f.secret;
  switch (step) {
    case Step::kCreate: {
      json body;
      if (options_.create_form == CreateForm::kProducts) {
        body["products"] = json::array({options_.product_id});
      } else {
        body["product_id"] = options_.product_id;
      }
      // Marks the checkout (and the order made from it) as synthetic load.
      body["metadata"] = {{"polar_loadd_run", run_id_}};
      r.method = Method::kPost;
      r.path = "/v1/checkouts/";
      r.body = body.dump();
      break;
    }
    case Step::kUpdate:
      r.method = Method::kPatch;
      r.path = client;
      r.body = CustomerBody(f);
      r.authenticated = false;  // the checkout page has no token
      break;
    case Step::kStatus:
      r.method = Method::kGet;
      r.path = client;
      r.authenticated = false;
      break;
    case Step::kConfirm:
      if (f.stream_failed) {
        End(f, *f.stream_failed, intended);
        return;
      }
      if (f.stream != kNoStream && !f.stream_open) {
        // The page confirms once its stream is live, so `succeeded` cannot
        // slip past before the subscription.
        f.confirm_waiting = true;
        return;
      }
      // A new customer is expected only if no confirm with this address
      // succeeded or is under way: marked used when the confirm succeeds
      // (a refused one creates nobody).
      f.email_new = email_state_[f.email_index] == EmailState::kUnused;
      if (f.email_new) email_state_[f.email_index] = EmailState::kConfirming;
      r.method = Method::kPost;
      r.path = client + "/confirm";
      r.body = CustomerBody(f);
      r.authenticated = false;
      break;
    case Step::kGet:
      r.method = Method::kGet;
      r.path = "/v1/checkouts/" + f.checkout_id;
      break;
  }
  f.busy = true;
  const uint64_t id = f.id;
  context_.transport.Send(std::move(r), [this, id, step](Response&& response) {
    OnResponse(id, step, std::move(response));
  });
}

void CheckoutScenario::After(Flow& f, Step step, MonoTime previous_end) {
  const MonoTime at = previous_end + options_.think_time;
  if (options_.think_time <= Duration::zero()) {
    SendStep(f, step, at);
    return;
  }
  const uint64_t id = f.id;
  f.timer = timers_.At(at, [this, id, step, at] {
    Flow* flow = Find(id);
    if (!flow) return;
    flow->timer = Timers::kNone;
    SendStep(*flow, step, at);
  });
}

Outcome CheckoutScenario::Judge(const Flow& f, Step step,
                                const Response& response,
                                nlohmann::json* out) const {
  if (response.transport != Outcome::kOk) return response.transport;
  Outcome by_status = OutcomeFromStatus(response.status);
  if (by_status != Outcome::kOk) return by_status;
  // Polar answers create with 201 and everything else here with 200 (confirm
  // too, docs/polar-api.md §2.6).
  const long expected = step == Step::kCreate ? 201 : 200;
  if (response.status != expected) return Outcome::kCheckFailed;
  json& body = *out;
  body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Outcome::kInvalidResponse;
  if (!body.is_object() || !IsJsonString(body, "id") ||
      !IsJsonString(body, "status")) {
    return Outcome::kCheckFailed;
  }
  const std::string& status = Str(body, "status");
  if (step == Step::kCreate) {
    if (!IsJsonString(body, "client_secret") || status != "open")
      return Outcome::kCheckFailed;
    // A product that needs a payment: confirm would need a Stripe
    // confirmation token, which only Stripe.js makes (docs/polar-api.md
    // §2.6). Counted here, said once (ReportPaidProduct), and no confirm is
    // sent.
    if (auto paid = body.find("is_payment_form_required");
        paid != body.end() && paid->is_boolean() && paid->get<bool>())
      return Outcome::kCheckFailed;
    auto product = body.find("product_id");
    if (product != body.end() && product->is_string() &&
        *product != options_.product_id) {
      return Outcome::kCheckFailed;
    }
    return Outcome::kOk;
  }
  if (Str(body, "id") != f.checkout_id) return Outcome::kCheckFailed;
  switch (step) {
    case Step::kUpdate:
      // The PATCH must have taken: Polar ignores unknown keys, so a body it
      // did not understand still answers 200 (the Locust suite's bug).
      if (status != "open" || !IsJsonString(body, "customer_email") ||
          AsciiLower(Str(body, "customer_email")) != f.email) {
        return Outcome::kCheckFailed;
      }
      break;
    case Step::kStatus:
      if (status != "open") return Outcome::kCheckFailed;
      break;
    case Step::kConfirm:
      if (status != "confirmed") return Outcome::kCheckFailed;
      break;
    case Step::kGet:
      // GET /v1/checkouts/{id} reads Polar's replica in sandbox and
      // production (docs/polar-api.md §2.3): just after confirm it may still
      // say open. Not yet, not wrong.
      if (status != "open" && status != "confirmed" && status != "succeeded")
        return Outcome::kCheckFailed;
      break;
    case Step::kCreate:
      break;
  }
  return Outcome::kOk;
}

void CheckoutScenario::OnResponse(uint64_t id, Step step, Response&& response) {
  Flow* f = Find(id);
  if (!f) return;  // cannot happen: a flow never ends while a request is out
  f->busy = false;
  json body;
  const Outcome outcome = Judge(*f, step, response, &body);
  Recorder(step).Record(outcome, response);
  if (step == Step::kConfirm && f->email_new) {
    email_state_[f->email_index] =
        outcome == Outcome::kOk ? EmailState::kUsed : EmailState::kUnused;
  }
  if (outcome != Outcome::kOk) {
    if (step == Step::kCreate && outcome == Outcome::kCheckFailed &&
        body.is_object())
      ReportPaidProduct(body);
    End(*f, outcome, response.done);
    return;
  }
  switch (step) {
    case Step::kCreate:
      f->checkout_id = Str(body, "id");
      f->secret = Str(body, "client_secret");
      OnCreated(*f, response);
      return;
    case Step::kUpdate:
      if (f->depth <= 1) return End(*f, Outcome::kOk, response.done);
      return After(*f, Step::kStatus, response.done);
    case Step::kStatus:
      if (f->depth <= 2) return End(*f, Outcome::kOk, response.done);
      return After(*f, Step::kConfirm, response.done);
    case Step::kConfirm:
      OnConfirmed(*f, response);
      return;
    case Step::kGet:
      if (Str(body, "status") == "succeeded")
        return Complete(*f, response.done);
      if (f->expired) return Lost(*f, response.done);
      // A check after a reconnected stream opened: the stream reports.
      if (f->stream != kNoStream && f->stream_open) return;
      return Poll(*f, response.done + options_.poll_interval);
  }
}

void CheckoutScenario::ReportPaidProduct(const json& body) {
  auto paid = body.find("is_payment_form_required");
  if (paid_product_reported_ || paid == body.end() || !paid->is_boolean() ||
      !paid->get<bool>())
    return;
  paid_product_reported_ = true;
  SPDLOG_ERROR(
      "scenario {}: product {} needs a payment (Polar's create answered "
      "is_payment_form_required: true): its confirm would need a Stripe "
      "confirmation token, which only Stripe.js can make, so every confirm "
      "would fail. Every create of this scenario counts as check_failed and "
      "no confirm is sent: use a free product (docs/sandbox.md)",
      context_.name, options_.product_id);
}

void CheckoutScenario::OnCreated(Flow& f, const Response& response) {
  if (context_.webhooks)
    context_.webhooks->Expect("checkout.created", f.checkout_id, response.done);
  if (f.depth == 0) return End(f, Outcome::kOk, response.done);
  if (f.depth == 3 && options_.completion == CompletionMode::kStream)
    OpenStream(f, response.done);
  After(f, Step::kUpdate, response.done);
}

void CheckoutScenario::OnConfirmed(Flow& f, const Response& response) {
  f.confirmed = true;
  f.confirmed_at = response.done;
  if (context_.webhooks) {
    // What one free checkout causes after confirm (docs/polar-api.md §4.2); the
    // customer only when this address is new to Polar.
    for (const char* type :
         {"order.created", "order.updated", "order.paid", "checkout.updated"}) {
      context_.webhooks->Expect(type, f.checkout_id, response.done);
    }
    if (f.email_new)
      context_.webhooks->Expect("customer.created", f.email, response.done);
  }
  if (f.stream_failed) return End(f, *f.stream_failed, response.done);
  if (f.succeeded_seen) return Complete(f, *f.succeeded_seen);
  const uint64_t id = f.id;
  f.deadline = timers_.At(response.done + options_.completion_deadline,
                          [this, id] { OnDeadline(id); });
  if (f.stream != kNoStream && !f.stream_gone) return;  // the stream reports
  Poll(f, response.done + options_.poll_interval);
}

void CheckoutScenario::Poll(Flow& f, MonoTime at) {
  const uint64_t id = f.id;
  f.timer = timers_.At(at, [this, id, at] {
    Flow* flow = Find(id);
    if (!flow) return;
    flow->timer = Timers::kNone;
    SendStep(*flow, Step::kGet, at);
  });
}

void CheckoutScenario::OpenStream(Flow& f, MonoTime intended) {
  Request r;
  r.method = Method::kGet;
  r.path = "/v1/checkouts/client/" + f.secret + "/stream";
  r.authenticated = false;
  r.intended = intended;
  StreamOptions so;
  so.deadline =
      3 * options_.think_time + options_.completion_deadline + kStreamBackstop;
  const uint64_t id = f.id;
  StreamHandlers h;
  h.on_head = [this, id](const Response& head) { OnStreamHead(id, head); };
  h.on_data = [this, id](std::string_view chunk) { OnStreamData(id, chunk); };
  h.on_end = [this, id](Response&& end) { OnStreamEnd(id, std::move(end)); };
  f.sse = std::make_unique<SseParser>();
  f.stream = context_.transport.OpenStream(std::move(r), so, std::move(h));
  // A transport that cannot stream: poll instead.
  if (f.stream == kNoStream) f.stream_gone = true;
}

void CheckoutScenario::OnStreamHead(uint64_t id, const Response& head) {
  Flow* f = Find(id);
  if (!f) return;
  f->stream_head = head;
  Outcome outcome = OutcomeFromStatus(head.status);
  if (outcome == Outcome::kOk &&
      (head.status != 200 ||
       head.content_type.rfind("text/event-stream", 0) != 0)) {
    outcome = Outcome::kCheckFailed;
  }
  if (outcome != Outcome::kOk) return FailStream(*f, outcome, head.done);
  f->stream_open = true;
  if (f->confirm_waiting) {
    f->confirm_waiting = false;
    SendStep(*f, Step::kConfirm, head.done);
  } else if (f->verify_on_open) {
    f->verify_on_open = false;
    if (!f->busy && !f->succeeded_seen) SendStep(*f, Step::kGet, head.done);
  }
}

void CheckoutScenario::OnStreamData(uint64_t id, std::string_view chunk) {
  Flow* f = Find(id);
  if (!f) return;
  std::optional<Outcome> bad;
  const MonoTime now = context_.clock.Now();
  bool ok = f->sse->Feed(chunk, [&](const SseEvent& event) {
    if (bad) return;
    // polar.eventstream.service.Event: {"id","key","payload"}.
    json frame = json::parse(event.data, nullptr, false);
    if (frame.is_discarded() || !frame.is_object()) {
      bad = Outcome::kInvalidResponse;
      return;
    }
    // MAX_SSE_CONNECTION_LIFETIME: after 10 minutes Polar sends this and
    // ends the stream, and the page opens a new one.
    if (auto type = frame.find("type"); type != frame.end() &&
                                        *type == "reconnect" &&
                                        frame.find("key") == frame.end()) {
      f->stream_reconnect = true;
      return;
    }
    auto key = frame.find("key");
    if (key == frame.end() || !key->is_string()) {
      bad = Outcome::kCheckFailed;
      return;
    }
    if (*key != "checkout.updated") return;  // order_created, delivered...
    auto payload = frame.find("payload");
    if (payload == frame.end() || !payload->is_object() ||
        !IsJsonString(*payload, "status")) {
      bad = Outcome::kCheckFailed;
      return;
    }
    if (Str(*payload, "status") == "succeeded" && !f->succeeded_seen)
      f->succeeded_seen = now;
  });
  if (!ok) bad = Outcome::kInvalidResponse;  // a line or event over the bound
  if (bad) return FailStream(*f, *bad, now);
  if (f->succeeded_seen && f->confirmed && !f->busy)
    Complete(*f, *f->succeeded_seen);
}

void CheckoutScenario::OnStreamEnd(uint64_t id, Response&& end) {
  Flow* f = Find(id);
  if (!f) return;
  f->stream = kNoStream;
  if (!f->stream_open) {
    // Failed before its headers (connect error, timeout), or a head that was
    // already judged a failure.
    if (f->stream_failed) return;
    f->stream_head = end;
    Outcome outcome = end.transport != Outcome::kOk
                          ? end.transport
                          : OutcomeFromStatus(end.status);
    if (outcome == Outcome::kOk) outcome = Outcome::kCheckFailed;
    return FailStream(*f, outcome, end.done);
  }
  if (end.transport == Outcome::kOk && f->stream_reconnect) {
    // Asked to reconnect: a new stream continues this one. Whatever was
    // published in between is missed, so once the new one is live a confirmed
    // flow checks once whether it already succeeded.
    RecordStream(*f, Outcome::kOk);
    f->stream_reconnect = false;
    f->stream_open = false;
    f->stream_recorded = false;
    f->stream_head = Response{};
    f->verify_on_open = f->confirmed;
    OpenStream(*f, end.done);
    if (f->stream == kNoStream) StreamGone(*f, end.done);
    return;
  }
  if (end.transport == Outcome::kOk || end.transport == Outcome::kTimeout) {
    // The server ended a healthy stream, or our backstop deadline passed.
    RecordStream(*f, Outcome::kOk);
    return StreamGone(*f, end.done);
  }
  FailStream(*f, end.transport, end.done);  // a reset mid-stream
}

void CheckoutScenario::RecordStream(Flow& f, Outcome outcome) {
  if (f.stream_recorded) return;
  f.stream_recorded = true;
  if (!stream_) stream_.emplace(context_.metrics, context_.name, "stream");
  // The stream step's latency is the time to its headers: how long Polar
  // took to open the subscription.
  stream_->Record(outcome, f.stream_head);
}

void CheckoutScenario::FailStream(Flow& f, Outcome outcome, MonoTime at) {
  if (f.stream_head.done == MonoTime{}) {
    f.stream_head.intended = at;
    f.stream_head.sent = at;
    f.stream_head.done = at;
  }
  RecordStream(f, outcome);
  context_.transport.CancelStream(f.stream);
  f.stream = kNoStream;
  f.stream_open = false;
  f.stream_failed = outcome;
  // Waiting only for the stream: end now. Otherwise the step in progress (or
  // the think time) finishes first and the flow ends at its next step.
  if (f.confirm_waiting) return End(f, outcome, at);
  if (f.confirmed && !f.busy) End(f, outcome, at);
}

void CheckoutScenario::StreamGone(Flow& f, MonoTime at) {
  f.stream_gone = true;
  f.stream_open = false;
  if (f.confirm_waiting) {
    f.confirm_waiting = false;
    return SendStep(f, Step::kConfirm, at);
  }
  if (f.confirmed && !f.busy && f.timer == Timers::kNone) {
    if (f.succeeded_seen) return Complete(f, *f.succeeded_seen);
    SendStep(f, Step::kGet, at);
  }
}

void CheckoutScenario::OnDeadline(uint64_t id) {
  Flow* f = Find(id);
  if (!f) return;
  f->deadline = Timers::kNone;
  if (f->busy) {
    f->expired = true;  // the poll on the wire ends it
    return;
  }
  Lost(*f, context_.clock.Now());
}

void CheckoutScenario::Complete(Flow& f, MonoTime seen) {
  // The event may beat the confirm answer to us; that is no time at all.
  completion_.seconds->Observe(
      ToSeconds(std::max(Duration::zero(), seen - f.confirmed_at)));
  End(f, Outcome::kOk, std::max(seen, f.confirmed_at));
}

void CheckoutScenario::Lost(Flow& f, MonoTime at) {
  completion_.lost->Increment();
  End(f, Outcome::kTimeout, at);
}

void CheckoutScenario::End(Flow& f, Outcome outcome, MonoTime at) {
  timers_.Cancel(f.timer);
  timers_.Cancel(f.deadline);
  if (f.stream != kNoStream) {
    // The flow is over (finished, or ended by another step): the stream
    // itself was fine. One cancelled before its headers is not a finished
    // request and is not counted.
    if (f.stream_open) RecordStream(f, Outcome::kOk);
    context_.transport.CancelStream(f.stream);
  }
  const auto i = static_cast<std::size_t>(outcome);
  if (!flow_duration_[i])
    flow_duration_[i] = &context_.metrics.FlowDuration(context_.name, outcome);
  flow_duration_[i]->Observe(ToSeconds(at - f.start));
  series_.in_flight->Decrement();
  flows_.erase(f.id);  // `f` is gone from here on
}

}  // namespace polar
