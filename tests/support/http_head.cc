#include "tests/support/http_head.h"

#include "daemon/webhooks/webhook_envelope.h"

namespace polar::testing {

std::string HeaderValue(const std::string& head, const std::string& name) {
  std::string lower = LowerAscii(head);
  std::size_t pos = lower.find("\r\n" + name + ":");
  if (pos == std::string::npos) return {};
  std::size_t begin = pos + 3 + name.size();
  std::size_t end = head.find("\r\n", begin);
  std::string value = head.substr(begin, end - begin);
  value.erase(0, value.find_first_not_of(' '));
  return value;
}

}  // namespace polar::testing
