// Reading the head of an HTTP/1.1 request in the test servers
// (PolledHttpServer and its owners, ScriptedHttpServer): header lookup,
// case-insensitive in the header's name.
//
// Pure functions; any thread. Test support only.
#pragma once

#include <string>

namespace polar::testing {

// The value of header `name` (lower case) in `head`, a request head whose lines
// end in CRLF, without leading spaces; "" when it is absent.
std::string HeaderValue(const std::string& head, const std::string& name);

}  // namespace polar::testing
