#include "daemon/config/secret_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

extern char** environ;

namespace polar {
namespace {

// A Polar token is ~50 bytes, a webhook secret ~40: 64 KiB is generous.
constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

constexpr std::string_view kCredentialsRoot = "/run/credentials/";

std::string TrimTrailingSpace(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' ||
                        s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  return s;
}

bool IsFile(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// systemd's credential names: 1-255 bytes, no '/', not "." or "..".
bool ValidCredentialName(std::string_view name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         name.find('/') == std::string_view::npos;
}

// `systemd-creds decrypt --name=NAME PATH -`: the plaintext on stdout, at
// most 64 KiB. Root only (the host key in /var/lib/systemd is root's).
std::optional<std::string> SystemdCredsDecrypt(const std::string& name,
                                               const std::string& path,
                                               std::string* why) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    *why = fmt::format("pipe: {}", std::strerror(errno));
    return std::nullopt;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  const std::string name_arg = "--name=" + name;
  const char* argv[] = {"systemd-creds", "decrypt", name_arg.c_str(),
                        path.c_str(),    "-",       nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "systemd-creds", &actions, nullptr,
                        const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    *why = fmt::format("cannot run systemd-creds: {}", std::strerror(rc));
    return std::nullopt;
  }
  std::string plain;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0 && plain.size() <= kMaxSecretFileBytes)
      plain.append(buf, static_cast<std::size_t>(n));
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *why = fmt::format(
        "systemd-creds could not decrypt {} (run the check as root; its "
        "message is above)",
        path);
    return std::nullopt;
  }
  if (plain.size() > kMaxSecretFileBytes) {
    *why = fmt::format("{} decrypts to more than {} KiB; not a token", path,
                       kMaxSecretFileBytes / 1024);
    return std::nullopt;
  }
  return plain;
}

}  // namespace

bool ReadBounded(const std::string& path, std::size_t limit, std::string* out,
                 bool* too_large) {
  *too_large = false;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(limit + 1, '\0');
  in.read(out->data(), static_cast<std::streamsize>(limit + 1));
  out->resize(static_cast<std::size_t>(in.gcount()));
  if (out->size() > limit) {
    out->clear();
    *too_large = true;
    return false;
  }
  return true;
}

std::optional<std::string> ReadSecretFile(const std::string& path,
                                          std::string* why, std::string*) {
  std::string secret;
  bool too_large = false;
  if (!ReadBounded(path, kMaxSecretFileBytes, &secret, &too_large)) {
    *why = too_large ? fmt::format("{} is larger than {} KiB; not a token",
                                   path, kMaxSecretFileBytes / 1024)
                     : fmt::format("cannot read {}", path);
    return std::nullopt;
  }
  secret = TrimTrailingSpace(std::move(secret));
  if (secret.empty()) {
    *why = fmt::format("{} is empty", path);
    return std::nullopt;
  }
  return secret;
}

SecretReader DaemonSecretReader(
    std::optional<std::string> credentials_directory) {
  return [dir = std::move(credentials_directory)](
             const std::string& path, std::string* why,
             std::string* note) -> std::optional<std::string> {
    if (!path.starts_with(kCredentialsDirectoryPrefix))
      return ReadSecretFile(path, why, note);
    if (!dir || dir->empty()) {
      *why = fmt::format(
          "{} names a credential of the systemd unit that runs polar-loadd, "
          "but $CREDENTIALS_DIRECTORY is not set (not started by systemd with "
          "LoadCredential=); `polar-loadd --check-config` reads it from the "
          "credential store instead",
          path);
      return std::nullopt;
    }
    std::string own = *dir;
    while (own.size() > 1 && own.back() == '/') own.pop_back();
    return ReadSecretFile(
        own + "/" + path.substr(kCredentialsDirectoryPrefix.size()), why, note);
  };
}

std::optional<std::string> CredentialName(std::string_view path) {
  if (path.starts_with(kCredentialsDirectoryPrefix)) {
    std::string_view name = path.substr(kCredentialsDirectoryPrefix.size());
    if (!ValidCredentialName(name)) return std::nullopt;
    return std::string(name);
  }
  if (!path.starts_with(kCredentialsRoot)) return std::nullopt;
  std::string_view rest = path.substr(kCredentialsRoot.size());
  const auto slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos) return std::nullopt;
  std::string_view name = rest.substr(slash + 1);
  if (!ValidCredentialName(name)) return std::nullopt;
  return std::string(name);
}

std::optional<CredentialSource> FindCredentialSource(
    const std::string& name, const std::vector<std::string>& plain_dirs,
    const std::vector<std::string>& encrypted_dirs) {
  for (const std::string& dir : plain_dirs) {
    std::string path = dir + "/" + name;
    if (IsFile(path)) return CredentialSource{std::move(path), false};
  }
  for (const std::string& dir : encrypted_dirs) {
    std::string path = dir + "/" + name;
    if (IsFile(path)) return CredentialSource{std::move(path), true};
  }
  return std::nullopt;
}

std::vector<std::string> CredentialStoreDirs() {
  return {"/etc/credstore", "/run/credstore", "/usr/lib/credstore"};
}

std::vector<std::string> EncryptedCredentialStoreDirs() {
  return {"/etc/credstore.encrypted", "/run/credstore.encrypted",
          "/usr/lib/credstore.encrypted"};
}

SecretReader CredentialStoreReader(CredentialStoreOptions options) {
  if (!options.decrypt) options.decrypt = SystemdCredsDecrypt;
  return [options = std::move(options)](
             const std::string& path, std::string* why,
             std::string* note) -> std::optional<std::string> {
    auto name = CredentialName(path);
    std::string own = options.credentials_directory;
    while (own.size() > 1 && own.back() == '/') own.pop_back();
    // Not a credential path, or this process's own credential (under the
    // unit, $CREDENTIALS_DIRECTORY set): as the daemon reads it.
    if (!name ||
        (!own.empty() && (path.starts_with(own + "/") ||
                          path.starts_with(kCredentialsDirectoryPrefix)))) {
      std::optional<std::string> dir;
      if (!own.empty()) dir = own;
      return DaemonSecretReader(dir)(path, why, note);
    }
    auto source =
        FindCredentialSource(*name, options.plain_dirs, options.encrypted_dirs);
    if (!source) {
      std::string dirs;
      for (const auto& d : options.plain_dirs) dirs += d + ", ";
      for (const auto& d : options.encrypted_dirs) dirs += d + ", ";
      if (dirs.size() >= 2) dirs.resize(dirs.size() - 2);
      *why = fmt::format(
          "{} is the systemd credential {}, which the service loads when it "
          "starts, but no credential store holds it (searched {})",
          path, *name, dirs);
      return std::nullopt;
    }
    std::optional<std::string> secret;
    if (source->encrypted) {
      std::string decrypt_why;
      secret = options.decrypt(*name, source->path, &decrypt_why);
      if (!secret) {
        *why = fmt::format("{} is the systemd credential {}: {}", path, *name,
                           decrypt_why);
        return std::nullopt;
      }
      secret = TrimTrailingSpace(std::move(*secret));
      if (secret->empty()) {
        *why = fmt::format("{} decrypts to nothing", source->path);
        return std::nullopt;
      }
    } else {
      std::string read_why;
      secret = ReadSecretFile(source->path, &read_why, nullptr);
      if (!secret) {
        *why = fmt::format("{} is the systemd credential {}: {}", path, *name,
                           read_why);
        return std::nullopt;
      }
    }
    if (note) {
      *note = fmt::format(
          "{} is the systemd credential {}; checked {}{}, which the service "
          "loads there when it starts",
          path, *name, source->path, source->encrypted ? " (decrypted)" : "");
    }
    return secret;
  };
}

}  // namespace polar
