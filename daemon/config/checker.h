// Checker: the config library's reader of a parsed TOML tree. It collects
// every problem with its place in the file (file:line:col) and its key path
// while the section parsers walk the tree, so LoadConfig() reports them all
// at once; typed getters return nullopt on a wrong type or an out-of-range
// value after recording the error, so a parser keeps its default and carries
// on. Also the environment helper the sections share; secret files are read
// through the SecretReader ParseConfig() was given
// (daemon/config/secret_files.h).
//
// Internal to daemon/config; one Checker per ParseConfig() call, on the
// thread that loads the config.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config/config.h"
#include "exporters/clock.h"

namespace polar {

class Checker {
 public:
  Checker(std::string file, std::vector<ConfigError>* errors,
          SecretReader read_secret, std::vector<std::string>* notes)
      : file_(std::move(file)),
        errors_(errors),
        read_secret_(std::move(read_secret)),
        notes_(notes) {}

  // Reads a token or secret file through the reader LoadConfig was given (the
  // daemon's, or --check-config's that knows the credential store); a note
  // says where it came from when that is not the path itself.
  std::optional<std::string> Secret(const std::string& path, std::string* why);

  // A problem at `node` (null: no place in the file, e.g. an environment
  // variable) under the dotted key path `key`.
  void Error(const toml::node* node, std::string key, std::string message);

  // Every key of `table` must be in `allowed`.
  void OnlyKeys(const toml::table& table, const std::string& prefix,
                std::span<const std::string_view> allowed);
  void OnlyKeys(const toml::table& table, const std::string& prefix,
                std::initializer_list<std::string_view> allowed) {
    OnlyKeys(table, prefix,
             std::span<const std::string_view>(allowed.begin(), allowed.end()));
  }

  static std::string Join(const std::string& prefix, std::string_view key);

  std::optional<std::string> String(const toml::table& t, const std::string& p,
                                    std::string_view k);
  std::optional<bool> Bool(const toml::table& t, const std::string& p,
                           std::string_view k);
  std::optional<int64_t> Int(const toml::table& t, const std::string& p,
                             std::string_view k, int64_t min, int64_t max);
  std::optional<Duration> DurationValue(const toml::table& t,
                                        const std::string& p,
                                        std::string_view k, Duration min,
                                        Duration max);
  // A rate string ("5/s", "300/min"), at most 100,000/s.
  std::optional<double> RateValue(const toml::table& t, const std::string& p,
                                  std::string_view k);
  // A number (integer or float) in [0, 1]; `hint` ends the error message.
  std::optional<double> ShareValue(const toml::table& t, const std::string& p,
                                   std::string_view k, std::string_view hint);

  const std::string& file() const { return file_; }

 private:
  template <typename T>
  std::optional<T> Get(const toml::table& table, const std::string& prefix,
                       std::string_view key, const char* type_name);

  std::string file_;
  std::vector<ConfigError>* errors_;
  SecretReader read_secret_;
  std::vector<std::string>* notes_;
};

// root[key] when it is a table; an error when it is anything else.
const toml::table* SubTable(Checker& c, const toml::table& root,
                            std::string_view key);

// An integer environment variable in [min, max]; a bad value is an error
// keyed "env NAME".
std::optional<int64_t> EnvInt(Checker& c, const EnvLookup& env,
                              const char* name, int64_t min, int64_t max);

}  // namespace polar
