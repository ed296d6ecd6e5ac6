#include "exporters/recent_errors.h"

#include <algorithm>

#include "exporters/log.h"

namespace polar {
namespace {

// A failure storm refreshes an entry's snippet at most this often.
constexpr Duration kSnippetRefresh = std::chrono::seconds(1);

}  // namespace

RecentErrors::RecentErrors(std::size_t capacity)
    : capacity_(std::max<std::size_t>(capacity, 1)) {
  entries_.reserve(capacity_);
}

std::string RecentErrors::MakeSnippet(int status, std::string_view error,
                                      std::string_view body) {
  std::string raw;
  if (status != 0) raw += "HTTP " + std::to_string(status);
  if (!error.empty()) {
    if (!raw.empty()) raw += ": ";
    raw += error;
  }
  if (!body.empty()) {
    if (!raw.empty()) raw += " ";
    raw += "body: ";
    // The whole body: redacting before the cut means a secret that straddles
    // the cut can never survive as a prefix. At most once a second per entry.
    raw += body;
  }
  std::string text = Redact(raw);
  std::string out;
  out.reserve(std::min(text.size(), kSnippetBytes) + 3);
  for (char c : text.substr(0, kSnippetBytes)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  if (text.size() > kSnippetBytes) out += "...";
  return out;
}

void RecentErrors::Record(std::string_view scenario, std::string_view step,
                          Outcome outcome, int status, MonoTime at,
                          std::string_view error, std::string_view body) {
  for (Entry& e : entries_) {
    RecentError& r = e.error;
    if (r.outcome != outcome || r.status != status || r.step != step ||
        r.scenario != scenario) {
      continue;
    }
    ++r.count;
    r.last_seen = at;
    if (at - e.snippet_at >= kSnippetRefresh) {
      r.snippet = MakeSnippet(status, error, body);
      e.snippet_at = at;
    }
    return;
  }
  Entry fresh;
  fresh.error.scenario = std::string(scenario);
  fresh.error.step = std::string(step);
  fresh.error.outcome = outcome;
  fresh.error.status = status;
  fresh.error.count = 1;
  fresh.error.first_seen = at;
  fresh.error.last_seen = at;
  fresh.error.snippet = MakeSnippet(status, error, body);
  fresh.snippet_at = at;
  if (entries_.size() < capacity_) {
    entries_.push_back(std::move(fresh));
    return;
  }
  auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                 [](const Entry& a, const Entry& b) {
                                   return a.error.last_seen < b.error.last_seen;
                                 });
  *oldest = std::move(fresh);
}

std::vector<RecentError> RecentErrors::Snapshot() const {
  std::vector<RecentError> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) out.push_back(e.error);
  std::stable_sort(out.begin(), out.end(),
                   [](const RecentError& a, const RecentError& b) {
                     return a.last_seen > b.last_seen;
                   });
  return out;
}

}  // namespace polar
