#include "sim/simulator.h"

#include <prometheus/text_serializer.h>

#include "sim/http/response.h"

namespace polar::sim {

Simulator::Simulator(const SimOptions& options, const Clock& clock)
    : options_(options),
      clock_(clock),
      faults_(clock, registry_),
      rate_limiter_(options.rate_limit, TimeScale(options.time_scale)),
      // Polar caches an identity 300 s (_IDENTITY_TTL_SECONDS).
      identities_(clock,
                  TimeScale(options.time_scale)(std::chrono::seconds(300))),
      timer_(clock),
      customers_(options.max_customers, clock),
      customers_gauge_(&prometheus::BuildGauge()
                            .Name("polar_sim_customers")
                            .Help("Customers held in memory.")
                            .Register(registry_)
                            .Add({})) {
  Seed();
  worker_ = std::make_unique<Worker>(options.worker, clock, registry_);
  webhooks_ = std::make_unique<WebhookService>(options.webhooks, org_,
                                               worker_.get(), clock, registry_);
  events_ = std::make_unique<EventsApi>(options.events, org_, &customers_,
                                        worker_.get(), clock, registry_);
  std::vector<const Product*> offered;
  for (const auto& p : products_) offered.push_back(p.get());
  checkouts_ = std::make_unique<CheckoutsApi>(
      options.checkouts, org_, offered, &customers_, worker_.get(),
      webhooks_.get(), &timer_, registry_);
  for (const auto& [route, f] : options.faults.routes)
    faults_.SetRoute(route, f);
  for (const auto& [queue, f] : options.faults.worker)
    faults_.SetWorker(queue, f);
  BuildChain();
  admin_->ApplyWorkerFaults();
}

void Simulator::Seed() {
  const uint64_t seed = options_.seed;
  const SysMicros start = clock_.WallNow();
  org_.id = MakeUuid(Derive(seed, 1), Derive(seed, 2));
  org_.created_at = start;
  seeded_.organization_id = org_.id;
  seeded_.token = MakeToken("polar_oat_", Derive(seed, 3));
  seeded_.read_token = MakeToken("polar_oat_", Derive(seed, 4));
  auth_.Add({seeded_.token,
             {"checkouts:read", "checkouts:write", "events:read",
              "events:write", "webhooks:read", "webhooks:write",
              "customers:read", "customers:write", "products:read"},
             org_.id});
  auth_.Add({seeded_.read_token,
             {"checkouts:read", "events:read", "webhooks:read"},
             org_.id});

  auto product = [&](uint64_t salt, std::string name, int64_t amount) {
    auto p = std::make_unique<Product>();
    p->id = MakeUuid(Derive(seed, salt), Derive(seed, salt + 1));
    p->price_id = MakeUuid(Derive(seed, salt + 2), Derive(seed, salt + 3));
    p->name = std::move(name);
    p->price_amount = amount;
    p->organization_id = org_.id;
    p->created_at = start;
    products_.push_back(std::move(p));
    return products_.back().get();
  };
  const Product* free = product(10, "Load test (free)", 0);
  // $10.00: a paid product goes through the simulated Stripe path.
  const Product* paid = product(20, "Load test (paid)", 1000);
  seeded_.free_product_id = free->id;
  seeded_.free_price_id = free->price_id;
  seeded_.paid_product_id = paid->id;
  seeded_.paid_price_id = paid->price_id;

  for (int i = 0; i < options_.customers; ++i) {
    Customer c;
    auto salt = static_cast<uint64_t>(100 + 2 * i);
    c.id = MakeUuid(Derive(seed, salt), Derive(seed, salt + 1));
    c.external_id = "loadtest-customer-" + std::to_string(i);
    // The Locust setup script uses @polar.sh: a domain that passes Polar's
    // deliverability check.
    c.email = "loadtest-customer-" + std::to_string(i) + "@polar.sh";
    c.organization_id = org_.id;
    c.created_at = start;
    seeded_.customer_external_ids.push_back(*c.external_id);
    seeded_.customer_ids.push_back(c.id);
    customers_.AddSeeded(std::move(c));
  }
}

void Simulator::BuildChain() {
  routes_ = PolarRoutes(checkouts_.get(), events_.get(), webhooks_.get());
  std::vector<std::string> names;
  for (const Route& r : routes_) {
    router_.Add(r.id, r.method, r.pattern);
    names.push_back(r.name);
  }
  names.push_back("unknown");  // requests that match no route
  std::vector<std::string> queues;
  for (const auto& [queue, _] : options_.worker.concurrency)
    queues.push_back(queue);
  admin_ = std::make_unique<AdminApi>(
      &faults_, worker_.get(), &timer_, names, queues,
      [this] { return State(); },
      [this] { return checkouts_->IssueConfirmationToken(); });
  request_counter_ = std::make_unique<RequestCounter>(registry_, names);

  chain_ = std::make_unique<Chain>(
      [](Exchange& x) { return x.route->handler(*x.request, x.params); });
  const bool limited = rate_limiter_.mode() != RateLimitMode::kOff;
  chain_->Add(std::make_unique<CountStage>(request_counter_.get()));
  chain_->Add(std::make_unique<VersionStage>());
  chain_->Add(std::make_unique<OwnRoutesStage>(
      [this](const SimRequest& r) { return admin_->Handle(r, false); },
      [this](const SimRequest&) {
        SimResponse r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = Metrics();
        return r;
      }));
  chain_->Add(std::make_unique<ResponseHeadersStage>(rate_limiter_.mode() ==
                                                     RateLimitMode::kSandbox));
  chain_->Add(std::make_unique<BodyLimitsStage>());
  chain_->Add(std::make_unique<PathRewriteStage>());
  chain_->Add(std::make_unique<RoutingStage>(
      &router_, &routes_, request_counter_->unknown_route()));
  chain_->Add(std::make_unique<FaultsStage>(&faults_, clock_));
  chain_->Add(std::make_unique<NotFoundStage>(&router_));
  if (limited) {
    chain_->Add(std::make_unique<RateLimitStage>(&rate_limiter_, &identities_,
                                                 registry_, clock_));
  } else {
    // The counter exists in every mode (dashboards expect the series).
    prometheus::BuildCounter()
        .Name("polar_sim_rate_limited_total")
        .Help("Requests answered 429.")
        .Register(registry_)
        .Add({});
  }
  chain_->Add(
      std::make_unique<AuthStage>(&auth_, limited ? &identities_ : nullptr));
}

Simulator::~Simulator() { Shutdown(); }

void Simulator::Shutdown() {
  // Callbacks on these threads use everything below: stop them first.
  timer_.Stop();
  worker_->Stop();
  admin_->Detach();
}

void Simulator::Start(SimServer* server) {
  admin_->Attach(server);
  checkouts_->StartSweeper();
  if (options_.stall) faults_.Stall(*options_.stall);
  if (options_.outage)
    admin_->StartOutage(options_.outage->first, options_.outage->second,
                        Duration::zero());
}

void Simulator::Settle() {
  // Timer callbacks enqueue jobs and jobs arm timers: settle both until one
  // pass finds neither with work.
  for (int pass = 0; pass < 1000; ++pass) {
    timer_.Settle();
    worker_->Settle();
    if (timer_.IsSettled() && worker_->IsSettled()) return;
  }
}

SimResponse Simulator::Handle(const SimRequest& request) {
  Exchange x(request);
  return chain_->Run(x);
}

SimResponse Simulator::HandleAdmin(const SimRequest& in) {
  if (in.path.rfind("/_sim/", 0) == 0) return admin_->Handle(in, true);
  if (in.path == "/metrics" && in.method == "GET") {
    SimResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = Metrics();
    return r;
  }
  if (in.path == "/healthz") return Json(200, {{"status", "ok"}});
  return NotFound();
}

json Simulator::State() const {
  json queues = json::object();
  for (const auto& [name, _] : options_.worker.concurrency)
    queues[name] = worker_->ready(name);
  return {{"checkouts", checkouts_->size()},
          {"events_stored", events_->store().size()},
          {"customers", customers_.size()},
          {"queues_ready", queues},
          {"timers_pending", timer_.pending()}};
}

std::string Simulator::Metrics() {
  // Gauges of what is held are read at scrape time.
  customers_gauge_->Set(static_cast<double>(customers_.size()));
  events_->UpdateGauges();
  checkouts_->UpdateGauges();
  worker_->UpdateGauges();
  return prometheus::TextSerializer().Serialize(registry_.Collect());
}

}  // namespace polar::sim
