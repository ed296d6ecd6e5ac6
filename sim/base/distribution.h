// Distribution: a random duration drawn from a named distribution, used for
// injected latency and for how long a background job keeps its worker busy.
//
// Immutable after Parse(); Sample() takes the caller's generator, so any
// thread may sample with its own generator.
//
// Spec syntax (durations as in ParseDuration):
//   "50ms" or "fixed:50ms"       always 50 ms
//   "uniform:10ms,100ms"         uniform in [10 ms, 100 ms]
//   "exp:50ms"                   exponential with mean 50 ms
//   "normal:100ms,20ms"          normal (mean, stddev), clamped at 0
//   "lognormal:50ms,500ms"       log-normal with median 50 ms and p99 500 ms
//                                (the long tail real APIs show)
#pragma once

#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "sim/base/time.h"

namespace polar::sim {

class Distribution {
 public:
  enum class Kind { kFixed, kUniform, kExponential, kNormal, kLogNormal };

  Distribution() = default;  // fixed 0
  static Distribution Fixed(Duration d);
  static std::optional<Distribution> Parse(std::string_view spec,
                                           std::string* error);

  Duration Sample(std::mt19937_64& rng) const;
  bool IsZero() const {
    return kind_ == Kind::kFixed && a_ == Duration::zero();
  }
  std::string ToString() const;  // canonical spec, parseable again

 private:
  Kind kind_ = Kind::kFixed;
  Duration a_{0};
  Duration b_{0};
};

}  // namespace polar::sim
