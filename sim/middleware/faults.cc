#include "sim/middleware/faults.h"

#include <random>

namespace polar::sim {
namespace {

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

bool Ratio(const json& j, const char* key, double* out, std::string* error) {
  auto it = j.find(key);
  if (it == j.end()) return true;
  if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 1) {
    *error += std::string(error->empty() ? "" : "; ") + key +
              ": must be a number from 0 to 1";
    return false;
  }
  *out = it->get<double>();
  return true;
}

}  // namespace

bool ParseRouteFaults(const json& j, RouteFaults* out, std::string* error) {
  if (!j.is_object()) {
    *error = "must be an object";
    return false;
  }
  std::size_t before = error->size();
  for (const auto& [key, value] : j.items()) {
    if (key != "latency" && key != "error_ratio" && key != "error_status" &&
        key != "malformed_ratio") {
      *error += std::string(error->empty() ? "" : "; ") + key +
                ": unknown key (latency, error_ratio, error_status, "
                "malformed_ratio)";
    }
  }
  if (auto it = j.find("latency"); it != j.end()) {
    std::string why;
    std::optional<Distribution> d;
    if (it->is_string()) d = Distribution::Parse(it->get<std::string>(), &why);
    if (!d) {
      *error += std::string(error->empty() ? "" : "; ") + "latency: " +
                (why.empty() ? "must be a distribution string" : why);
    } else {
      out->latency = *d;
    }
  }
  Ratio(j, "error_ratio", &out->error_ratio, error);
  Ratio(j, "malformed_ratio", &out->malformed_ratio, error);
  if (auto it = j.find("error_status"); it != j.end()) {
    if (!it->is_number_integer() || it->get<int>() < 400 ||
        it->get<int>() > 599) {
      *error += std::string(error->empty() ? "" : "; ") +
                "error_status: must be an HTTP status from 400 to 599";
    } else {
      out->error_status = it->get<int>();
    }
  }
  return error->size() == before;
}

bool ParseWorkerFault(const json& j, WorkerFault* out, std::string* error) {
  if (!j.is_object()) {
    *error = "must be an object";
    return false;
  }
  std::size_t before = error->size();
  for (const auto& [key, value] : j.items()) {
    if (key == "factor") {
      if (!value.is_number() || value.get<double>() < 0) {
        *error += std::string(error->empty() ? "" : "; ") +
                  "factor: must be a number >= 0";
      } else {
        out->factor = value.get<double>();
      }
    } else if (key == "add") {
      Duration d;
      if (!value.is_string() || !ParseDuration(value.get<std::string>(), &d)) {
        *error += std::string(error->empty() ? "" : "; ") +
                  "add: must be a duration such as \"500ms\"";
      } else {
        out->add = d;
      }
    } else {
      *error += std::string(error->empty() ? "" : "; ") + key +
                ": unknown key (factor, add)";
    }
  }
  return error->size() == before;
}

json ToJson(const RouteFaults& f) {
  json j = json::object();
  if (f.latency) j["latency"] = f.latency->ToString();
  if (f.error_ratio > 0) {
    j["error_ratio"] = f.error_ratio;
    j["error_status"] = f.error_status;
  }
  if (f.malformed_ratio > 0) j["malformed_ratio"] = f.malformed_ratio;
  return j;
}

json ToJson(const WorkerFault& f) {
  return {{"factor", f.factor}, {"add", FormatDuration(f.add)}};
}

Faults::Faults(const Clock& clock, prometheus::Registry& registry)
    : clock_(clock) {
  auto& family = prometheus::BuildCounter()
                     .Name("polar_sim_faults_injected_total")
                     .Help("Responses changed by an injected fault, by kind.")
                     .Register(registry);
  latency_ = &family.Add({{"kind", "latency"}});
  errors_ = &family.Add({{"kind", "error"}});
  malformed_ = &family.Add({{"kind", "malformed"}});
  stalled_ = &family.Add({{"kind", "stall"}});
}

Faults::Decision Faults::Decide(const std::string& route) {
  Decision d;
  int64_t stall = stall_until_ns_.load(std::memory_order_relaxed);
  if (stall != 0) {
    auto until = SteadyTime(Duration(stall));
    if (clock_.Now() < until) {
      d.stall_until = until;
      stalled_->Increment();
    }
  }
  if (!any_routes_.load(std::memory_order_relaxed)) return d;
  std::shared_ptr<const FaultSet> set = snapshot();
  auto it = set->routes.find(route);
  if (it == set->routes.end()) it = set->routes.find("*");
  if (it == set->routes.end()) return d;
  const RouteFaults& f = it->second;
  auto& rng = Rng();
  std::uniform_real_distribution<double> u(0, 1);
  if (f.latency) {
    d.latency = f.latency->Sample(rng);
    if (d.latency > Duration::zero()) latency_->Increment();
  }
  if (f.error_ratio > 0 && u(rng) < f.error_ratio) {
    d.error = true;
    d.error_status = f.error_status;
    errors_->Increment();
  }
  if (f.malformed_ratio > 0 && u(rng) < f.malformed_ratio) d.malformed = true;
  return d;
}

void Faults::Publish(std::shared_ptr<FaultSet> next) {
  bool any = false;
  for (const auto& [route, f] : next->routes) any = any || !f.empty();
  set_ = std::move(next);
  any_routes_ = any;
}

void Faults::SetRoute(const std::string& route, const RouteFaults& f) {
  std::lock_guard lock(mutex_);
  auto next = std::make_shared<FaultSet>(*set_);
  next->routes[route] = f;
  Publish(std::move(next));
}

void Faults::ClearRoute(const std::string& route) {
  std::lock_guard lock(mutex_);
  auto next = std::make_shared<FaultSet>(*set_);
  next->routes.erase(route);
  Publish(std::move(next));
}

void Faults::SetWorker(const std::string& queue, const WorkerFault& f) {
  std::lock_guard lock(mutex_);
  auto next = std::make_shared<FaultSet>(*set_);
  next->worker[queue] = f;
  Publish(std::move(next));
}

void Faults::ClearWorker(const std::string& queue) {
  std::lock_guard lock(mutex_);
  auto next = std::make_shared<FaultSet>(*set_);
  next->worker.erase(queue);
  Publish(std::move(next));
}

void Faults::Clear() {
  std::lock_guard lock(mutex_);
  Publish(std::make_shared<FaultSet>());
  stall_until_ns_ = 0;
}

void Faults::Stall(Duration d) {
  auto until = clock_.Now() + d;
  stall_until_ns_ =
      std::chrono::duration_cast<Duration>(until.time_since_epoch()).count();
}

void Faults::EndStall() { stall_until_ns_ = 0; }

Duration Faults::stall_remaining() const {
  int64_t stall = stall_until_ns_.load();
  if (stall == 0) return Duration::zero();
  auto left = SteadyTime(Duration(stall)) - clock_.Now();
  return left > Duration::zero() ? left : Duration::zero();
}

std::shared_ptr<const FaultSet> Faults::snapshot() const {
  std::lock_guard lock(mutex_);
  return set_;
}

}  // namespace polar::sim
