// The status page's assets (HTML, CSS, JavaScript), compiled into the binary
// from daemon/status/status_page/ by CMake (status_assets.cc.in), so the page
// needs nothing from outside the daemon and works on a box without internet.
//
// Pure data; any thread.
#pragma once

#include <string_view>

namespace polar {

std::string_view StatusPageHtml();
std::string_view StatusPageCss();
std::string_view StatusPageJs();

}  // namespace polar
