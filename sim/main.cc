// polar-sim: a local stand-in for Polar's API, the demo's default target and
// every integration test's target. Prints one JSON line on stdout when ready:
// its address, the tokens and the seeded ids.
#include <fmt/format.h>
#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "sim/http/server.h"
#include "sim/options.h"
#include "sim/simulator.h"

namespace {

bool ParseListen(const std::string& listen, polar::sim::ServerOptions* server,
                 std::string* error) {
  try {
    if (!listen.empty() && listen.front() == '[') {
      auto close = listen.find(']');
      if (close == std::string::npos || close + 2 > listen.size())
        throw std::invalid_argument(listen);
      server->ipv6 = true;
      server->host = listen.substr(1, close - 1);
      server->port = static_cast<uint16_t>(std::stoi(listen.substr(close + 2)));
    } else {
      auto colon = listen.rfind(':');
      if (colon == std::string::npos) throw std::invalid_argument(listen);
      server->host = listen.substr(0, colon);
      server->port = static_cast<uint16_t>(std::stoi(listen.substr(colon + 1)));
    }
  } catch (const std::exception&) {
    *error = "bad listen address \"" + listen + "\" (HOST:PORT or [V6]:PORT)";
    return false;
  }
  return true;
}

std::string Address(const polar::sim::ServerOptions& s, uint16_t port) {
  return s.ipv6 ? fmt::format("[{}]:{}", s.host, port)
                : fmt::format("{}:{}", s.host, port);
}

}  // namespace

int main(int argc, char** argv) {
  // Ingest allocates and frees a few KiB per request on every HTTP thread;
  // without these glibc keeps trimming and regrowing its heaps (sysmalloc and
  // malloc_consolidate were ~10% of the profile at 10,000 requests/s).
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  // Every request body is a >1 KiB allocation, and each such malloc first
  // consolidates the fastbins; tcache serves the small sizes without them.
  mallopt(M_MXFAST, 0);

  polar::sim::SimOptions options;
  std::vector<std::string> errors;
  bool help = false;
  if (!polar::sim::ParseOptions(std::vector<std::string>(argv + 1, argv + argc),
                                &options, &errors, &help)) {
    for (const auto& e : errors)
      std::fprintf(stderr, "polar-sim: %s\n", e.c_str());
    return 64;
  }
  if (help) {
    std::fputs(polar::sim::kUsage, stdout);
    return 0;
  }
  polar::sim::ServerOptions server, admin;
  std::string error;
  if (!ParseListen(options.listen, &server, &error) ||
      (!options.admin_listen.empty() &&
       !ParseListen(options.admin_listen, &admin, &error))) {
    std::fprintf(stderr, "polar-sim: %s\n", error.c_str());
    return 64;
  }
  server.threads = options.threads;
  admin.threads = 1;

  // Block the stop signals before any thread starts, so only sigwait below
  // receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  polar::sim::Simulator simulator(options);
  // The simulator's timer also drives the servers' held responses.
  static polar::sim::TimerThread server_timer;
  auto http = polar::sim::SimServer::Start(
      server,
      [&simulator](const polar::sim::SimRequest& r) {
        return simulator.Handle(r);
      },
      &server_timer, &error);
  if (!http) {
    std::fprintf(stderr, "polar-sim: %s\n", error.c_str());
    return 69;
  }
  std::unique_ptr<polar::sim::SimServer> admin_http;
  if (!options.admin_listen.empty()) {
    admin_http = polar::sim::SimServer::Start(
        admin,
        [&simulator](const polar::sim::SimRequest& r) {
          return simulator.HandleAdmin(r);
        },
        &server_timer, &error);
    if (!admin_http) {
      std::fprintf(stderr, "polar-sim: admin: %s\n", error.c_str());
      return 69;
    }
  }
  const auto& seeded = simulator.seeded();
  const std::string address = Address(server, http->port());
  nlohmann::json ready = {
      {"listen", address},
      {"base_url", "http://" + address},
      {"token", seeded.token},
      {"read_token", seeded.read_token},
      {"organization_id", seeded.organization_id},
      {"external_customer_ids", seeded.customer_external_ids},
      {"customer_ids", seeded.customer_ids},
      {"products",
       {{"free",
         {{"id", seeded.free_product_id}, {"price_id", seeded.free_price_id}}},
        {"paid",
         {{"id", seeded.paid_product_id},
          {"price_id", seeded.paid_price_id}}}}},
      {"metrics_url", "http://" + address + "/metrics"},
      {"admin_url", admin_http ? "http://" + Address(admin, admin_http->port())
                               : "http://" + address},
      {"rate_limit", polar::sim::ToString(options.rate_limit)},
      {"time_scale", options.time_scale},
      {"allow_loopback_webhooks", options.webhooks.allow_loopback},
  };
  simulator.Start(http.get());
  if (options.webhooks.allow_loopback) {
    std::fprintf(stderr,
                 "polar-sim: accepting loopback webhook URLs "
                 "(--allow-loopback-webhooks); real Polar refuses them\n");
  }
  std::printf("%s\n", ready.dump().c_str());
  std::fflush(stdout);

  int signo = 0;
  sigwait(&stop, &signo);
  std::fprintf(stderr, "polar-sim: signal %d, stopping\n", signo);
  // The timer may be ending an outage on the server right now: stop it first.
  simulator.Shutdown();
  admin_http.reset();
  http.reset();
  server_timer.Stop();
  return 0;
}
