// polar-loadd: entry point. Parses the command line, sets up logging (the
// journal under systemd, plain text on a terminal), loads and validates the
// config, then hands over to App. Exit codes follow sysexits(3): 0 ok (or a
// one-shot run whose thresholds held), 1 a one-shot threshold failed, 64
// usage, 69 a listener could not be bound, 73 a summary file or the report
// could not be written (the report's directory is checked at the start), 78
// configuration error (the unit's RestartPreventExitStatus=78 stops systemd
// from retrying a broken config).
#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "daemon/config/config.h"
#include "daemon/service/app.h"
#include "daemon/service/logging.h"
#include "daemon/service/reload_request.h"
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
  --reload PID      ask the polar-loadd running as PID to reload its configuration (SIGHUP) and
                    wait for its answer: exit 0 when it runs the new one, 78 when it refused it
                    and keeps the previous one, 69 when it did not answer (the units' ExecReload=)
  --report F        with --once: also write the run's HTML report to F: the summary, the
                    thresholds, the configuration (secrets redacted) and charts over the whole
                    run, in one file that opens offline; "{start}" in F becomes the start time.
                    Without --once, the config's daemon.report names the file the service
                    writes when it stops
  --version         print the version and exit
  --help            print this help and exit
)";

// How long --reload waits for the daemon's answer. A reload parses one small
// file and binds at most two listeners: milliseconds. systemd gives
// ExecReload= 90 s (TimeoutStartSec=) before it kills it.
constexpr std::chrono::seconds kReloadAnswerTimeout{30};

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
    } else if (arg == "--report") {
      run.report = value("--report");
      if (run.report.empty()) {
        std::fprintf(stderr, "polar-loadd: --report needs a file name\n%s",
                     kUsage);
        return kExitUsage;
      }
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--reload") {
      const char* text = value("--reload");
      char* end = nullptr;
      errno = 0;
      long pid = std::strtol(text, &end, 10);
      if (errno != 0 || end == text || *end != '\0' || pid <= 0 ||
          pid > std::numeric_limits<pid_t>::max()) {
        std::fprintf(stderr,
                     "polar-loadd: --reload: %s is not a process ID\n%s", text,
                     kUsage);
        return kExitUsage;
      }
      std::string message;
      int code = polar::RequestReload(static_cast<pid_t>(pid),
                                      kReloadAnswerTimeout, &message);
      std::fprintf(code == 0 ? stdout : stderr, "polar-loadd: %s\n",
                   message.c_str());
      return code;
    } else if (arg == "--print-config-keys") {
      // Hidden (not in --help): the accepted keys, one per line, for the
      // docs' drift test (docs/architecture.md, "The config's keys").
      for (const std::string& key : polar::ConfigKeySchema())
        std::printf("%s\n", key.c_str());
      return 0;
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
  if (!run.once && (!run.summary_json.empty() || !run.junit.empty() ||
                    !run.report.empty())) {
    std::fprintf(
        stderr,
        "polar-loadd: --summary-json, --junit and --report need --once\n%s",
        kUsage);
    return kExitUsage;
  }

  // Logs go to stderr (or straight to the journal): stdout is for what the
  // user asked for (summaries, --check-config).
  polar::SetupLogging(check_only
                          ? polar::LogTarget::kPlain
                          : polar::DetectLogTarget(
                                std::getenv("JOURNAL_STREAM"), STDERR_FILENO));
  // --check-config tells whether the service will start with this file, also
  // before its first start: a systemd credential it names (token_file =
  // "/run/credentials/polar-loadd.service/polar-token") is read from the
  // credential store the unit loads it from (daemon/config/secret_files.h).
  polar::SecretReader read_secret;
  if (check_only) {
    polar::CredentialStoreOptions store;
    if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"))
      store.credentials_directory = dir;
    read_secret = polar::CredentialStoreReader(std::move(store));
  }
  polar::ConfigResult loaded = polar::LoadConfig(
      config_path, polar::ProcessEnvironment(), std::move(read_secret));
  // Before a single error is printed: an error must never echo the token.
  for (std::string& secret : loaded.secrets)
    polar::RegisterSecret(std::move(secret));
  for (const auto& error : loaded.errors) {
    // --check-config prints bare lines for people and editors; the daemon logs
    // them at error priority so `journalctl -p err` shows them.
    if (check_only) {
      std::fprintf(stderr, "%s\n", polar::Redact(error.ToString()).c_str());
    } else {
      SPDLOG_ERROR("{}", error.ToString());
    }
  }
  if (!loaded.config) {
    if (check_only) {
      std::fprintf(stderr, "polar-loadd: %zu configuration error(s) in %s\n",
                   loaded.errors.size(), config_path.c_str());
    } else {
      SPDLOG_ERROR("{} configuration error(s) in {}; not starting",
                   loaded.errors.size(), config_path);
    }
    return kExitConfig;
  }
  for (const auto& note : loaded.notes) {
    if (check_only) {
      std::fprintf(stderr, "note: %s\n", polar::Redact(note).c_str());
    } else {
      SPDLOG_INFO("{}", note);
    }
  }
  for (const auto& warning : loaded.warnings) {
    if (check_only) {
      std::fprintf(stderr, "warning: %s\n", warning.c_str());
    } else {
      SPDLOG_WARN("{}", warning);
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
  SPDLOG_INFO("polar-loadd {} ({}) starting with {}", polar::kVersion,
              polar::kRevision, config_path);
  int code;
  {
    polar::App app(loaded.config, run);
    code = app.Run();
  }
  curl_global_cleanup();
  return code;
}
