// SimOptions: polar-sim's start-up settings (command-line flags), fixed for the
// process lifetime.
#pragma once

#include <cstdint>
#include <string>

namespace polar::sim {

struct SimOptions {
  std::string listen = "127.0.0.1:8000";  // Polar's local dev port
  uint64_t seed = 1;                      // fixes the token, ids and customers
  int customers = 20;  // seeded customers loadtest-customer-0..N-1
  int threads = 2;     // HTTP worker threads
  // Remembered external_ids for dedup. Polar keeps them forever; a week-long
  // demo must stay flat, so the oldest are forgotten first (~100 bytes each: 1M
  // is ~100 MiB at most).
  std::size_t max_remembered_events = 1'000'000;
};

}  // namespace polar::sim
