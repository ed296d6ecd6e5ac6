#include "sim/base/distribution.h"

#include <algorithm>
#include <cmath>

namespace polar::sim {
namespace {

// z-score of the 99th percentile of the standard normal distribution.
constexpr double kZ99 = 2.3263478740408408;

}  // namespace

Distribution Distribution::Fixed(Duration d) {
  Distribution out;
  out.a_ = d;
  return out;
}

std::optional<Distribution> Distribution::Parse(std::string_view spec,
                                                std::string* error) {
  Distribution out;
  auto colon = spec.find(':');
  std::string_view name =
      colon == std::string_view::npos ? "fixed" : spec.substr(0, colon);
  std::string_view args =
      colon == std::string_view::npos ? spec : spec.substr(colon + 1);
  std::string_view first = args, second;
  auto comma = args.find(',');
  if (comma != std::string_view::npos) {
    first = args.substr(0, comma);
    second = args.substr(comma + 1);
  }
  auto bad = [&](const std::string& why) -> std::optional<Distribution> {
    *error = "bad distribution \"" + std::string(spec) + "\": " + why;
    return std::nullopt;
  };
  if (!ParseDuration(first, &out.a_)) return bad("not a duration");
  const bool two = comma != std::string_view::npos;
  if (two && !ParseDuration(second, &out.b_)) return bad("not a duration");
  if (name == "fixed") {
    if (two) return bad("fixed takes one duration");
    out.kind_ = Kind::kFixed;
  } else if (name == "exp") {
    if (two) return bad("exp takes one duration (the mean)");
    out.kind_ = Kind::kExponential;
  } else if (name == "uniform") {
    if (!two || out.b_ < out.a_) return bad("uniform takes MIN,MAX");
    out.kind_ = Kind::kUniform;
  } else if (name == "normal") {
    if (!two) return bad("normal takes MEAN,STDDEV");
    out.kind_ = Kind::kNormal;
  } else if (name == "lognormal") {
    if (!two || out.a_ <= Duration::zero() || out.b_ < out.a_)
      return bad("lognormal takes MEDIAN,P99 with 0 < MEDIAN <= P99");
    out.kind_ = Kind::kLogNormal;
  } else {
    return bad("unknown kind (fixed, uniform, exp, normal, lognormal)");
  }
  return out;
}

Duration Distribution::Sample(std::mt19937_64& rng) const {
  double a = static_cast<double>(a_.count());
  double b = static_cast<double>(b_.count());
  double ns = 0;
  switch (kind_) {
    case Kind::kFixed:
      return a_;
    case Kind::kUniform:
      ns = std::uniform_real_distribution<double>(a, b)(rng);
      break;
    case Kind::kExponential:
      if (a <= 0) return Duration::zero();
      ns = std::exponential_distribution<double>(1.0 / a)(rng);
      break;
    case Kind::kNormal:
      ns = std::normal_distribution<double>(a, b)(rng);
      break;
    case Kind::kLogNormal: {
      double mu = std::log(a);
      double sigma = (std::log(b) - mu) / kZ99;
      ns = std::lognormal_distribution<double>(mu, sigma)(rng);
      break;
    }
  }
  // An hour is far beyond any useful delay; the cap keeps a wild tail sample
  // from parking a connection forever.
  ns = std::clamp(ns, 0.0, 3600e9);
  return Duration(static_cast<int64_t>(ns));
}

std::string Distribution::ToString() const {
  switch (kind_) {
    case Kind::kFixed:
      return "fixed:" + FormatDuration(a_);
    case Kind::kUniform:
      return "uniform:" + FormatDuration(a_) + "," + FormatDuration(b_);
    case Kind::kExponential:
      return "exp:" + FormatDuration(a_);
    case Kind::kNormal:
      return "normal:" + FormatDuration(a_) + "," + FormatDuration(b_);
    case Kind::kLogNormal:
      return "lognormal:" + FormatDuration(a_) + "," + FormatDuration(b_);
  }
  return "fixed:0";
}

}  // namespace polar::sim
