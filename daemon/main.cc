// polar-loadd: entry point. Parses the command line, loads and validates the
// config, then hands over to App. Exit codes follow sysexits(3): 0 ok, 64
// usage, 78 configuration error.
#include <curl/curl.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "daemon/app.h"
#include "daemon/config.h"
#include "polar/version.h"

namespace {

constexpr int kExitUsage = 64;
constexpr int kExitConfig = 78;

constexpr const char* kUsage = R"(usage: polar-loadd [options]

Keeps a steady, scheduled, open-loop load on Polar's API and exports Prometheus metrics.

options:
  --config FILE     configuration file (default /etc/polar-loadd/polar-loadd.toml)
  --check-config    validate the configuration, print every problem as file:line:col, and exit
                    0 when it is valid or 78 when it is not
  --version         print the version and exit
  --help            print this help and exit
)";

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "/etc/polar-loadd/polar-loadd.toml";
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "polar-loadd: %s needs a value\n%s", name, kUsage);
        std::exit(kExitUsage);
      }
      return argv[++i];
    };
    if (arg == "--config") {
      config_path = value("--config");
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--version") {
      std::printf("polar-loadd %s (%s)\n", polar::kVersion, polar::kRevision);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "polar-loadd: unknown option %s\n%s", arg.c_str(),
                   kUsage);
      return kExitUsage;
    }
  }

  // Logs go to stderr: stdout is for what the user asked for (summaries,
  // --check-config).
  spdlog::set_default_logger(spdlog::stderr_color_mt("polar-loadd"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  polar::ConfigResult loaded =
      polar::LoadConfig(config_path, polar::ProcessEnvironment());
  for (const auto& error : loaded.errors)
    std::fprintf(stderr, "%s\n", error.ToString().c_str());
  if (!loaded.config) {
    std::fprintf(stderr, "polar-loadd: %zu configuration error(s) in %s\n",
                 loaded.errors.size(), config_path.c_str());
    return kExitConfig;
  }
  for (const auto& note : loaded.notes) spdlog::info("{}", note);
  if (check_only) {
    std::printf("%s: configuration is valid (%zu scenarios)\n",
                config_path.c_str(), loaded.config->scenarios.size());
    return 0;
  }

  // Writes to a peer that closed must come back as EPIPE, a counted outcome,
  // not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int code;
  {
    polar::App app(loaded.config);
    code = app.Run();
  }
  curl_global_cleanup();
  return code;
}
