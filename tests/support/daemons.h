// Test support: the project's two daemons as child processes, for end-to-end
// tests. polar-sim on a free loopback port (its ready line parsed), and
// polar-loadd from a config file in its own directory with its listener's URL
// read from its log. Blocking calls, for tests only; errors throw with the
// process's stderr attached.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace polar::testing {

// polar-sim's ready line (docs/polar-sim.md): where it serves, its seeded
// tokens and products.
struct Sim {
  std::unique_ptr<Process> process;
  nlohmann::json ready;  // polar-sim's first stdout line
  std::string base_url() const { return ready["base_url"]; }
  std::string token() const { return ready["token"]; }
  // Same organization, read scopes only (403 insufficient_scope on writes).
  std::string read_token() const { return ready["read_token"]; }
  std::string metrics_url() const { return ready["metrics_url"]; }
  std::string admin_url() const { return ready["admin_url"]; }
  // The seeded free product (its checkouts succeed without payment).
  std::string free_product() const { return ready["products"]["free"]["id"]; }
};

// Starts polar-sim on 127.0.0.1:0 (plus `extra_args`) and waits for its ready
// line.
Sim StartSim(const std::vector<std::string>& extra_args = {});

// When polar-sim received each event it lists (GET /v1/events/, every page,
// filtered by `query`, e.g. "external_customer_id=loadtest-customer-3"), in
// Unix seconds with microseconds, oldest first. An event ingested without a
// `timestamp` is stamped with polar-sim's clock on arrival, so these are the
// target's own record of when the load came: rates computed from them use
// time measured at the target, not the time a test configured. Events are
// listed only after polar-sim's --event-lag (1 s by default). Throws on an
// error answer.
std::vector<double> StoredEventTimes(const Sim& sim,
                                     const std::string& query = "");

class Loadd {
 public:
  // Writes `config` to DIR/polar-loadd.toml and starts polar-loadd on it, with
  // LOAD_TEST_API_TOKEN = `api_token` when it is not empty.
  Loadd(const std::string& config, const std::string& api_token,
        std::map<std::string, std::string> env = {},
        const std::vector<std::string>& extra_args = {});

  Process& process() { return *process_; }
  const std::string& dir() const { return dir_; }
  const std::string& path() const { return path_; }

  // Waits until the metrics listener is bound (the "metrics on" log line).
  void WaitListening(
      std::chrono::milliseconds timeout = std::chrono::seconds(15)) const;
  // "http://127.0.0.1:PORT", from the last "metrics on" line; "" before it.
  std::string BaseUrl() const;
  std::string MetricsUrl() const { return BaseUrl() + "/metrics"; }
  // "127.0.0.1:PORT": Prometheus's `instance` label for this daemon.
  std::string Instance() const;
  // GET /metrics, parsed (ParseMetrics); empty on failure.
  std::map<std::string, double> Scrape() const;

 private:
  std::string dir_;
  std::string path_;
  std::unique_ptr<Process> process_;
};

// A free TCP port on 127.0.0.1 (bound, read back and released), for a
// listener whose port must be known before it starts: the webhook receiver's
// register_url names it.
int FreeLoopbackPort();

// packaging/polar-loadd.toml as the operator gets it, with only its fixed
// ports moved (tests bind no fixed port): metrics.listen to port 0, the webhook
// receiver (its listen and the register_url naming it) to `webhook_port`.
// Against polar-sim it needs --allow-loopback-webhooks (the receiver registers
// its loopback URL there) and LOAD_TEST_HOST / LOAD_TEST_API_TOKEN, as
// scripts/demo sets them.
std::string ShippedConfig(int webhook_port);

// The scale factor for request rates in tests (POLAR_TEST_RATE_SCALE, which
// the asan preset sets to 0.25; 1 otherwise).
double RateScale();

}  // namespace polar::testing
