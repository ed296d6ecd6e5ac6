#include "sim/base/ids.h"

#include <atomic>
#include <cstdio>
#include <random>

namespace polar::sim {
namespace {

uint64_t Mix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string Base62Checksum(std::string_view body) {
  uint32_t crc = Crc32(body);
  std::string out(6, '0');
  for (int i = 5; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kBase62Alphabet[crc % 62];
    crc /= 62;
  }
  return out;
}

std::mt19937_64& ThreadRng() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(
      std::random_device{}() ^ (counter.fetch_add(1) * 0x9e3779b97f4a7c15ULL));
  return rng;
}

}  // namespace

std::string NewId() {
  auto& rng = ThreadRng();
  return MakeUuid(rng(), rng());
}

std::string RandomToken(std::string_view prefix, int n) {
  auto& rng = ThreadRng();
  std::string out(prefix);
  for (int i = 0; i < n; ++i) out += kBase62Alphabet[rng() % 62];
  return out;
}

uint64_t Derive(uint64_t seed, uint64_t salt) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ULL + salt * 0xbf58476d1ce4e5b9ULL + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint32_t Crc32(std::string_view data) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string MakeToken(std::string_view prefix, uint64_t seed) {
  std::string random;
  uint64_t state = seed;
  for (int i = 0; i < 37; ++i) random += kBase62Alphabet[Mix(state) % 62];
  return std::string(prefix) + random + Base62Checksum(random);
}

std::string NewToken(std::string_view prefix) {
  const std::string random = RandomToken("", 37);
  return std::string(prefix) + random + Base62Checksum(random);
}

bool TokenChecksumValid(std::string_view token, std::string_view prefix) {
  if (token.size() != prefix.size() + 37 + 6 ||
      token.substr(0, prefix.size()) != prefix) {
    return false;
  }
  return Base62Checksum(token.substr(prefix.size(), 37)) ==
         token.substr(token.size() - 6);
}

std::string MakeUuid(uint64_t hi, uint64_t lo) {
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo =
      (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  // Hand-formatted: ingest makes one id per event (snprintf showed in
  // profiles).
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t at = 0;
  auto put = [&](uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i)
      out[at++] = kHex[(v >> (4 * i)) & 0xf];
  };
  put(hi >> 32, 8);
  ++at;
  put((hi >> 16) & 0xffff, 4);
  ++at;
  put(hi & 0xffff, 4);
  ++at;
  put(lo >> 48, 4);
  ++at;
  put(lo & 0xffffffffffffULL, 12);
  return out;
}

}  // namespace polar::sim
