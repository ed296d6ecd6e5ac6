// The webhook verifier against known answers computed independently: the
// Standard Webhooks specification's published vector, and HMACs computed at
// test time by Python's hmac/base64 modules (Debian's /usr/bin/python3), not by
// our code.
#include "daemon/webhooks/webhook_signature.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace polar {
namespace {

std::string Hex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// "v1,<base64(HMAC-SHA256(key, id.ts.body))>" as Python computes it. Inputs go
// in hex so no quoting can change them.
std::string PythonSignature(std::string_view key, std::string_view id,
                            std::string_view ts, std::string_view body) {
  std::string cmd = std::string(
                        "/usr/bin/python3 -c 'import sys,hmac,hashlib,base64\n"
                        "k,i,t,b=(bytes.fromhex(a) for a in sys.argv[1:5])\n"
                        "m=i+b\".\"+t+b\".\"+b\n"
                        "print(\"v1,\"+base64.b64encode(hmac.new(k,m,hashlib."
                        "sha256).digest())"
                        ".decode())' '") +
                    Hex(key) + "' '" + Hex(id) + "' '" + Hex(ts) + "' '" +
                    Hex(body) + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string PythonBase64(std::string_view bytes) {
  std::string cmd =
      "/usr/bin/python3 -c 'import sys,base64; "
      "print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())' '" +
      Hex(bytes) + "'";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[256];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  if (p) pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

constexpr std::string_view kPolarSecret =
    "whsec_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u";
constexpr std::string_view kBody =
    R"({"type":"checkout.created","timestamp":"2026-08-22T10:00:00.000000Z","data":{"id":"5b1c1e0e-8f0e-4b43-9d35-0d8c6b3c1a11"}})";

TEST(WebhookSignature, StandardWebhooksPublishedVectorVerifies) {
  // From the Standard Webhooks specification (and its reference libraries'
  // tests): a base64 key with the whsec_ prefix.
  std::string error;
  auto key = WebhookKeyFromSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                  WebhookSecretFormat::kStandard, &error);
  ASSERT_TRUE(key) << error;
  EXPECT_EQ(key->size(), 24u);
  EXPECT_TRUE(VerifyWebhookSignature(
      *key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
      R"({"test": 2432232314})",
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
  EXPECT_EQ(SignWebhook(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                        R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignature, PolarKeyIsTheUtf8BytesOfTheWholeSecret) {
  std::string error;
  auto key =
      WebhookKeyFromSecret(kPolarSecret, WebhookSecretFormat::kPolar, &error);
  ASSERT_TRUE(key) << error;
  EXPECT_EQ(*key, kPolarSecret);  // "whsec_" included, nothing decoded
  const std::string expected =
      PythonSignature(kPolarSecret, "7e3b9a52-1f0c-4d7e-8a2b-3c4d5e6f7a8b",
                      "1755856800", kBody);
  ASSERT_EQ(expected.rfind("v1,", 0), 0u) << "python3 failed: " << expected;
  EXPECT_TRUE(VerifyWebhookSignature(*key,
                                     "7e3b9a52-1f0c-4d7e-8a2b-3c4d5e6f7a8b",
                                     "1755856800", kBody, expected));
  EXPECT_EQ(SignWebhook(*key, "7e3b9a52-1f0c-4d7e-8a2b-3c4d5e6f7a8b",
                        "1755856800", kBody),
            expected);
  // The prefix-stripped, base64-decoded reading (what a Standard Webhooks
  // library would do with the raw Polar secret) is a different key.
  auto wrong = WebhookKeyFromSecret(kPolarSecret,
                                    WebhookSecretFormat::kStandard, &error);
  ASSERT_TRUE(wrong);
  EXPECT_FALSE(VerifyWebhookSignature(*wrong,
                                      "7e3b9a52-1f0c-4d7e-8a2b-3c4d5e6f7a8b",
                                      "1755856800", kBody, expected));
}

TEST(WebhookSignature, TheStandardFormOfAPolarSecretGivesTheSameKey) {
  // Polar's docs: a Standard Webhooks library must be given
  // base64(secret_utf8). Configured that way (secret_format = "standard"),
  // with or without a whsec_ prefix, it is the same key.
  const std::string b64 = PythonBase64(kPolarSecret);
  ASSERT_FALSE(b64.empty());
  std::string error;
  for (const std::string& text : {b64, "whsec_" + b64}) {
    auto key =
        WebhookKeyFromSecret(text, WebhookSecretFormat::kStandard, &error);
    ASSERT_TRUE(key) << error;
    EXPECT_EQ(*key, kPolarSecret);
  }
}

TEST(WebhookSignature, AnUnpaddedStandardSecretIsTheSameKeyAsItsPaddedForm) {
  // Secrets are often copied without their trailing '='. Keys of 25 and 26
  // bytes need two and one pad characters; ending in zero bytes, they also
  // catch a decoder that counts the pad's zero bytes as key bytes.
  for (const std::string& key : {std::string(24, 'k') + std::string(1, '\0'),
                                 std::string(24, 'k') + std::string(2, '\0')}) {
    const std::string padded = Base64Encode(key);
    ASSERT_EQ(padded.back(), '=');
    std::string unpadded = padded;
    while (unpadded.back() == '=') unpadded.pop_back();
    for (const std::string& text : {"whsec_" + padded, "whsec_" + unpadded}) {
      std::string error;
      auto got =
          WebhookKeyFromSecret(text, WebhookSecretFormat::kStandard, &error);
      ASSERT_TRUE(got) << error;
      EXPECT_EQ(*got, key) << text;
    }
  }
}

TEST(WebhookSignature, APolarSecretGivenAsStandardIsRefusedNotMisread) {
  // As Polar generates them (kit/crypto.py): "whsec_", 37 random characters
  // and their CRC32 in base62 (computed with Python's zlib.crc32).
  constexpr std::string_view kGenerated =
      "whsec_Qx3vN8mRk2LpT7yWc5ZaB9dHfJ4gUeS1iOoVn2muAXn";
  EXPECT_TRUE(LooksLikePolarSecret(kGenerated));
  std::string error;
  // Read the Standard Webhooks way it would decode to 32 bytes and be taken:
  // every delivery would then fail the signature.
  EXPECT_FALSE(
      WebhookKeyFromSecret(kGenerated, WebhookSecretFormat::kStandard, &error));
  EXPECT_NE(error.find("secret_format = \"polar\""), std::string::npos)
      << error;
  EXPECT_EQ(error.find(kGenerated.substr(6)), std::string::npos);
  EXPECT_TRUE(
      WebhookKeyFromSecret(kGenerated, WebhookSecretFormat::kPolar, &error));
  // Its Standard form, and Standard Webhooks' own keys, are not Polar's.
  const std::string b64 = PythonBase64(kGenerated);
  EXPECT_FALSE(LooksLikePolarSecret("whsec_" + b64));
  EXPECT_TRUE(WebhookKeyFromSecret("whsec_" + b64,
                                   WebhookSecretFormat::kStandard, &error));
  EXPECT_FALSE(LooksLikePolarSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
  // One changed character breaks the checksum.
  std::string changed(kGenerated);
  changed[10] = changed[10] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(LooksLikePolarSecret(changed));
}

TEST(WebhookSignature, AnyOfSeveralSpaceSeparatedSignaturesMayMatch) {
  const std::string key(kPolarSecret);
  const std::string good = PythonSignature(key, "id-1", "1755856800", kBody);
  const std::string other = PythonSignature(
      "whsec_another_secret_of_32_chars!!", "id-1", "1755856800", kBody);
  ASSERT_NE(good, other);
  EXPECT_TRUE(VerifyWebhookSignature(key, "id-1", "1755856800", kBody,
                                     other + " " + good));
  EXPECT_TRUE(VerifyWebhookSignature(key, "id-1", "1755856800", kBody,
                                     good + " " + other));
  EXPECT_FALSE(VerifyWebhookSignature(key, "id-1", "1755856800", kBody, other));
  // Another version tag is not v1, even with the right bytes.
  EXPECT_FALSE(VerifyWebhookSignature(key, "id-1", "1755856800", kBody,
                                      "v1a," + good.substr(3)));
  EXPECT_TRUE(VerifyWebhookSignature(key, "id-1", "1755856800", kBody,
                                     "v1a,xyz " + good));
}

TEST(WebhookSignature, AnyChangeToIdTimestampBodyOrSignatureFails) {
  const std::string key(kPolarSecret);
  const std::string sig = PythonSignature(key, "id-1", "1755856800", kBody);
  EXPECT_TRUE(VerifyWebhookSignature(key, "id-1", "1755856800", kBody, sig));
  EXPECT_FALSE(VerifyWebhookSignature(key, "id-2", "1755856800", kBody, sig));
  EXPECT_FALSE(VerifyWebhookSignature(key, "id-1", "1755856801", kBody, sig));
  std::string body(kBody);
  body[10] = 'X';
  EXPECT_FALSE(VerifyWebhookSignature(key, "id-1", "1755856800", body, sig));
  std::string flipped = sig;
  flipped[5] = flipped[5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(
      VerifyWebhookSignature(key, "id-1", "1755856800", kBody, flipped));
  EXPECT_FALSE(VerifyWebhookSignature(key, "id-1", "1755856800", kBody,
                                      sig.substr(0, sig.size() - 1)));
  EXPECT_FALSE(VerifyWebhookSignature(key, "id-1", "1755856800", kBody, ""));
  EXPECT_FALSE(VerifyWebhookSignature(key, "id-1", "1755856800", kBody, "v1,"));
  EXPECT_FALSE(VerifyWebhookSignature(key, "id-1", "1755856800", kBody,
                                      sig.substr(3)));  // no "v1,"
  // No key verifies nothing, not even a signature made with an empty key.
  EXPECT_FALSE(
      VerifyWebhookSignature("", "id-1", "1755856800", kBody,
                             PythonSignature("", "id-1", "1755856800", kBody)));
}

TEST(WebhookSignature, BadSecretsAreRefusedWithoutQuotingThem) {
  std::string error;
  const std::string short_secret = "whsec_tooshort_1234";
  EXPECT_FALSE(
      WebhookKeyFromSecret(short_secret, WebhookSecretFormat::kPolar, &error));
  EXPECT_EQ(error.find("tooshort"), std::string::npos) << error;
  EXPECT_NE(error.find("32"), std::string::npos) << error;

  const std::string not_base64 = "whsec_this is not base64 at all!!!!!!!!";
  EXPECT_FALSE(
      WebhookKeyFromSecret(not_base64, WebhookSecretFormat::kStandard, &error));
  EXPECT_EQ(error.find("not base64 at all"), std::string::npos) << error;

  // 8 bytes: under Standard Webhooks' 24-byte minimum.
  EXPECT_FALSE(WebhookKeyFromSecret(
      "whsec_c2hvcnRrZXk=", WebhookSecretFormat::kStandard, &error));
  EXPECT_NE(error.find("24-64"), std::string::npos) << error;
  EXPECT_EQ(error.find("c2hvcnRrZXk"), std::string::npos) << error;
}

TEST(WebhookSignature, TimestampsAreUnixSecondsInDigitsOnly) {
  EXPECT_EQ(ParseWebhookTimestamp("1755856800"), 1755856800);
  EXPECT_EQ(ParseWebhookTimestamp("0"), 0);
  EXPECT_FALSE(ParseWebhookTimestamp(""));
  EXPECT_FALSE(ParseWebhookTimestamp("-1"));
  EXPECT_FALSE(ParseWebhookTimestamp("+1755856800"));
  EXPECT_FALSE(ParseWebhookTimestamp("1755856800.5"));
  EXPECT_FALSE(ParseWebhookTimestamp(" 1755856800"));
  EXPECT_FALSE(ParseWebhookTimestamp("1755856800000"));  // 13 digits: ms
  EXPECT_FALSE(ParseWebhookTimestamp("2026-08-22T10:00:00Z"));
}

TEST(WebhookSignature, Base64MatchesPythonAndRoundTrips) {
  for (std::string_view bytes :
       {std::string_view(""), std::string_view("f"), std::string_view("fo"),
        std::string_view("foo"), std::string_view("\xff\x00\xfe\x01", 4),
        std::string_view("\0", 1), std::string_view("a\0", 2),
        std::string_view("\0\0\0", 3), kPolarSecret}) {
    std::string encoded = Base64Encode(bytes);
    if (!bytes.empty()) {
      EXPECT_EQ(encoded, PythonBase64(bytes));
    }
    auto decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, bytes);
    // Padding is optional when decoding.
    std::string unpadded = encoded;
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    EXPECT_EQ(Base64Decode(unpadded), std::string(bytes));
  }
  EXPECT_FALSE(Base64Decode("ab$d"));
  EXPECT_FALSE(Base64Decode("abcde"));  // 5 characters cannot be base64
  // Blanks anywhere are refused (OpenSSL's decoder alone would skip them at
  // the ends), and so is padding in the middle.
  EXPECT_FALSE(Base64Decode(" Zm9v"));
  EXPECT_FALSE(Base64Decode("Zm9v\n"));
  EXPECT_FALSE(Base64Decode("Zm 9v"));
  EXPECT_FALSE(Base64Decode("Zg==Zm9v"));
  // Any run of trailing '=' is padding, as before.
  EXPECT_EQ(Base64Decode("Zg==="), std::string("f"));
}

}  // namespace
}  // namespace polar
