// Test harness for polar-sim's Simulator without HTTP: builds requests, calls
// Handle() and runs a held response's deferred work at once (the timer's job in
// the real server). For tests only; one thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

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
    sim = std::make_unique<Simulator>(options);
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
    return out;
  }
  SimResponse Call(const std::string& method, const std::string& path,
                   const json& body = nullptr, bool auth = true) {
    return Send(Request(method, path, body.is_null() ? "" : body.dump(), auth));
  }

  static json Body(const SimResponse& r) {
    return json::parse(r.body, nullptr, false);
  }

  // Polls `condition` every 5 ms for up to `timeout`.
  static bool Eventually(
      const std::function<bool()>& condition,
      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return condition();
  }

  json CreateCheckout(bool paid = false) {
    const Seeded& s = sim->seeded();
    SimResponse r =
        Call("POST", "/v1/checkouts/",
             {{"product_id", paid ? s.paid_product_id : s.free_product_id}});
    return Body(r);
  }

  SimOptions options;
  std::unique_ptr<Simulator> sim;
};

}  // namespace polar::sim::testing
