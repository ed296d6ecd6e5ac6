// RedactConfigText (config.h): the config file as the run report shows it.
#include <toml++/toml.h>

#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "exporters/log.h"

namespace polar {
namespace {

// The string values of keys named `token` or `secret`, at any depth.
void CollectSecrets(const toml::node& node, std::vector<std::string>& out) {
  if (const toml::table* t = node.as_table()) {
    for (const auto& [key, value] : *t) {
      if (key.str() == "token" || key.str() == "secret") {
        if (auto s = value.value_exact<std::string>(); s && !s->empty())
          out.push_back(*s);
      }
      CollectSecrets(value, out);
    }
  } else if (const toml::array* a = node.as_array()) {
    for (const toml::node& item : *a) CollectSecrets(item, out);
  }
}

}  // namespace

std::string RedactConfigText(std::string_view text) {
  std::vector<std::string> secrets;
  try {
    const toml::table root = toml::parse(text);
    CollectSecrets(root, secrets);
  } catch (const toml::parse_error&) {
    // A file that does not parse never ran; show nothing of it rather than
    // guess where its secrets are.
    return "(the file does not parse; not shown)\n";
  }
  std::string out(text);
  for (const std::string& secret : secrets) {
    for (std::size_t at = 0; (at = out.find(secret, at)) != std::string::npos;
         at += kRedacted.size()) {
      out.replace(at, secret.size(), kRedacted);
    }
  }
  return out;
}

}  // namespace polar
