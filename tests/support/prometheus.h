// A real Prometheus for end-to-end tests (observability, cluster): started on
// 127.0.0.1:0 with the caller's prometheus.yml, ready when the constructor
// returns, stopped and its directory removed by the destructor.
//
// Test thread only. Throws std::runtime_error with Prometheus's stderr when it
// does not start or an API call fails.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/process.h"

namespace polar::testing {

class TestPrometheus {
 public:
  // `dir`: a directory of the caller's (TempDir()) holding any files the
  // config names; prometheus.yml and the TSDB are written there and the whole
  // directory is removed at the end. `yaml`: the configuration.
  TestPrometheus(const std::string& binary, std::string dir,
                 const std::string& yaml);
  ~TestPrometheus();
  TestPrometheus(const TestPrometheus&) = delete;
  TestPrometheus& operator=(const TestPrometheus&) = delete;

  // GET /api/v1/<path>: the `data` member of a successful answer.
  nlohmann::json Api(const std::string& path) const;
  // An instant query's result vector, evaluated at `time` (Unix seconds;
  // 0: now).
  nlohmann::json Query(const std::string& expr, double time = 0) const;
  const std::string& dir() const { return dir_; }
  std::string Stderr() const { return process_->Stderr(); }

 private:
  std::string dir_;
  std::string base_;
  std::unique_ptr<Process> process_;
};

}  // namespace polar::testing
