// [webhooks]: the receiver of Polar's webhooks, its secret and the endpoint
// it may register (daemon/webhooks/webhooks_config.h,
// daemon/config/sections.h).
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <cctype>

#include "daemon/config/sections.h"
#include "daemon/webhooks/webhook_signature.h"

namespace polar {
namespace {

// register_url's host: Polar refuses localhost and every non-global IP
// literal (docs/polar-api.md §4.1); polar-sim accepts loopback hosts with
// --allow-loopback-webhooks.
enum class HostKind { kPublic, kLoopback, kPrivate };
HostKind ClassifyHost(std::string host) {
  for (char& ch : host)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (host == "localhost" || host.ends_with(".localhost"))
    return HostKind::kLoopback;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    const uint32_t a = ntohl(v4.s_addr);
    if ((a >> 24) == 127) return HostKind::kLoopback;
    if ((a >> 24) == 10 || (a >> 24) == 0 || (a >> 20) == 0xac1 ||
        (a >> 16) == 0xc0a8 || (a >> 16) == 0xa9fe || (a >> 22) == 0x191)
      return HostKind::kPrivate;  // 10/8, 0/8, 172.16/12, 192.168/16,
                                  // 169.254/16, 100.64/10
    return HostKind::kPublic;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return HostKind::kLoopback;
    if (IN6_IS_ADDR_UNSPECIFIED(&v6) || IN6_IS_ADDR_LINKLOCAL(&v6) ||
        (v6.s6_addr[0] & 0xfe) == 0xfc || IN6_IS_ADDR_V4MAPPED(&v6))
      return HostKind::kPrivate;
  }
  return HostKind::kPublic;
}

// "https://host[:port]/path" -> scheme and host (brackets stripped), or false.
bool SplitUrl(std::string_view url, std::string* scheme, std::string* host) {
  auto sep = url.find("://");
  if (sep == std::string_view::npos) return false;
  *scheme = std::string(url.substr(0, sep));
  std::string_view rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string_view::npos)
    rest.remove_prefix(at + 1);
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return false;
    *host = std::string(rest.substr(1, close - 1));
  } else {
    *host = std::string(rest.substr(0, rest.find(':')));
  }
  return !host->empty();
}

// register_url's checks, for the file's key (`node` set) or the environment
// variable that overrides it (`key` "env POLAR_LOADD_WEBHOOKS_REGISTER_URL").
void CheckRegisterUrl(Checker& c, const toml::node* node,
                      const std::string& key, const std::string& url,
                      bool allow_loopback) {
  std::string scheme, host;
  if (!SplitUrl(url, &scheme, &host) ||
      (scheme != "https" && scheme != "http")) {
    c.Error(node, key, fmt::format("\"{}\" is not an https:// URL", url));
    return;
  }
  HostKind kind = ClassifyHost(host);
  bool loopback_ok = kind == HostKind::kLoopback && allow_loopback;
  if (scheme == "http" && !loopback_ok) {
    c.Error(node, key,
            "Polar delivers only to https:// URLs; put TLS termination "
            "(nginx, caddy) in front of webhooks.listen and register its "
            "public https URL (http:// is allowed only for a loopback "
            "polar-sim, with register_allow_loopback = true)");
  } else if (kind == HostKind::kPrivate ||
             (kind == HostKind::kLoopback && !loopback_ok)) {
    c.Error(node, key,
            fmt::format("Polar refuses endpoints on {} hosts; register "
                        "the public URL it can reach{}",
                        kind == HostKind::kLoopback ? "loopback" : "non-global",
                        kind == HostKind::kLoopback
                            ? " (for polar-sim started with "
                              "--allow-loopback-webhooks, set "
                              "register_allow_loopback = true)"
                            : ""));
  }
}

}  // namespace

void ParseWebhooks(Checker& c, const toml::table& root, const EnvLookup& env,
                   WebhooksConfig& w, std::vector<std::string>& secrets,
                   std::vector<std::string>& notes) {
  const toml::table* t = SubTable(c, root, "webhooks");
  if (!t) return;
  const std::string p = "webhooks";
  w.enabled = true;
  c.OnlyKeys(*t, p, kWebhooksKeys);
  if (auto v = c.String(*t, p, "listen")) {
    std::string why;
    if (auto addr = ParseListenAddress(*v, &why)) {
      w.listen = *addr;
    } else {
      c.Error(t->get("listen"), "webhooks.listen", why);
    }
  }
  if (auto v = c.String(*t, p, "secret_format")) {
    if (*v == "polar") {
      w.secret_format = WebhookSecretFormat::kPolar;
    } else if (*v == "standard") {
      w.secret_format = WebhookSecretFormat::kStandard;
    } else {
      c.Error(t->get("secret_format"), "webhooks.secret_format",
              fmt::format("\"{}\" is not \"polar\" (the whsec_... string as "
                          "Polar shows it) or \"standard\" (a Standard "
                          "Webhooks base64 key)",
                          *v));
    }
  }
  // Standard Webhooks' default is 5 min; more than an hour would let a
  // captured message be replayed long after the replay memory forgot it.
  if (auto v = c.DurationValue(*t, p, "tolerance", std::chrono::seconds(1),
                               std::chrono::hours(1)))
    w.tolerance = *v;
  if (auto v = c.Int(*t, p, "max_body_bytes", 1024, 64 << 20))
    w.max_body_bytes = static_cast<std::size_t>(*v);
  // The HTTP layer's per-connection memory is sized for 64 KiB of headers
  // (daemon/webhooks/webhook_service.cc), so every value here is checked by the
  // receiver.
  if (auto v = c.Int(*t, p, "max_header_bytes", 1024, 64 * 1024))
    w.max_header_bytes = static_cast<std::size_t>(*v);
  if (auto v = c.Int(*t, p, "remember_ids", 1'000, 10'000'000))
    w.remember_ids = static_cast<std::size_t>(*v);
  // Polar gives up retrying after ~34 min; a deadline past a day only delays
  // the loss signal.
  if (auto v = c.DurationValue(*t, p, "deadline", std::chrono::seconds(1),
                               std::chrono::hours(24)))
    w.deadline = *v;
  if (auto v = c.Int(*t, p, "max_expectations", 1, 10'000'000))
    w.max_expectations = static_cast<std::size_t>(*v);
  if (auto v = c.DurationValue(*t, p, "unmatched_after", Duration::zero(),
                               std::chrono::minutes(10)))
    w.unmatched_after = *v;
  if (auto v = c.Bool(*t, p, "register_allow_loopback"))
    w.register_allow_loopback = *v;

  const toml::node* secret_node = t->get("secret");
  const toml::node* file_node = t->get("secret_file");
  if (secret_node && file_node) {
    c.Error(secret_node, "webhooks.secret",
            "set secret or secret_file, not both");
  } else if (auto v = c.String(*t, p, "secret")) {
    w.secret = *v;
  } else if (auto file = c.String(*t, p, "secret_file")) {
    std::string why;
    if (auto secret = c.Secret(*file, &why)) {
      w.secret = *secret;
    } else {
      c.Error(file_node, "webhooks.secret_file", why);
    }
  }
  if (!w.secret.empty()) {
    secrets.push_back(w.secret);
    // A log line could carry the base64 part alone.
    if (w.secret.starts_with("whsec_")) secrets.push_back(w.secret.substr(6));
    std::string why;
    if (auto key = WebhookKeyFromSecret(w.secret, w.secret_format, &why)) {
      w.key = std::move(*key);
    } else {
      c.Error(secret_node ? secret_node : file_node,
              secret_node ? "webhooks.secret" : "webhooks.secret_file",
              "the secret " + why);
    }
  }

  const toml::node* url_node = t->get("register_url");
  if (auto v = c.String(*t, p, "register_url")) {
    w.register_url = *v;
    CheckRegisterUrl(c, url_node, "webhooks.register_url", *v,
                     w.register_allow_loopback);
    if (!w.secret.empty()) {
      c.Error(url_node, "webhooks.register_url",
              "with register_url the endpoint's secret comes from Polar's "
              "answer; remove webhooks.secret / secret_file");
    }
  } else if (w.secret.empty() && !secret_node && !file_node) {
    c.Error(t, "webhooks",
            "no secret: set secret_file (or secret) to the endpoint's "
            "whsec_... secret, or register_url to have polar-loadd create the "
            "endpoint");
  }
  if (w.register_allow_loopback && w.register_url.empty()) {
    c.Error(t->get("register_allow_loopback"),
            "webhooks.register_allow_loopback", "needs register_url");
  }
  // Several instances on one box share the file but each needs its own
  // receiver port and the public URL in front of it (polar-loadd@.service).
  // They override what the file says; without a [webhooks] table they do
  // nothing (the table is what turns the receiver on).
  if (auto v = env("POLAR_LOADD_WEBHOOKS_LISTEN")) {
    std::string why;
    if (auto addr = ParseListenAddress(*v, &why)) {
      w.listen = *addr;
      notes.push_back(fmt::format(
          "POLAR_LOADD_WEBHOOKS_LISTEN overrides webhooks.listen: {}", *v));
    } else {
      c.Error(nullptr, "env POLAR_LOADD_WEBHOOKS_LISTEN", why);
    }
  }
  if (auto v = env("POLAR_LOADD_WEBHOOKS_REGISTER_URL")) {
    if (w.register_url.empty()) {
      c.Error(nullptr, "env POLAR_LOADD_WEBHOOKS_REGISTER_URL",
              "the file's [webhooks] table has no register_url to override "
              "(its endpoint was created by hand, with secret_file)");
    } else {
      w.register_url = *v;
      CheckRegisterUrl(c, nullptr, "env POLAR_LOADD_WEBHOOKS_REGISTER_URL", *v,
                       w.register_allow_loopback);
      notes.push_back(fmt::format(
          "POLAR_LOADD_WEBHOOKS_REGISTER_URL overrides webhooks.register_url: "
          "{}",
          *v));
    }
  }
}
}  // namespace polar
