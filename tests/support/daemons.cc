#include "tests/support/daemons.h"

#include <cstdlib>
#include <regex>
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

double RateScale() {
  const char* s = std::getenv("POLAR_TEST_RATE_SCALE");
  double v = s ? std::atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

}  // namespace polar::testing
