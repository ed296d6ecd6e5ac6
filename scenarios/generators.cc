#include "scenarios/generators.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <ctime>

namespace polar {

std::vector<double> PowerLawPicker::Weights(std::size_t n) {
  std::vector<double> w(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (i == 0) {
      w[i] = 0.35;
    } else if (i < 5) {
      w[i] = 0.43 / 4;
    } else if (i < 10) {
      w[i] = 0.12 / 5;
    } else if (i < 20) {
      w[i] = 0.06 / 10;
    } else {
      w[i] = 0.04 / static_cast<double>(n - 20);
    }
  }
  double sum = 0;
  for (double x : w) sum += x;
  for (double& x : w) x /= sum;
  return w;
}

PowerLawPicker::PowerLawPicker(std::size_t n) {
  std::vector<double> w = Weights(n);
  cumulative_.reserve(n);
  double sum = 0;
  for (double x : w) cumulative_.push_back(sum += x);
  if (!cumulative_.empty()) cumulative_.back() = 1.0;
}

std::size_t PowerLawPicker::Pick(Rng& rng) const {
  double u = rng.Uniform();
  auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
  if (it == cumulative_.end()) --it;
  return static_cast<std::size_t>(it - cumulative_.begin());
}

std::string FormatIsoUtc(WallTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                t.time_since_epoch())
                .count();
  auto secs = static_cast<std::time_t>(ms / 1000);
  int frac = static_cast<int>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, frac);
}

std::string RandomUuid(Rng& rng) {
  uint64_t hi = rng.Next();
  uint64_t lo = rng.Next();
  hi = (hi & ~0xf000ULL) | 0x4000ULL;        // version 4
  lo = (lo & ~(3ULL << 62)) | (2ULL << 62);  // variant 10
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32,
                     (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48,
                     lo & 0xffffffffffffULL);
}

std::string MakeRunId(WallTime now, Rng& rng) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                now.time_since_epoch())
                .count();
  return fmt::format("{:x}{:04x}", us, rng.Next() & 0xffff);
}

std::string RandomCustomerName(Rng& rng) {
  static constexpr std::array<std::string_view, 32> kFirst = {
      "Ada",   "Alan",    "Grace",  "Linus", "Margaret", "Dennis", "Barbara",
      "Ken",   "Frances", "John",   "Radia", "Edsger",   "Hedy",   "Donald",
      "Karen", "Niklaus", "Sophie", "Tim",   "Joan",     "Bjarne", "Lynn",
      "Guido", "Anita",   "Vint",   "Mary",  "Leslie",   "Shafi",  "Fernando",
      "Adele", "Jean",    "Erna",   "Tony"};
  static constexpr std::array<std::string_view, 32> kLast = {
      "Lovelace", "Turing",     "Hopper",   "Torvalds", "Hamilton",
      "Ritchie",  "Liskov",     "Thompson", "Allen",    "Backus",
      "Perlman",  "Dijkstra",   "Lamarr",   "Knuth",    "Jones",
      "Wirth",    "Wilson",     "Berners",  "Clarke",   "Stroustrup",
      "Conway",   "Rossum",     "Borg",     "Cerf",     "Keller",
      "Lamport",  "Goldwasser", "Corbato",  "Koch",     "Sammet",
      "Moser",    "Hoare"};
  return fmt::format("{} {}", kFirst[rng.Below(kFirst.size())],
                     kLast[rng.Below(kLast.size())]);
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool CheckCustomerEmail(std::string_view email, std::string* why) {
  std::size_t at = email.find('@');
  if (at == std::string_view::npos ||
      email.find('@', at + 1) != std::string_view::npos) {
    *why = "must be an e-mail address with exactly one @";
    return false;
  }
  if (at == 0) {
    *why = "has nothing before the @";
    return false;
  }
  for (char c : email) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '<' ||
        c == '>' || c == ',' || c == ';' || c == '\\') {
      *why = "contains a space or a character e-mail addresses do not take";
      return false;
    }
  }
  std::string domain = AsciiLower(email.substr(at + 1));
  if (domain.empty() || domain.find('.') == std::string::npos ||
      domain.front() == '.' || domain.back() == '.') {
    *why = "needs a domain with a dot after the @";
    return false;
  }
  auto ends_with = [&](std::string_view suffix) {
    return domain.size() >= suffix.size() &&
           domain.compare(domain.size() - suffix.size(), suffix.size(),
                          suffix) == 0;
  };
  for (std::string_view special :
       {"example.com", "example.net", "example.org", ".example", ".test",
        ".invalid", ".localhost", ".local", ".onion", ".arpa"}) {
    bool hit = special.front() == '.' ? ends_with(special)
                                      : (domain == special ||
                                         ends_with("." + std::string(special)));
    if (hit) {
      *why = fmt::format(
          "{} is a special-use domain; Polar checks e-mail domains by DNS and "
          "refuses it. Use a domain that receives mail (yours, or polar.sh "
          "as Polar's own load tests do)",
          domain);
      return false;
    }
  }
  return true;
}

std::string TaggedEmail(std::string_view base, std::string_view tag) {
  std::size_t at = base.find('@');
  std::string_view local = base.substr(0, at);
  std::string_view domain = base.substr(at + 1);
  const char* sep = local.find('+') == std::string_view::npos ? "+" : "-";
  return fmt::format("{}{}{}@{}", local, sep, tag, domain);
}

}  // namespace polar
