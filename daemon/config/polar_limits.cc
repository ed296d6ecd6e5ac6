#include "daemon/config/polar_limits.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>

#include "daemon/config/sections.h"
#include "scenarios/scenario_type.h"

namespace polar {
namespace {

// Requests per arrival: `multiplier` requests with probability `share`.
struct Source {
  double rate = 0;  // arrivals per second at the peak
  double share = 1;
  double multiplier = 1;
  bool poisson = false;
};

struct Count {
  double mean = 0;
  double high = 0;  // mean + 4 standard deviations of the draws
};

// In a window of `seconds`: uniform arrivals put at most ceil(rate x seconds)
// in any window; the funnel draws each flow's steps independently.
Count CountIn(const std::vector<Source>& sources, double seconds) {
  Count out;
  double most = 0;  // the mean of the window with the most arrivals
  double variance = 0;
  for (const Source& s : sources) {
    if (s.rate <= 0 || s.share <= 0) continue;
    const double k = s.multiplier;
    out.mean += s.rate * seconds * s.share * k;
    const double n =
        s.poisson ? s.rate * seconds : std::ceil(s.rate * seconds - 1e-9);
    most += n * s.share * k;
    variance +=
        s.poisson ? n * s.share * k * k : n * s.share * (1 - s.share) * k * k;
  }
  out.high = std::ceil(most + 4 * std::sqrt(variance) - 1e-9);
  return out;
}

struct Bucket {
  std::string name;
  std::vector<Source> sources;
};

}  // namespace

PolarHost HostOf(std::string_view base_url) {
  auto host_is = [&](std::string_view host) {
    for (std::string_view scheme : {"https://", "http://"}) {
      const std::string prefix = std::string(scheme) + std::string(host);
      if (base_url.substr(0, prefix.size()) == prefix &&
          (base_url.size() == prefix.size() || base_url[prefix.size()] == '/' ||
           base_url[prefix.size()] == ':'))
        return true;
    }
    return false;
  };
  if (host_is("api.polar.sh")) return PolarHost::kProduction;
  if (host_is("sandbox-api.polar.sh")) return PolarHost::kSandbox;
  return PolarHost::kOther;
}

LimitReport CheckPolarLimits(const Config& config, PolarHost host) {
  // The checkout page's steps come from this instance's address: with N
  // shards each sends 1/N (instances behind one address add up again).
  const double shards = config.cluster.shard.count;
  Bucket org{"the organization (every request with the token)", {}};
  Bucket ip{
      "this load box's IP, checkout page steps without a token "
      "(update, status, stream)",
      {}};
  Bucket confirms{"this load box's IP, checkout confirms", {}};
  std::vector<std::string> waits;
  for (const ScenarioConfig& s : config.scenarios) {
    const double rate = s.schedule.PeakRate();
    const bool poisson = s.arrivals == ArrivalKind::kPoisson;
    const PolarLoad load = s.type->load(s.options);
    for (const PolarRequests& part : load.parts) {
      switch (part.bucket) {
        case PolarBucket::kOrganization:
          org.sources.push_back({rate, part.share, part.requests, poisson});
          break;
        case PolarBucket::kClientIp:
          ip.sources.push_back(
              {rate / shards, part.share, part.requests, poisson});
          break;
        case PolarBucket::kConfirm:
          confirms.sources.push_back(
              {rate / shards, part.share, part.requests, poisson});
          break;
      }
    }
    if (!load.wait_note.empty() &&
        std::find(waits.begin(), waits.end(), load.wait_note) == waits.end())
      waits.push_back(load.wait_note);
  }

  const bool production = host == PolarHost::kProduction;
  const char* where = production ? "Polar's production API"
                      : host == PolarHost::kSandbox
                          ? "Polar's sandbox"
                          : "Polar's sandbox (for reference: this host is "
                            "neither sandbox nor production)";
  const double api_per_minute = production ? 500 : 100;
  LimitReport report;
  auto check = [&](const Bucket& b, double seconds, double limit,
                   const char* window, const std::string& consequence) {
    const Count count = CountIn(b.sources, seconds);
    report.lines.push_back(fmt::format(
        "{} per {}: {:.1f} on average, at most {:.0f}; {} allows {:.0f}",
        b.name, window, count.mean, count.high, where, limit));
    if (count.high > limit) {
      report.trips.push_back(fmt::format(
          "{} allows {:.0f} requests per {} from {}{}; the scenarios send "
          "{:.1f} on average at their peak, and up to {:.0f} in any {}",
          where, limit, window, b.name, consequence, count.mean, count.high,
          window));
    }
  };
  const std::string minute_429 = ", then answers 429 until the minute is over";
  check(org, 60, api_per_minute, "minute", minute_429);
  report.lines.push_back(fmt::format("{} per hour: {:.0f} on average", org.name,
                                     CountIn(org.sources, 3600).mean));
  check(ip, 60, api_per_minute, "minute", minute_429);
  const std::string block =
      ", then refuses every request of that IP, on every route, for 30 "
      "minutes";
  check(confirms, 60, 6, "minute", block);
  check(confirms, 3600, 20, "hour", block);
  report.lines.push_back(
      "a token's first calls (and its calls after 5 idle minutes) count in "
      "a pending_auth bucket of 60/min until Polar has seen it authenticate");
  if (!waits.empty())
    report.lines.push_back(
        fmt::format("(polls are counted for {})", fmt::join(waits, " and ")));
  return report;
}

void CheckRateLimits(Checker& c, const toml::table& root, const Config& config,
                     std::vector<std::string>& warnings,
                     std::vector<std::string>& notes) {
  // Only an organization access token needs no organization_id in events.
  if (!config.target.token.empty() &&
      config.target.token.rfind("polar_oat_", 0) != 0) {
    warnings.push_back(fmt::format(
        "the API token ({}) is not an organization access token (polar_oat_"
        "...): Polar will answer every event ingest 422 \"organization_id is "
        "required\"",
        config.target.token_source));
  }
  const PolarHost host = HostOf(config.target.base_url);
  const LimitReport report = CheckPolarLimits(config, host);
  const toml::table* target = root.get_as<toml::table>("target");
  const toml::node* url_node = target ? target->get("base_url") : nullptr;
  if (host == PolarHost::kOther) {
    // A local Polar has no limits; a staging stack's are its own.
    for (const std::string& trip : report.trips)
      notes.push_back("if this target limits as Polar's sandbox does: " + trip);
    return;
  }
  for (const std::string& line : report.lines)
    notes.push_back("rate limits: " + line);
  for (const std::string& trip : report.trips) {
    if (config.target.allow_over_limit) {
      warnings.push_back(trip + " (target.allow_over_limit = true)");
    } else {
      c.Error(url_node, "target.base_url",
              trip +
                  ": lower the scenarios' rates or shares, or set "
                  "target.allow_over_limit = true if the 429s are meant");
    }
  }
}

}  // namespace polar
