#include "daemon/webhooks/webhook_signature.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cctype>
#include <memory>

namespace polar {
namespace {

constexpr std::string_view kPrefix = "whsec_";

// HMAC-SHA256 over the concatenation of `parts`, without copying the body
// into one buffer. The EVP_MAC is fetched once (OpenSSL's fetch walks the
// provider tables; a per-call fetch would cost more than the MAC itself).
bool HmacSha256(std::string_view key,
                std::initializer_list<std::string_view> parts,
                std::array<unsigned char, 32>* out) {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!mac) return false;
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(
      EVP_MAC_CTX_new(mac), &EVP_MAC_CTX_free);
  if (!ctx) return false;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  // OpenSSL refuses a null key pointer even for a zero length.
  static const unsigned char kEmpty = 0;
  const auto* key_bytes =
      key.empty() ? &kEmpty
                  : reinterpret_cast<const unsigned char*>(key.data());
  if (EVP_MAC_init(ctx.get(), key_bytes, key.size(), params) != 1) return false;
  for (std::string_view part : parts) {
    if (EVP_MAC_update(ctx.get(),
                       reinterpret_cast<const unsigned char*>(part.data()),
                       part.size()) != 1)
      return false;
  }
  std::size_t len = 0;
  return EVP_MAC_final(ctx.get(), out->data(), &len, out->size()) == 1 &&
         len == out->size();
}

// The standard alphabet (RFC 4648 §4). EVP_DecodeBlock skips blanks around
// its input, which a signature must not have, so the text is checked first.
bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  // EVP_EncodeBlock writes 4 characters per 3 bytes (padded) and a NUL.
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1 || text.size() > (1u << 30)) return std::nullopt;
  for (char c : text) {
    if (!IsBase64Char(c)) return std::nullopt;
  }
  // EVP_DecodeBlock wants whole 4-character groups: the padding goes back on,
  // and the zero bytes it then decodes to are dropped.
  const std::size_t pad = (4 - text.size() % 4) % 4;
  std::string padded(text);
  padded.append(pad, '=');
  std::string out(padded.size() / 4 * 3, '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(padded.data()),
                      static_cast<int>(padded.size()));
  if (n < 0 || static_cast<std::size_t>(n) < pad) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

bool LooksLikePolarSecret(std::string_view secret) {
  // kit/crypto.py generate_token: "whsec_", 37 random [A-Za-z0-9] and a
  // 6-character base62 CRC32 of those 37 (zero-filled). A Standard Webhooks
  // key never passes: its base64 has '+', '/' or '=' often, and 6 checksum
  // characters that match by chance are a 1 in 4e9 event.
  if (secret.substr(0, kPrefix.size()) != kPrefix) return false;
  std::string_view token = secret.substr(kPrefix.size());
  if (token.size() != 37 + 6) return false;
  for (char ch : token)
    if (!std::isalnum(static_cast<unsigned char>(ch))) return false;
  uint32_t crc = 0xffffffffu;
  for (unsigned char ch : token.substr(0, 37)) {
    crc ^= ch;
    for (int k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  crc = ~crc;
  static constexpr char kBase62[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string checksum(6, '0');
  for (int i = 5; i >= 0 && crc > 0; --i) {
    checksum[static_cast<std::size_t>(i)] = kBase62[crc % 62];
    crc /= 62;
  }
  return token.substr(37) == checksum;
}

std::optional<std::string> WebhookKeyFromSecret(std::string_view secret,
                                                WebhookSecretFormat format,
                                                std::string* error) {
  if (format == WebhookSecretFormat::kPolar) {
    if (secret.size() < 32) {
      *error =
          "is shorter than 32 characters (Polar's secrets are \"whsec_\" + 43 "
          "characters, and it refuses shorter custom ones)";
      return std::nullopt;
    }
    return std::string(secret);
  }
  if (LooksLikePolarSecret(secret)) {
    // It would decode to 32 bytes and be taken; Polar signs with the text
    // itself, so every delivery would fail the signature, and Polar disables
    // an endpoint after 10 failed events (docs/polar-api.md §4.3, §4.4).
    *error =
        "is a secret as Polar shows it (\"whsec_\" + 43 letters and digits, "
        "its checksum matches), and Polar signs with that text itself: with "
        "secret_format = \"standard\" it would be base64-decoded into other "
        "bytes and every delivery would fail the signature. Use secret_format "
        "= \"polar\" (or, for \"standard\", base64 of the whole secret)";
    return std::nullopt;
  }
  std::string_view body = secret;
  if (body.substr(0, kPrefix.size()) == kPrefix)
    body.remove_prefix(kPrefix.size());
  auto key = Base64Decode(body);
  if (!key) {
    *error =
        "is not base64 after the optional \"whsec_\" prefix (secret_format = "
        "\"standard\"); for the secret exactly as Polar shows it, use "
        "secret_format = \"polar\"";
    return std::nullopt;
  }
  if (key->size() < 24 || key->size() > 64) {
    *error = "decodes to " + std::to_string(key->size()) +
             " bytes; a Standard Webhooks key has 24-64";
    return std::nullopt;
  }
  return key;
}

std::string SignWebhook(std::string_view key, std::string_view id,
                        std::string_view timestamp, std::string_view body) {
  std::array<unsigned char, 32> mac{};
  if (!HmacSha256(key, {id, ".", timestamp, ".", body}, &mac)) return "";
  return "v1," + Base64Encode(std::string_view(
                     reinterpret_cast<const char*>(mac.data()), mac.size()));
}

bool VerifyWebhookSignature(std::string_view key, std::string_view id,
                            std::string_view timestamp, std::string_view body,
                            std::string_view signature_header) {
  if (key.empty()) return false;
  std::array<unsigned char, 32> mac{};
  if (!HmacSha256(key, {id, ".", timestamp, ".", body}, &mac)) return false;
  const std::string expected = Base64Encode(
      std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
  bool any = false;
  std::size_t pos = 0;
  while (pos < signature_header.size()) {
    std::size_t end = signature_header.find(' ', pos);
    if (end == std::string_view::npos) end = signature_header.size();
    std::string_view entry = signature_header.substr(pos, end - pos);
    pos = end + 1;
    std::size_t comma = entry.find(',');
    if (comma == std::string_view::npos || entry.substr(0, comma) != "v1")
      continue;
    std::string_view candidate = entry.substr(comma + 1);
    // The length is public (a SHA-256 in base64 is always 44 characters);
    // only the content is compared in constant time. Every entry is
    // compared, so a match's position does not show in the timing either.
    if (candidate.size() == expected.size() &&
        CRYPTO_memcmp(candidate.data(), expected.data(), expected.size()) ==
            0) {
      any = true;
    }
  }
  return any;
}

std::optional<int64_t> ParseWebhookTimestamp(std::string_view text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace polar
