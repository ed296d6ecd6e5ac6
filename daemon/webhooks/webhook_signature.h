// Webhook signatures as Polar sends them (docs/polar-api.md §4.3): Standard
// Webhooks headers, `webhook-signature: v1,<base64(HMAC-SHA256(key,
// "{webhook-id}.{webhook-timestamp}.{body}"))>`, possibly several entries
// separated by spaces (a sender rotating its secret signs with both).
//
// Pure functions of their arguments (no clock, no state), safe on any thread,
// so the verifier can be fuzzed and tested with known-answer vectors. Nothing
// here puts a secret or a key into an error message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace polar {

// How the configured secret text becomes the HMAC key.
enum class WebhookSecretFormat : uint8_t {
  // Polar's way: the key is the UTF-8 bytes of the whole secret string,
  // "whsec_" prefix included (Polar base64-encodes the whole string before it
  // hands it to the Standard Webhooks library, which decodes it again).
  kPolar,
  // The Standard Webhooks way: an optional "whsec_" prefix is stripped and the
  // rest is base64-decoded. This is the form a Standard Webhooks library is
  // given for Polar: base64 of the whole Polar secret, which yields the same
  // key as kPolar on the original string.
  kStandard,
};

// The HMAC key for `secret`, or nullopt with a reason in *error (a reason
// only: it never quotes the secret). Polar's own secrets are "whsec_" + 43
// characters and it refuses custom ones shorter than 32 characters, so a
// shorter kPolar secret is refused; a kStandard key must decode to 24-64 bytes
// (the Standard Webhooks range).
// True for a secret Polar generated ("whsec_" + 37 characters + their base62
// CRC32): one to use with kPolar, never with kStandard.
bool LooksLikePolarSecret(std::string_view secret);

std::optional<std::string> WebhookKeyFromSecret(std::string_view secret,
                                                WebhookSecretFormat format,
                                                std::string* error);

// The signature header value for one message: "v1,<base64>". For tests and
// for documentation of the scheme; the receiver only verifies.
std::string SignWebhook(std::string_view key, std::string_view id,
                        std::string_view timestamp, std::string_view body);

// True if any space-separated "v1,<base64>" entry of `signature_header` is the
// signature of (id, timestamp, body) under `key`. Entries with another version
// ("v1a,...") are skipped. Each candidate is compared in constant time
// (CRYPTO_memcmp), so the time taken does not reveal how many leading bytes of
// a forged signature were right. An empty key verifies nothing.
bool VerifyWebhookSignature(std::string_view key, std::string_view id,
                            std::string_view timestamp, std::string_view body,
                            std::string_view signature_header);

// webhook-timestamp: Unix seconds as 1-12 decimal digits; nullopt otherwise.
std::optional<int64_t> ParseWebhookTimestamp(std::string_view text);

// Standard base64 (RFC 4648 §4), by OpenSSL's EVP_EncodeBlock and
// EVP_DecodeBlock; padding is optional when decoding, other characters
// (blanks included) make the decode fail.
std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace polar
