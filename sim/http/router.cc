#include "sim/http/router.h"

namespace polar::sim {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

void Router::Add(int id, std::string method, std::string_view pattern) {
  Entry e{id, std::move(method), {}};
  for (std::string_view part : SplitPath(pattern))
    e.segments.emplace_back(part);
  entries_.push_back(std::move(e));
}

bool Router::Matches(const Entry& e, const std::vector<std::string_view>& parts,
                     std::vector<std::string>* params) {
  if (e.segments.size() != parts.size()) return false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (e.segments[i] == "{}") {
      if (parts[i].empty()) return false;
    } else if (e.segments[i] != parts[i]) {
      return false;
    }
  }
  if (params) {
    params->clear();
    for (std::size_t i = 0; i < parts.size(); ++i)
      if (e.segments[i] == "{}") params->emplace_back(parts[i]);
  }
  return true;
}

Router::Match Router::Find(std::string_view method,
                           std::string_view path) const {
  Match m;
  const auto parts = SplitPath(path);
  for (const Entry& e : entries_) {
    if (e.method != method) continue;
    if (Matches(e, parts, &m.params)) {
      m.id = e.id;
      return m;
    }
  }
  for (const Entry& e : entries_) {
    if (!Matches(e, parts, nullptr)) continue;
    m.path_known = true;
    m.allow += (m.allow.empty() ? "" : ", ") + e.method;
  }
  return m;
}

std::optional<std::string> Router::SlashRedirect(std::string_view method,
                                                 std::string_view path) const {
  std::string other = path.size() > 1 && path.back() == '/'
                          ? std::string(path.substr(0, path.size() - 1))
                          : std::string(path) + "/";
  const auto parts = SplitPath(other);
  for (const Entry& e : entries_)
    if (e.method == method && Matches(e, parts, nullptr)) return other;
  return std::nullopt;
}

}  // namespace polar::sim
