// Fuzz target: the webhook receiver, which judges deliveries from anyone who
// can reach its port. Every check runs on attacker bytes: the headers
// (webhook-id, webhook-timestamp, webhook-signature), the signature verifier,
// and, once a delivery is signed, Polar's envelope parser, the replay memory
// and the correlator. Also the helpers on their own: the secret-to-key
// conversion (both forms), base64 and the timestamp parser.
//
// Input: byte 0 holds flags (bit 0: sign the delivery with the receiver's key
// and stamp it with the clock's time, so the fuzzer reaches everything behind
// the signature check; bit 1: expect a webhook for the delivery's checkout id
// before it arrives; bit 2: mark the body as over the size limit); the rest is
// "id\ntimestamp\nsignature\nbody" (missing fields are empty).
#include <prometheus/registry.h>

#include <string>
#include <string_view>

#include "daemon/webhooks/webhook_correlator.h"
#include "daemon/webhooks/webhook_envelope.h"
#include "daemon/webhooks/webhook_metrics.h"
#include "daemon/webhooks/webhook_receiver.h"
#include "daemon/webhooks/webhook_signature.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

struct World {
  prometheus::Registry registry;
  polar::WebhookMetrics metrics{registry};
  polar::FakeClock clock;
  polar::WebhookCorrelator correlator{metrics, {}};
  polar::WebhookReceiver receiver{clock, metrics, correlator, {}};
  std::string key;
  World() {
    std::string error;
    key = *polar::WebhookKeyFromSecret(
        "whsec_fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuz",
        polar::WebhookSecretFormat::kPolar, &error);
    receiver.SetKey(key);
  }
};

std::string_view NextField(std::string_view& rest) {
  const auto nl = rest.find('\n');
  std::string_view field = rest.substr(0, nl);
  rest =
      nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  return field;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string_view id = NextField(rest);
  std::string_view timestamp = NextField(rest);
  std::string_view signature = NextField(rest);
  const std::string_view body = rest;

  // The helpers alone.
  std::string error;
  (void)polar::WebhookKeyFromSecret(body, polar::WebhookSecretFormat::kPolar,
                                    &error);
  (void)polar::WebhookKeyFromSecret(body, polar::WebhookSecretFormat::kStandard,
                                    &error);
  if (auto decoded = polar::Base64Decode(signature)) {
    (void)polar::Base64Encode(*decoded);
  }
  (void)polar::ParseWebhookTimestamp(timestamp);
  const auto envelope = polar::ParseWebhookEnvelope(body);

  std::string signed_timestamp, signed_signature;
  if (flags & 1) {
    // Past the signature: what a holder of the key (Polar, or polar-sim)
    // could send, broken envelopes included.
    signed_timestamp =
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                           world.clock.WallNow().time_since_epoch())
                           .count());
    timestamp = signed_timestamp;
    signed_signature = polar::SignWebhook(world.key, id, timestamp, body);
    signature = signed_signature;
  }
  if ((flags & 2) && envelope) {
    world.correlator.Expect("checkout.created", std::string(id),
                            world.clock.Now());
  }
  polar::WebhookDelivery delivery;
  delivery.id = id;
  delivery.timestamp = timestamp;
  delivery.signature = signature;
  delivery.body = body;
  delivery.body_too_large = (flags & 4) != 0;
  delivery.header_bytes = id.size() + timestamp.size() + signature.size();
  (void)world.receiver.Handle(delivery);
  // Time passes between deliveries: held deliveries and expectations expire.
  world.clock.Advance(std::chrono::seconds(1 + (flags >> 3)));
  world.correlator.Expire(world.clock.Now());
  return 0;
}
