// Secret files and the credential-store reader --check-config uses
// (daemon/config/secret_files.h), on temporary folders standing in for
// /etc/credstore and /etc/credstore.encrypted.
#include "daemon/config/secret_files.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace polar {
namespace {

namespace fs = std::filesystem;

class CredentialStore : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/polar-credstore-test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    root_ = dir;
    fs::create_directories(root_ / "etc-credstore");
    fs::create_directories(root_ / "run-credstore");
    fs::create_directories(root_ / "etc-credstore.encrypted");
    options_.plain_dirs = {(root_ / "etc-credstore").string(),
                           (root_ / "run-credstore").string()};
    options_.encrypted_dirs = {(root_ / "etc-credstore.encrypted").string()};
    options_.decrypt = [this](const std::string& name, const std::string& path,
                              std::string* why) -> std::optional<std::string> {
      decrypted_ = name + " " + path;
      if (decrypt_fails_) {
        *why = "systemd-creds could not decrypt it";
        return std::nullopt;
      }
      return std::string("polar_oat_from_encrypted\n");
    };
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
  }

  fs::path root_;
  CredentialStoreOptions options_;
  std::string decrypted_;
  bool decrypt_fails_ = false;
};

constexpr const char* kUnitToken =
    "/run/credentials/polar-loadd.service/polar-token";

TEST_F(CredentialStore,
       AServiceCredentialIsReadFromTheStoreBeforeTheFirstStart) {
  Write(root_ / "etc-credstore" / "polar-token", "polar_oat_stored\n");
  std::string why, note;
  auto secret = CredentialStoreReader(options_)(kUnitToken, &why, &note);
  ASSERT_TRUE(secret) << why;
  EXPECT_EQ(*secret, "polar_oat_stored");
  EXPECT_NE(note.find((root_ / "etc-credstore" / "polar-token").string()),
            std::string::npos)
      << note;
  EXPECT_NE(note.find("credential polar-token"), std::string::npos) << note;
}

TEST_F(CredentialStore, TheStoresAreSearchedInSystemdsOrder) {
  Write(root_ / "run-credstore" / "polar-token", "second");
  Write(root_ / "etc-credstore.encrypted" / "polar-token", "sealed");
  std::string why, note;
  auto reader = CredentialStoreReader(options_);
  EXPECT_EQ(reader(kUnitToken, &why, &note).value_or(why), "second");
  Write(root_ / "etc-credstore" / "polar-token", "first");
  EXPECT_EQ(reader(kUnitToken, &why, &note).value_or(why), "first");
  EXPECT_TRUE(decrypted_.empty());
}

TEST_F(CredentialStore, AnEncryptedCredentialIsDecryptedUnderItsName) {
  Write(root_ / "etc-credstore.encrypted" / "polar-token", "sealed");
  std::string why, note;
  auto secret = CredentialStoreReader(options_)(kUnitToken, &why, &note);
  ASSERT_TRUE(secret) << why;
  EXPECT_EQ(*secret, "polar_oat_from_encrypted");
  EXPECT_EQ(decrypted_,
            "polar-token " +
                (root_ / "etc-credstore.encrypted" / "polar-token").string());
  EXPECT_NE(note.find("decrypted"), std::string::npos) << note;
  decrypt_fails_ = true;
  EXPECT_FALSE(CredentialStoreReader(options_)(kUnitToken, &why, &note));
  EXPECT_NE(why.find("could not decrypt"), std::string::npos) << why;
}

TEST_F(CredentialStore, AMissingCredentialNamesThePathAndEveryStoreSearched) {
  std::string why, note;
  EXPECT_FALSE(CredentialStoreReader(options_)(kUnitToken, &why, &note));
  EXPECT_NE(why.find(kUnitToken), std::string::npos) << why;
  EXPECT_NE(why.find("credential polar-token"), std::string::npos) << why;
  EXPECT_NE(why.find((root_ / "etc-credstore").string()), std::string::npos)
      << why;
  EXPECT_NE(why.find((root_ / "etc-credstore.encrypted").string()),
            std::string::npos)
      << why;
}

TEST_F(CredentialStore, InsideTheUnitItsOwnCredentialIsReadAsItIs) {
  // Under systemd $CREDENTIALS_DIRECTORY is the unit's folder: the path is
  // the live credential, not the store's (which the service cannot read).
  Write(root_ / "etc-credstore" / "polar-token", "polar_oat_stored");
  options_.credentials_directory = "/run/credentials/polar-loadd.service/";
  std::string why, note;
  EXPECT_FALSE(CredentialStoreReader(options_)(kUnitToken, &why, &note));
  EXPECT_NE(why.find("cannot read"), std::string::npos) << why;
  // Another unit's credential folder (the template's) still maps to the store.
  auto other = CredentialStoreReader(options_)(
      "/run/credentials/polar-loadd@1.service/polar-token", &why, &note);
  EXPECT_EQ(other.value_or(why), "polar_oat_stored");
}

TEST_F(CredentialStore, APathOutsideTheCredentialsFolderIsReadAsItIs) {
  Write(root_ / "token", "polar_oat_plain\n\n");
  std::string why, note;
  auto secret =
      CredentialStoreReader(options_)((root_ / "token").string(), &why, &note);
  EXPECT_EQ(secret.value_or(why), "polar_oat_plain");
  EXPECT_TRUE(note.empty());
}

TEST_F(CredentialStore,
       CredentialsDirectoryPathsAreReadFromTheStoreOutsideTheUnit) {
  Write(root_ / "etc-credstore" / "control-token", "0123456789abcdef0123");
  std::string why, note;
  auto secret = CredentialStoreReader(options_)(
      "${CREDENTIALS_DIRECTORY}/control-token", &why, &note);
  EXPECT_EQ(secret.value_or(why), "0123456789abcdef0123");
  EXPECT_NE(note.find("credential control-token"), std::string::npos) << note;
}

TEST_F(CredentialStore, CredentialsDirectoryPathsAreTheUnitsOwnInsideIt) {
  fs::create_directories(root_ / "unit-credentials");
  Write(root_ / "unit-credentials" / "polar-token", "polar_oat_live");
  Write(root_ / "etc-credstore" / "polar-token", "polar_oat_stored");
  options_.credentials_directory = (root_ / "unit-credentials").string();
  std::string why, note;
  auto secret = CredentialStoreReader(options_)(
      "${CREDENTIALS_DIRECTORY}/polar-token", &why, &note);
  EXPECT_EQ(secret.value_or(why), "polar_oat_live");
}

TEST(SecretFiles, TheDaemonExpandsCredentialsDirectoryOrSaysItIsUnset) {
  char dir[] = "/tmp/polar-credentials-dir.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::ofstream(std::string(dir) + "/polar-token") << "polar_oat_unit\n";
  std::string why, note;
  EXPECT_EQ(DaemonSecretReader(std::string(dir) + "/")(
                "${CREDENTIALS_DIRECTORY}/polar-token", &why, &note)
                .value_or(why),
            "polar_oat_unit");
  EXPECT_FALSE(DaemonSecretReader(std::nullopt)(
      "${CREDENTIALS_DIRECTORY}/polar-token", &why, &note));
  EXPECT_NE(why.find("$CREDENTIALS_DIRECTORY is not set"), std::string::npos)
      << why;
  EXPECT_NE(why.find("--check-config"), std::string::npos) << why;
  fs::remove_all(dir);
}

TEST(SecretFiles, CredentialNamesComeFromTheUnitsCredentialFolder) {
  EXPECT_EQ(CredentialName(kUnitToken).value_or("-"), "polar-token");
  EXPECT_EQ(
      CredentialName("/run/credentials/polar-loadd@2.service/webhook-secret")
          .value_or("-"),
      "webhook-secret");
  EXPECT_EQ(
      CredentialName("${CREDENTIALS_DIRECTORY}/control-token").value_or("-"),
      "control-token");
  EXPECT_FALSE(CredentialName("/etc/credstore/polar-token"));
  EXPECT_FALSE(CredentialName("/run/credentials/polar-token"));
  EXPECT_FALSE(CredentialName("/run/credentials/unit/a/b"));
  EXPECT_FALSE(CredentialName("/run/credentials/unit/.."));
}

TEST(SecretFiles, EmptyAndOversizedSecretFilesAreErrors) {
  char path[] = "/tmp/polar-secret-test.XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::string why;
  std::ofstream(path) << " \n";
  EXPECT_FALSE(ReadSecretFile(path, &why));
  EXPECT_NE(why.find("is empty"), std::string::npos) << why;
  std::ofstream(path) << std::string(64 * 1024 + 1, 'x');
  EXPECT_FALSE(ReadSecretFile(path, &why));
  EXPECT_NE(why.find("larger than 64 KiB"), std::string::npos) << why;
  unlink(path);
}

}  // namespace
}  // namespace polar
