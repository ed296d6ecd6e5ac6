#include "tests/support/daemons.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace polar::testing {

using namespace std::chrono_literals;

Sim StartSim(const std::vector<std::string>& extra_args) {
  std::vector<std::string> args{"--listen", "127.0.0.1:0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  Sim sim;
  sim.process = std::make_unique<Process>(POLAR_SIM_BIN, args);
  auto line = sim.process->FirstStdoutLine(10s);
  if (!line)
    throw std::runtime_error("polar-sim did not print its ready line: " +
                             sim.process->Stderr());
  sim.ready = nlohmann::json::parse(*line);
  return sim;
}

namespace {

// "2026-11-30T18:38:12.123456Z" (polar-sim's FormatTimestamp) -> Unix seconds.
double ParseSimTimestamp(const std::string& text) {
  std::tm tm{};
  int micros = 0;
  char zone = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6d%c", &tm.tm_year,
                  &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
                  &micros, &zone) != 8 ||
      zone != 'Z')
    throw std::runtime_error("not a polar-sim timestamp: " + text);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(timegm(&tm)) + micros / 1e6;
}

}  // namespace

std::vector<double> StoredEventTimes(const Sim& sim, const std::string& query) {
  std::vector<double> times;
  for (int page = 1;; ++page) {
    HttpResult r = HttpRequest(
        "GET",
        fmt::format("{}/v1/events/?limit=100&sorting=timestamp&page={}{}{}",
                    sim.base_url(), page, query.empty() ? "" : "&", query),
        "", {"Authorization: Bearer " + sim.token()}, 10s);
    if (r.status != 200)
      throw std::runtime_error(fmt::format("GET /v1/events/ page {}: {} {} {}",
                                           page, r.status, r.body, r.error));
    const nlohmann::json body = nlohmann::json::parse(r.body);
    for (const auto& item : body["items"])
      times.push_back(ParseSimTimestamp(item["timestamp"]));
    if (page >= body["pagination"]["max_page"].get<int64_t>()) break;
  }
  // Pages are sorted, but events stored between two page requests could
  // shift an item across a page boundary: sort the whole.
  std::sort(times.begin(), times.end());
  return times;
}

Loadd::Loadd(const std::string& config, const std::string& api_token,
             std::map<std::string, std::string> env,
             const std::vector<std::string>& extra_args) {
  dir_ = TempDir();
  path_ = dir_ + "/polar-loadd.toml";
  WriteFile(path_, config);
  if (!api_token.empty()) env["LOAD_TEST_API_TOKEN"] = api_token;
  std::vector<std::string> args{"--config", path_};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(POLAR_LOADD_BIN, args, env);
}

void Loadd::WaitListening(std::chrono::milliseconds timeout) const {
  if (!process_->WaitForStderr("/metrics", timeout))
    throw std::runtime_error("polar-loadd did not start listening: " +
                             process_->Stderr());
}

std::string Loadd::BaseUrl() const {
  const std::string err = process_->Stderr();
  static const std::regex re(
      R"(metrics on (http://(127\.0\.0\.[0-9]+|\[::1\]):[0-9]+)/metrics)");
  std::string url;
  for (std::sregex_iterator it(err.begin(), err.end(), re), end; it != end;
       ++it) {
    url = (*it)[1].str();
  }
  return url;
}

std::string Loadd::Instance() const {
  const std::string url = BaseUrl();
  const std::string scheme = "http://";
  return url.rfind(scheme, 0) == 0 ? url.substr(scheme.size()) : url;
}

std::map<std::string, double> Loadd::Scrape() const {
  HttpResult r = HttpGet(MetricsUrl());
  if (r.status != 200) return {};
  return ParseMetrics(r.body);
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw std::runtime_error("no free loopback port");
  }
  close(fd);
  return ntohs(a.sin_port);
}

std::string ShippedConfig(int webhook_port) {
  std::ifstream in(std::string(POLAR_SOURCE_DIR) +
                   "/packaging/polar-loadd.toml");
  std::stringstream text;
  text << in.rdbuf();
  std::string config = text.str();
  auto replace_all = [&](const std::string& from, const std::string& to) {
    std::size_t n = 0;
    for (auto p = config.find(from); p != std::string::npos;
         p = config.find(from, p + to.size()), ++n)
      config.replace(p, from.size(), to);
    return n;
  };
  if (replace_all("listen = \"127.0.0.1:9477\"", "listen = \"127.0.0.1:0\"") !=
      1)
    throw std::runtime_error(
        "packaging/polar-loadd.toml: no metrics listen = \"127.0.0.1:9477\"");
  // webhooks.listen and webhooks.register_url.
  if (replace_all("127.0.0.1:9478",
                  fmt::format("127.0.0.1:{}", webhook_port)) != 2)
    throw std::runtime_error(
        "packaging/polar-loadd.toml: expected 127.0.0.1:9478 in "
        "webhooks.listen and webhooks.register_url");
  return config;
}

double RateScale() {
  const char* s = std::getenv("POLAR_TEST_RATE_SCALE");
  double v = s ? std::atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

}  // namespace polar::testing
