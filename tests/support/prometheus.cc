#include "tests/support/prometheus.h"

#include <fmt/format.h>

#include <filesystem>
#include <regex>
#include <stdexcept>

namespace polar::testing {

using namespace std::chrono_literals;

TestPrometheus::TestPrometheus(const std::string& binary, std::string dir,
                               const std::string& yaml)
    : dir_(std::move(dir)) {
  WriteFile(dir_ + "/prometheus.yml", yaml);
  process_ = std::make_unique<Process>(
      binary,
      std::vector<std::string>{"--config.file=" + dir_ + "/prometheus.yml",
                               "--storage.tsdb.path=" + dir_ + "/data",
                               "--web.listen-address=127.0.0.1:0"});
  auto err = process_->WaitForStderr("msg=\"Listening on\"", 20s);
  if (!err)
    throw std::runtime_error("prometheus did not start: " + process_->Stderr());
  std::smatch m;
  std::regex re("msg=\"Listening on\" address=(127\\.0\\.0\\.1:[0-9]+)");
  if (!std::regex_search(*err, m, re))
    throw std::runtime_error("no listen address in: " + *err);
  base_ = "http://" + m[1].str();
  // The API answers 503 until the TSDB is open and the rules are loaded.
  if (!process_->WaitForStderr("Server is ready to receive web requests", 20s))
    throw std::runtime_error("prometheus did not become ready: " +
                             process_->Stderr());
}

TestPrometheus::~TestPrometheus() {
  process_.reset();
  std::filesystem::remove_all(dir_);
}

nlohmann::json TestPrometheus::Api(const std::string& path) const {
  auto r = HttpGet(base_ + "/api/v1/" + path, 10s);
  auto body = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status != 200 || body.is_discarded() || body["status"] != "success")
    throw std::runtime_error(path + ": HTTP " + std::to_string(r.status) + " " +
                             r.error + " " + r.body);
  return body["data"];
}

nlohmann::json TestPrometheus::Query(const std::string& expr,
                                     double time) const {
  std::string path = "query?query=" + UrlEncode(expr);
  if (time > 0) path += fmt::format("&time={:.3f}", time);
  return Api(path)["result"];
}

}  // namespace polar::testing
