// Secret files (the API token, the webhook secret, the control token) and
// systemd credentials seen from outside the service, which lets `polar-loadd
// --check-config` check the secrets a fresh install will start with.
//
// The shipped config reads its token from
// /run/credentials/polar-loadd.service/polar-token, the copy systemd makes from
// /etc/credstore/polar-token (LoadCredential=polar-token) when the unit starts
// and removes when it stops. Before the first start, or from a shell while it
// runs, that folder is not the service's: what the next start will load is in
// the credential store. So --check-config (and only it: the daemon reads the
// path it is given) maps a secret file under /run/credentials/UNIT/NAME to
// the credential NAME in the folders systemd.exec(5) searches for a
// LoadCredential= without a path: /etc/credstore, /run/credstore,
// /usr/lib/credstore, then their .encrypted twins for
// LoadCredentialEncrypted=, decrypted with `systemd-creds decrypt`.
//
// Plain functions; called while a config is parsed, on whichever thread
// parses it. Decrypting runs systemd-creds and waits for it, so the reader
// that does it is for --check-config, never the event loop.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace polar {

// Reads at most `limit` bytes of `path` into *out; false if it cannot be
// opened or holds more (then *too_large). Bounded so a path that names
// /dev/zero or a huge log file costs a clear error, not all of the box's
// memory (the daemon reads these on its event loop, at start and on SIGHUP).
bool ReadBounded(const std::string& path, std::size_t limit, std::string* out,
                 bool* too_large);

// Reads a secret file (a token, a webhook secret): its contents without
// trailing whitespace, or nullopt with `why` set. `note` may be set to say
// where the secret was really read from.
using SecretReader = std::function<std::optional<std::string>(
    const std::string& path, std::string* why, std::string* note)>;

// The file at `path`, at most 64 KiB, not empty.
std::optional<std::string> ReadSecretFile(const std::string& path,
                                          std::string* why,
                                          std::string* note = nullptr);

// A secret path may start with "${CREDENTIALS_DIRECTORY}/": the folder where
// systemd puts the credentials of the unit that runs us, whichever unit that
// is (/run/credentials/polar-loadd.service or .../polar-loadd@2.service), so
// one config file serves the service and every instance of the template.
inline constexpr std::string_view kCredentialsDirectoryPrefix =
    "${CREDENTIALS_DIRECTORY}/";

// The reader the daemon uses: expands the prefix with `credentials_directory`
// ($CREDENTIALS_DIRECTORY; an error when it is unset), then ReadSecretFile.
SecretReader DaemonSecretReader(
    std::optional<std::string> credentials_directory);

// The credential NAME when `path` is /run/credentials/UNIT/NAME (any unit) or
// ${CREDENTIALS_DIRECTORY}/NAME, else nullopt.
std::optional<std::string> CredentialName(std::string_view path);

// Where systemd would load the credential `name` from, searching `plain_dirs`
// then `encrypted_dirs` in order; nullopt when none holds it.
struct CredentialSource {
  std::string path;
  bool encrypted = false;
};
std::optional<CredentialSource> FindCredentialSource(
    const std::string& name, const std::vector<std::string>& plain_dirs,
    const std::vector<std::string>& encrypted_dirs);

// The folders systemd 252 searches, in its order.
std::vector<std::string> CredentialStoreDirs();
std::vector<std::string> EncryptedCredentialStoreDirs();

// Options of the reader for --check-config.
struct CredentialStoreOptions {
  // $CREDENTIALS_DIRECTORY of this process (unset: empty). A path inside it is
  // this process's own credential and is read as it is.
  std::string credentials_directory;
  std::vector<std::string> plain_dirs = CredentialStoreDirs();
  std::vector<std::string> encrypted_dirs = EncryptedCredentialStoreDirs();
  // Decrypts an encrypted credential file; the default runs
  // `systemd-creds decrypt --name=NAME PATH -`.
  std::function<std::optional<std::string>(
      const std::string& name, const std::string& path, std::string* why)>
      decrypt;
};

// A reader that reads /run/credentials/UNIT/NAME and, while
// $CREDENTIALS_DIRECTORY is unset, ${CREDENTIALS_DIRECTORY}/NAME from the
// credential store, as the unit's next start would (see the top of this
// file); every other path as DaemonSecretReader does.
SecretReader CredentialStoreReader(CredentialStoreOptions options);

}  // namespace polar
