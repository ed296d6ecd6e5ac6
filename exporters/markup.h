// Escaping text for HTML and XML: the run report, the status page's
// server-rendered tables and the JUnit file all put configuration names,
// target answers and error descriptions into markup.
//
// Pure: any thread.
#pragma once

#include <string>
#include <string_view>

namespace polar {

// &, <, >, " and ' as entities (&#39; for the apostrophe, which HTML 4 lacks
// a name for): safe in element text and in quoted attributes of both HTML and
// XML.
std::string EscapeMarkup(std::string_view text);

}  // namespace polar
