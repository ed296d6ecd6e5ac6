// Polar-shaped identifiers for the simulator: organization access tokens,
// UUIDs and random tokens.
//
// MakeToken/MakeUuid/Derive are pure functions of a seed; NewId/RandomToken
// draw from a per-thread generator. Any thread. Tokens follow Polar's format
// (docs/polar-api.md §1): a prefix, 37 random [A-Za-z0-9] characters and
// a 6-character base62 CRC32 checksum.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace polar::sim {

// The 62 characters of Polar's tokens and of their checksums, in base62 digit
// order.
inline constexpr char kBase62Alphabet[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// prefix + 37 [A-Za-z0-9] characters derived from `seed` + the base62 CRC32
// of those 37 (kit/crypto.py generate_token: the checksum covers the random
// part only, not the prefix).
std::string MakeToken(std::string_view prefix, uint64_t seed);
// The same with fresh random characters (per-thread generator): client
// secrets, webhook secrets, customer session tokens.
std::string NewToken(std::string_view prefix);
// True when `token` has the prefix, length and a checksum that matches.
bool TokenChecksumValid(std::string_view token, std::string_view prefix);
// A version-4-shaped UUID from two 64-bit values.
std::string MakeUuid(uint64_t hi, uint64_t lo);
uint32_t Crc32(std::string_view data);

// A fresh version-4 UUID (per-thread generator).
std::string NewId();
// prefix + n random [A-Za-z0-9] characters (per-thread generator).
std::string RandomToken(std::string_view prefix, int n);
// Splitmix-derived values, so every seeded id follows from --seed.
uint64_t Derive(uint64_t seed, uint64_t salt);

}  // namespace polar::sim
