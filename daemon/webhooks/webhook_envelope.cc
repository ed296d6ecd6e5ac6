#include "daemon/webhooks/webhook_envelope.h"

#include <nlohmann/json.hpp>

namespace polar {
namespace {

// A non-empty string member of `object`, or nullptr.
const std::string* StringField(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return nullptr;
  const auto* s = it->get_ptr<const std::string*>();
  return s->empty() ? nullptr : s;
}

}  // namespace

std::string LowerAscii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::optional<WebhookEnvelope> ParseWebhookEnvelope(std::string_view body) {
  // No exceptions: a parse error gives a discarded value. nlohmann/json 3.11
  // parses and destroys iteratively, so deep nesting costs memory bounded by
  // the caller's body size limit, not stack.
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  const std::string* type_name = StringField(doc, "type");
  auto data = doc.find("data");
  if (!type_name || data == doc.end() || !data->is_object())
    return std::nullopt;
  WebhookEnvelope out;
  out.type = ParseWebhookType(*type_name);
  const char* key_field = nullptr;
  switch (out.type) {
    case WebhookType::kCheckoutCreated:
      key_field = "id";
      break;
    case WebhookType::kCheckoutUpdated: {
      const std::string* status = StringField(*data, "status");
      if (!status || !StringField(*data, "id")) return std::nullopt;
      // Only the update that completes the flow is timed.
      if (*status != "succeeded") return out;
      key_field = "id";
      break;
    }
    case WebhookType::kCustomerCreated:
      key_field = "email";
      break;
    case WebhookType::kOrderCreated:
    case WebhookType::kOrderUpdated:
    case WebhookType::kOrderPaid:
      key_field = "checkout_id";
      break;
    case WebhookType::kOther:
      return out;
  }
  const std::string* key = StringField(*data, key_field);
  if (!key) return std::nullopt;
  out.key = out.type == WebhookType::kCustomerCreated ? LowerAscii(*key) : *key;
  return out;
}

}  // namespace polar
