#include "daemon/service/status_line.h"

#include <fmt/format.h>

namespace polar {

std::string StatusText(const StatusWindow& w) {
  const double s = w.seconds > 0 ? w.seconds : 0;
  auto per_second = [s](double before, double now) {
    return s > 0 ? (now - before) / s : 0.0;
  };
  const double arrivals = per_second(w.before.arrivals, w.now.arrivals);
  const double dropped = per_second(w.before.dropped, w.now.dropped);
  const double requests = w.now.requests - w.before.requests;
  const double failed = w.now.failed - w.before.failed;
  std::string dropped_text;
  if (dropped > 0)
    dropped_text = fmt::format(", {:.1f} arrivals/s dropped", dropped);
  return fmt::format(
      "{} scenario(s): {:.1f} arrivals/s started of {:g}/s asked{}, {:.1f} "
      "req/s, {:.1f}% errors, {} in flight",
      w.scenarios, arrivals - dropped, w.asked_per_second, dropped_text,
      s > 0 ? requests / s : 0.0,
      requests > 0 ? 100.0 * failed / requests : 0.0, w.in_flight);
}

}  // namespace polar
