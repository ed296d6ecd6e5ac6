#include "tests/support/test_pki.h"

#include <cstdlib>
#include <stdexcept>

#include "tests/support/process.h"

namespace polar::testing {
namespace {

void Run(const std::string& command) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) {
    throw std::runtime_error("test PKI: failed: " + command);
  }
}

const char* kEcKey = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

std::string MakeCa(const std::string& dir, const std::string& name) {
  Run("openssl req -x509 " + std::string(kEcKey) +
      " -days 2 -subj /CN=" + name + " -keyout " + dir + "/" + name +
      ".key -out " + dir + "/" + name + ".pem");
  return dir + "/" + name + ".pem";
}

// `days` -1 makes a certificate whose validity ended before it began: expired
// for any verifier (OpenSSL 3.0's x509 cannot back-date notBefore).
KeyPair MakeLeaf(const std::string& dir, const std::string& name,
                 const std::string& ca, const std::string& san, int days) {
  KeyPair k{dir + "/" + name + ".pem", dir + "/" + name + ".key"};
  const std::string csr = dir + "/" + name + ".csr";
  const std::string ext = dir + "/" + name + ".ext";
  WriteFile(ext, "subjectAltName=" + san + "\nbasicConstraints=CA:FALSE\n");
  Run("openssl req " + std::string(kEcKey) + " -subj /CN=" + name +
      " -keyout " + k.key + " -out " + csr);
  const std::string ca_key = ca.substr(0, ca.size() - 4) + ".key";
  Run("openssl x509 -req -in " + csr + " -CA " + ca + " -CAkey " + ca_key +
      " -set_serial " + std::to_string(std::rand() % 1000000 + 1) + " -days " +
      std::to_string(days) + " -extfile " + ext + " -out " + k.cert);
  return k;
}

}  // namespace

const TestPki& Pki() {
  static const TestPki pki = [] {
    TestPki p;
    const std::string dir = TempDir();
    p.ca = MakeCa(dir, "test-ca");
    const std::string other = MakeCa(dir, "untrusted-ca");
    const std::string here = "IP:127.0.0.1,DNS:localhost";
    p.good = MakeLeaf(dir, "good", p.ca, here, 1);
    p.wrong_host = MakeLeaf(dir, "wrong-host", p.ca, "DNS:other.example", 1);
    p.expired = MakeLeaf(dir, "expired", p.ca, here, -1);
    p.unknown_ca = MakeLeaf(dir, "unknown-ca", other, here, 1);
    return p;
  }();
  return pki;
}

}  // namespace polar::testing
