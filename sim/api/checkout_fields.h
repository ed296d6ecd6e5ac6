// Checkout fields shared by the authenticated and the client routes
// (checkouts.cc, checkout_client.cc): the schema checks of CheckoutCreate and
// CheckoutUpdatePublic (all errors collected, as pydantic does), the service's
// product checks, applying an update, and Polar's checkout errors.
//
// Pure functions over values the caller owns (a checkout under its store's
// lock); any thread.
#pragma once

#include <nlohmann/json.hpp>

#include "sim/api/model.h"
#include "sim/api/validation.h"
#include "sim/http/message.h"

namespace polar::sim {

// 410 ExpiredCheckoutError, 409 CheckoutLocked, 403 NotOpenCheckout.
SimResponse Expired();
SimResponse Locked();
SimResponse NotOpen(const Checkout& c);

// {"status": "..."}: the payload of a checkout.updated stream frame.
json StatusPayload(CheckoutStatus s);

// CheckoutCreateBase's optional fields (the products/product_id/price part is
// checked by Create itself).
void ValidateCreateFields(const json& body, ValidationErrors& errors);
// CheckoutUpdatePublic (client PATCH and confirm bodies).
void ValidatePublicUpdate(const json& body, ValidationErrors& errors);
// Product choices the checkout does not offer, seats, discount codes: the
// service's 422 (PolarRequestValidationError).
void CheckProductChoice(const Checkout& c, const json& body,
                        ValidationErrors& errors);
// Applies the CheckoutUpdatePublic fields present in `body` (validation
// already ran); unknown keys are ignored, as Polar's schemas allow extras.
void ApplyPublicUpdate(Checkout& c, const json& body, SysMicros now);

}  // namespace polar::sim
