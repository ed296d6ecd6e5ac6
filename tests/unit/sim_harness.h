// Test harness for polar-sim's Simulator without HTTP and on a FakeClock:
// builds requests, calls Handle() and runs a held response's deferred work at
// once (the timer's job in the real server). Time moves only in Advance(),
// which then waits until every timer callback and job that fell due has run,
// so the tests never sleep. For tests only; one thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "sim/base/clock.h"
#include "sim/simulator.h"

namespace polar::sim::testing {

using nlohmann::json;

class SimHarness {
 public:
  explicit SimHarness(std::function<void(SimOptions&)> configure = nullptr) {
    // Tests run the worker chain at once unless they say otherwise.
    options.events.visibility_lag = Distribution::Fixed(Duration::zero());
    options.checkouts.stripe_delay = Distribution::Fixed(Duration::zero());
    if (configure) configure(options);
    sim = std::make_unique<Simulator>(options, clock);
  }

  // Runs what is due now (jobs a request enqueued, timers it armed).
  void Settle() { sim->Settle(); }
  // Runs what is due now, moves the clock and runs everything that fell due.
  void Advance(Duration d) {
    sim->Settle();
    clock.Advance(d);
    sim->Settle();
  }

  SimRequest Request(const std::string& method, const std::string& path,
                     const std::string& body = "", bool auth = true) const {
    SimRequest r;
    r.method = method;
    auto q = path.find('?');
    r.path = path.substr(0, q);
    if (q != std::string::npos) {
      std::string query = path.substr(q + 1);
      std::size_t start = 0;
      while (start <= query.size()) {
        auto amp = query.find('&', start);
        std::string pair = query.substr(start, amp - start);
        auto eq = pair.find('=');
        if (!pair.empty())
          r.query.emplace(pair.substr(0, eq),
                          eq == std::string::npos ? "" : pair.substr(eq + 1));
        if (amp == std::string::npos) break;
        start = amp + 1;
      }
    }
    r.body = body;
    r.client_ip = "127.0.0.1";
    r.has_content_length = method == "POST" || method == "PATCH" ||
                           method == "PUT" || !body.empty();
    if (auth) r.headers["authorization"] = "Bearer " + sim->seeded().token;
    return r;
  }

  // Runs deferred work at once; the hold itself is the server's business.
  SimResponse Send(const SimRequest& r) {
    SimResponse out = sim->Handle(r);
    if (out.finish) {
      auto finish = std::move(out.finish);
      out = finish();
    }
    if (out.on_sent) out.on_sent();  // handed to the connection
    return out;
  }
  SimResponse Call(const std::string& method, const std::string& path,
                   const json& body = nullptr, bool auth = true) {
    return Send(Request(method, path, body.is_null() ? "" : body.dump(), auth));
  }

  static json Body(const SimResponse& r) {
    return json::parse(r.body, nullptr, false);
  }

  json CreateCheckout(bool paid = false) {
    const Seeded& s = sim->seeded();
    SimResponse r =
        Call("POST", "/v1/checkouts/",
             {{"product_id", paid ? s.paid_product_id : s.free_product_id}});
    return Body(r);
  }

  FakeClock clock;
  SimOptions options;
  std::unique_ptr<Simulator> sim;
};

}  // namespace polar::sim::testing
