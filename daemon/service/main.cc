// polar-loadd: entry point. Parses the command line, sets up logging (the
// journal under systemd, plain text on a terminal), loads and validates the
// config, then hands over to App. Exit codes follow sysexits(3): 0 ok (or a
// one-shot run whose thresholds held), 1 a one-shot threshold failed, 64
// usage, 69 a listener could not be bound, 73 a summary file could not be
// written, 78 configuration error (the unit's RestartPreventExitStatus=78
// stops systemd from retrying a broken config).
#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "daemon/config/config.h"
#include "daemon/service/app.h"
#include "daemon/service/logging.h"
#include "exporters/log.h"
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
  --once            run the schedule for --duration, print a summary (per scenario and step:
                    count, achieved rate, error %, p50/p90/p99/max of latency from the intended
                    start and of service time), check the thresholds, and exit 0 when every one
                    holds or 1 when one fails
  --duration D      how long --once runs, e.g. 30s, 5m (required with --once)
  --summary-json F  with --once: also write the summary as JSON to F
  --junit F         with --once: also write the threshold verdicts as JUnit XML to F
  --version         print the version and exit
  --help            print this help and exit
)";

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "/etc/polar-loadd/polar-loadd.toml";
  bool check_only = false;
  polar::RunOptions run;
  bool duration_set = false;
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
    } else if (arg == "--once") {
      run.once = true;
    } else if (arg == "--duration") {
      std::string why;
      auto d = polar::ParseDuration(value("--duration"), &why);
      if (!d || *d <= polar::Duration::zero()) {
        std::fprintf(stderr, "polar-loadd: --duration: %s\n%s",
                     d ? "must be positive" : why.c_str(), kUsage);
        return kExitUsage;
      }
      run.duration = *d;
      duration_set = true;
    } else if (arg == "--summary-json") {
      run.summary_json = value("--summary-json");
    } else if (arg == "--junit") {
      run.junit = value("--junit");
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

  if (run.once != duration_set) {
    std::fprintf(stderr, "polar-loadd: --once and --duration go together\n%s",
                 kUsage);
    return kExitUsage;
  }
  if (!run.once && (!run.summary_json.empty() || !run.junit.empty())) {
    std::fprintf(stderr,
                 "polar-loadd: --summary-json and --junit need --once\n%s",
                 kUsage);
    return kExitUsage;
  }

  // Logs go to stderr (or straight to the journal): stdout is for what the
  // user asked for (summaries, --check-config).
  polar::SetupLogging(check_only
                          ? polar::LogTarget::kPlain
                          : polar::DetectLogTarget(
                                std::getenv("JOURNAL_STREAM"), STDERR_FILENO));
  polar::ConfigResult loaded =
      polar::LoadConfig(config_path, polar::ProcessEnvironment());
  // Before a single error is printed: an error must never echo the token.
  for (std::string& secret : loaded.secrets)
    polar::RegisterSecret(std::move(secret));
  for (const auto& error : loaded.errors) {
    // --check-config prints bare lines for people and editors; the daemon logs
    // them at error priority so `journalctl -p err` shows them.
    if (check_only) {
      std::fprintf(stderr, "%s\n", polar::Redact(error.ToString()).c_str());
    } else {
      spdlog::error("{}", error.ToString());
    }
  }
  if (!loaded.config) {
    if (check_only) {
      std::fprintf(stderr, "polar-loadd: %zu configuration error(s) in %s\n",
                   loaded.errors.size(), config_path.c_str());
    } else {
      spdlog::error("{} configuration error(s) in {}; not starting",
                    loaded.errors.size(), config_path);
    }
    return kExitConfig;
  }
  for (const auto& note : loaded.notes) spdlog::info("{}", note);
  for (const auto& warning : loaded.warnings) {
    if (check_only) {
      std::fprintf(stderr, "warning: %s\n", warning.c_str());
    } else {
      spdlog::warn("{}", warning);
    }
  }
  if (check_only) {
    const polar::Shard shard = loaded.config->cluster.shard;
    std::printf("%s: configuration is valid (%zu scenarios%s)\n",
                config_path.c_str(), loaded.config->scenarios.size(),
                shard.sharded()
                    ? (", shard " + shard.ToString() + " of the rates").c_str()
                    : "");
    return 0;
  }

  // Writes to a peer that closed must come back as EPIPE, a counted outcome,
  // not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  spdlog::info("polar-loadd {} ({}) starting with {}", polar::kVersion,
               polar::kRevision, config_path);
  int code;
  {
    polar::App app(loaded.config, run);
    code = app.Run();
  }
  curl_global_cleanup();
  return code;
}
