// polar-sim: a local stand-in for Polar's API, the demo's default target and
// every integration test's target. Prints one JSON line on stdout when ready:
// its address and the seeded ids.
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "sim/http.h"
#include "sim/simulator.h"

namespace {

constexpr const char* kUsage = R"(usage: polar-sim [options]

A local stand-in for Polar's API (https://api.polar.sh) for load tests and demos.

options:
  --listen HOST:PORT   address to serve on (default 127.0.0.1:8000; port 0 picks a free one)
  --seed N             fixes the token, organization and customer ids (default 1)
  --customers N        seeded customers (default 20)
  --threads N          HTTP worker threads (default 2)
  --help               print this help
)";

}  // namespace

int main(int argc, char** argv) {
  polar::sim::SimOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "polar-sim: %s needs a value\n", arg.c_str());
        std::exit(64);
      }
      return argv[++i];
    };
    try {
      if (arg == "--listen") {
        options.listen = value();
      } else if (arg == "--seed") {
        options.seed = std::stoull(value());
      } else if (arg == "--customers") {
        options.customers = std::stoi(value());
      } else if (arg == "--threads") {
        options.threads = std::stoi(value());
      } else if (arg == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
      } else {
        std::fprintf(stderr, "polar-sim: unknown option %s\n%s", arg.c_str(),
                     kUsage);
        return 64;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "polar-sim: bad value for %s\n", arg.c_str());
      return 64;
    }
  }

  polar::sim::ServerOptions server;
  std::string listen = options.listen;
  if (!listen.empty() && listen.front() == '[') {
    auto close = listen.find(']');
    server.ipv6 = true;
    server.host = listen.substr(1, close - 1);
    server.port = static_cast<uint16_t>(std::stoi(listen.substr(close + 2)));
  } else {
    auto colon = listen.rfind(':');
    server.host = listen.substr(0, colon);
    server.port = static_cast<uint16_t>(std::stoi(listen.substr(colon + 1)));
  }
  server.threads = options.threads;

  // Block the stop signals before the HTTP threads start, so only sigwait below
  // receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  polar::sim::Simulator simulator(options);
  std::string error;
  auto http = polar::sim::SimServer::Start(
      server,
      [&simulator](const polar::sim::SimRequest& r) {
        return simulator.Handle(r);
      },
      &error);
  if (!http) {
    std::fprintf(stderr, "polar-sim: %s\n", error.c_str());
    return 69;
  }
  const auto& seeded = simulator.seeded();
  std::string address = server.ipv6
                            ? fmt::format("[{}]:{}", server.host, http->port())
                            : fmt::format("{}:{}", server.host, http->port());
  nlohmann::json ready = {
      {"listen", address},
      {"base_url", "http://" + address},
      {"token", seeded.token},
      {"organization_id", seeded.organization_id},
      {"external_customer_ids", seeded.customer_external_ids},
  };
  std::printf("%s\n", ready.dump().c_str());
  std::fflush(stdout);

  int signo = 0;
  sigwait(&stop, &signo);
  std::fprintf(stderr, "polar-sim: signal %d, stopping\n", signo);
  return 0;
}
