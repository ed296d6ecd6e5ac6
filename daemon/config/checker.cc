#include "daemon/config/checker.h"

#include <fmt/format.h>

#include <charconv>

#include "daemon/schedule/units.h"

namespace polar {

std::optional<std::string> Checker::Secret(const std::string& path,
                                           std::string* why) {
  std::string note;
  auto secret = read_secret_(path, why, &note);
  if (secret && !note.empty()) notes_->push_back(std::move(note));
  return secret;
}

void Checker::Error(const toml::node* node, std::string key,
                    std::string message) {
  ConfigError e;
  e.file = file_;
  if (node) {
    e.line = static_cast<int>(node->source().begin.line);
    e.column = static_cast<int>(node->source().begin.column);
  }
  e.key = std::move(key);
  e.message = std::move(message);
  errors_->push_back(std::move(e));
}

void Checker::OnlyKeys(const toml::table& table, const std::string& prefix,
                       std::span<const std::string_view> allowed) {
  for (const auto& [k, v] : table) {
    bool ok = false;
    for (auto a : allowed) ok = ok || a == k.str();
    if (!ok) {
      std::string hint;
      for (auto a : allowed)
        hint += fmt::format("{}{}", hint.empty() ? "" : ", ", a);
      Error(&v, Join(prefix, k.str()),
            fmt::format("unknown key; allowed here: {}", hint));
    }
  }
}

std::string Checker::Join(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : fmt::format("{}.{}", prefix, key);
}

template <typename T>
std::optional<T> Checker::Get(const toml::table& table,
                              const std::string& prefix, std::string_view key,
                              const char* type_name) {
  const toml::node* node = table.get(key);
  if (!node) return std::nullopt;
  if (auto v = node->value_exact<T>()) return *v;
  Error(node, Join(prefix, key), fmt::format("must be {}", type_name));
  return std::nullopt;
}

std::optional<std::string> Checker::String(const toml::table& t,
                                           const std::string& p,
                                           std::string_view k) {
  return Get<std::string>(t, p, k, "a string");
}

std::optional<bool> Checker::Bool(const toml::table& t, const std::string& p,
                                  std::string_view k) {
  return Get<bool>(t, p, k, "true or false");
}

std::optional<int64_t> Checker::Int(const toml::table& t, const std::string& p,
                                    std::string_view k, int64_t min,
                                    int64_t max) {
  auto v = Get<int64_t>(t, p, k, "an integer");
  if (v && (*v < min || *v > max)) {
    Error(t.get(k), Join(p, k),
          fmt::format("{} is out of range [{}, {}]", *v, min, max));
    return std::nullopt;
  }
  return v;
}

std::optional<Duration> Checker::DurationValue(const toml::table& t,
                                               const std::string& p,
                                               std::string_view k, Duration min,
                                               Duration max) {
  auto s = String(t, p, k);
  if (!s) return std::nullopt;
  std::string why;
  auto d = ParseDuration(*s, &why);
  if (!d) {
    Error(t.get(k), Join(p, k), why);
    return std::nullopt;
  }
  if (*d < min || *d > max) {
    Error(t.get(k), Join(p, k),
          fmt::format("{} is out of range [{}, {}]", *s, FormatDuration(min),
                      FormatDuration(max)));
    return std::nullopt;
  }
  return d;
}

std::optional<double> Checker::RateValue(const toml::table& t,
                                         const std::string& p,
                                         std::string_view k) {
  auto s = String(t, p, k);
  if (!s) return std::nullopt;
  std::string why;
  auto r = ParseRate(*s, &why);
  if (!r) {
    Error(t.get(k), Join(p, k), why);
    return std::nullopt;
  }
  // 100,000/s is 5x the engine's benchmarked ceiling on two cores; more is a
  // typo, not a plan.
  if (*r > 100'000) {
    Error(t.get(k), Join(p, k),
          fmt::format("{} is above the maximum of 100000/s", *s));
    return std::nullopt;
  }
  return r;
}

std::optional<double> Checker::ShareValue(const toml::table& t,
                                          const std::string& p,
                                          std::string_view k,
                                          std::string_view hint) {
  const toml::node* node = t.get(k);
  if (!node) return std::nullopt;
  std::optional<double> v;
  if (auto f = node->value_exact<double>()) v = *f;
  if (auto n = node->value_exact<int64_t>()) v = static_cast<double>(*n);
  if (!v || !(*v >= 0) || *v > 1) {
    Error(node, Join(p, k), fmt::format("must be a share in [0, 1], {}", hint));
    return std::nullopt;
  }
  return v;
}

const toml::table* SubTable(Checker& c, const toml::table& root,
                            std::string_view key) {
  const toml::node* node = root.get(key);
  if (!node) return nullptr;
  if (auto* t = node->as_table()) return t;
  c.Error(node, std::string(key), "must be a table");
  return nullptr;
}

std::optional<int64_t> EnvInt(Checker& c, const EnvLookup& env,
                              const char* name, int64_t min, int64_t max) {
  auto text = env(name);
  if (!text) return std::nullopt;
  int64_t value = 0;
  auto [ptr, ec] =
      std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || ptr != text->data() + text->size() || value < min ||
      value > max) {
    c.Error(
        nullptr, fmt::format("env {}", name),
        fmt::format("\"{}\" is not an integer in [{}, {}]", *text, min, max));
    return std::nullopt;
  }
  return value;
}

}  // namespace polar
