// The status page with its numbers already in it: the server fills the
// page's tables (scenarios and steps, webhooks, completions, recent errors)
// and header from the same JSON as GET /api/status, so the page is readable
// without JavaScript (it then reloads itself every 10 s, a <noscript> meta
// refresh). With JavaScript, status.js replaces these rows on its first poll.
//
// Pure formatting: any thread. Every value is HTML-escaped: error snippets
// come from the target.
#pragma once

#include <string>
#include <string_view>

namespace polar {

// `page` (status_page/index.html) with each <!--server:NAME--> marker
// replaced by the rendering of `status_json` (StatusBoard::RenderJson()).
// `now_utc` is shown as the time the numbers are from.
std::string RenderStatusPage(std::string_view page,
                             std::string_view status_json,
                             std::string_view now_utc);

}  // namespace polar
