// The billing address a checkout scenario sends, held to Polar's AddressInput
// rules (server/polar/kit/address.py, docs/polar-api.md §2.2) when the config
// is read, so a wrong address is a config error rather than a 422 on every
// update and confirm.
//
// Pure functions; any thread.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "scenarios/checkout.h"

namespace polar {

// Upper-cases the country as Polar does, then checks it: two letters, not one
// of the US trade embargoes Polar refuses (CU, IR, KP, SY, RU), and for the US
// and Canada a state or subdivision that exists ("CA" or "US-CA"). Returns the
// problems as (field, message); empty when Polar would take the address.
std::vector<std::pair<std::string, std::string>> NormalizeBillingAddress(
    BillingAddress& address);

}  // namespace polar
