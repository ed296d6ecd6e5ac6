// Fuzz target: polar-sim's request handling (Simulator::Handle) with arbitrary
// methods, paths, query strings, headers and bodies: the middleware chain
// (Polar-Version, body length, path rewrites, faults, rate limits, auth,
// routing) and every route's body and query parsers, admin routes under
// /_sim/ included. libmicrohttpd parses the HTTP itself; this is everything
// after it.
//
// Input (text):
//   METHOD PATH[?QUERY]
//   name: value          (headers, lower-cased; until an empty line)
//
//   BODY
// The seeded token is sent unless the input has its own authorization
// header. One simulator serves every input (small caps, no delays); faults set
// by an input are cleared after it, so inputs stay independent.
#include <memory>
#include <string>
#include <string_view>

#include "sim/simulator.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using polar::sim::Duration;
using polar::sim::SimRequest;
using polar::sim::SimResponse;

polar::sim::Simulator& Sim() {
  static polar::sim::Simulator* sim = [] {
    polar::sim::SimOptions o;
    o.events.visibility_lag = polar::sim::Distribution::Fixed(Duration::zero());
    // Small caps: the store is shared by every input, and listings walk it.
    // At 1,000 of each the run slowed from 4,300 to under 900 inputs/s as
    // the store filled; 100 still reaches every eviction path.
    o.events.max_remembered_ids = 1'000;
    o.events.max_stored_events = 100;
    o.checkouts.stripe_delay =
        polar::sim::Distribution::Fixed(Duration::zero());
    o.checkouts.max_checkouts = 100;
    o.checkouts.max_streams = 16;
    o.worker.max_queued = 100;
    o.max_customers = 100;
    return new polar::sim::Simulator(o);  // never destroyed: threads run on
  }();
  return *sim;
}

std::string_view TakeLine(std::string_view& text) {
  const std::size_t nl = text.find('\n');
  std::string_view line = text.substr(0, nl);
  text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  polar::sim::Simulator& sim = Sim();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  SimRequest r;
  std::string_view first = TakeLine(text);
  const std::size_t space = first.find(' ');
  r.method = std::string(first.substr(0, space));
  std::string_view target =
      space == std::string_view::npos ? "/" : first.substr(space + 1);
  const std::size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      const std::size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      const std::size_t eq = pair.find('=');
      r.query.emplace(std::string(pair.substr(0, eq)),
                      eq == std::string_view::npos
                          ? std::string()
                          : std::string(pair.substr(eq + 1)));
      query.remove_prefix(amp == std::string_view::npos ? query.size()
                                                        : amp + 1);
    }
  }
  while (!text.empty()) {
    std::string_view line = TakeLine(text);
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    std::string_view value =
        colon == std::string_view::npos ? "" : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    r.headers[Lower(line.substr(0, colon))] = std::string(value);
  }
  r.body = std::string(text);
  r.client_ip = "127.0.0.1";
  r.has_content_length = r.headers.count("content-length") ||
                         r.method == "POST" || r.method == "PUT" ||
                         r.method == "PATCH";
  if (!r.headers.count("authorization"))
    r.headers["authorization"] = "Bearer " + sim.seeded().token;

  SimResponse out = sim.Handle(r);
  if (out.finish) out = out.finish();  // the timer's job in the real server
  if (out.on_sent) out.on_sent();      // the server's, once it is queued
  if (out.stream) out.stream->Close();
  if (out.status < 100 || out.status > 599) __builtin_trap();
  (void)sim.HandleAdmin(r);
  sim.faults().Clear();
  sim.faults().EndStall();
  return 0;
}
