// Parsers for the small value languages of the config file: durations ("250ms",
// "10s", "1h30m") and rates ("2/s", "120/min", "500/h"). Listen addresses
// ("127.0.0.1:9477") are parsed in daemon/net/listen_address.h.
//
// Pure functions, any thread. Each returns std::nullopt and fills *error with a
// one-line reason that names the accepted forms, so config errors tell the
// operator how to fix the value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "exporters/clock.h"

namespace polar {

std::optional<Duration> ParseDuration(std::string_view text,
                                      std::string* error);

// Arrivals per second. Zero is allowed (a paused scenario); negative and
// non-finite are not.
std::optional<double> ParseRate(std::string_view text, std::string* error);

// "1.5s", "250ms": the form used in logs and summaries.
std::string FormatDuration(Duration d);

}  // namespace polar
