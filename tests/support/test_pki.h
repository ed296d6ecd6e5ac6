// Test support: a private certificate authority and the server certificates
// the TLS tests need, made once per test process with the openssl command
// (EC P-256 keys, so all of them take a few milliseconds).
//
// For tests only; not thread-safe (call from the test's thread).
#pragma once

#include <string>

namespace polar::testing {

struct KeyPair {
  std::string cert;  // PEM file
  std::string key;   // PEM file
};

struct TestPki {
  std::string ca;  // the CA to trust (ca_file)
  // Signed by `ca`, for IP 127.0.0.1 and DNS localhost, valid for a day.
  KeyPair good;
  // Signed by `ca`, for DNS other.example only: the wrong host for
  // 127.0.0.1 and for localhost.
  KeyPair wrong_host;
  // Signed by `ca`, for 127.0.0.1 and localhost, expired a day ago.
  KeyPair expired;
  // For 127.0.0.1 and localhost, signed by a CA nobody trusts.
  KeyPair unknown_ca;
};

// Made on first use in a temporary directory; throws when openssl fails.
const TestPki& Pki();

}  // namespace polar::testing
