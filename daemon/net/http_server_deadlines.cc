// HttpServer, deadlines: the stage each connection is in, the pure deadline
// check for it (CheckHttpDeadline), the sweep every 250 ms that applies it
// (408 and close, or just close), and evicting the oldest idle connection
// when a new one arrives at the cap. Accepting and reading requests are in
// http_server.cc, writing answers in http_server_answers.cc; the contract is
// in http_server.h.
//
// Owned by HttpServer (http_server.h); CheckHttpDeadline is pure and may be
// called from any thread, the rest on the loop thread only.
#include <fmt/format.h>
#include <sys/socket.h>

#include <iterator>
#include <utility>
#include <vector>

#include "daemon/net/http_server.h"
#include "daemon/net/http_server_conn.h"

namespace polar {
namespace {

// How often the deadlines are checked: a deadline is met within 250 ms.
constexpr Duration kDeadlineSweep = std::chrono::milliseconds(250);

bool Evictable(HttpStage stage) {
  return stage == HttpStage::kIdle || stage == HttpStage::kHead ||
         stage == HttpStage::kLinger;
}

// True once `bytes` fall short of `rate` bytes/s over the time past `grace`.
bool TooSlow(Duration elapsed, uint64_t bytes, Duration grace, double rate) {
  if (elapsed <= grace) return false;
  return static_cast<double>(bytes) < rate * ToSeconds(elapsed - grace);
}

}  // namespace

HttpDeadline CheckHttpDeadline(HttpStage stage, bool first_request,
                               MonoTime since, uint64_t bytes, MonoTime now,
                               const HttpTimeouts& t) {
  const Duration elapsed = now - since;
  switch (stage) {
    case HttpStage::kIdle:
      if (first_request)
        return elapsed > t.head ? HttpDeadline::kHead : HttpDeadline::kNone;
      return elapsed > t.keepalive ? HttpDeadline::kClose : HttpDeadline::kNone;
    case HttpStage::kHead:
      return elapsed > t.head ? HttpDeadline::kHead : HttpDeadline::kNone;
    case HttpStage::kBody:
      return elapsed > t.body_max ||
                     TooSlow(elapsed, bytes, t.body_grace, t.min_body_rate)
                 ? HttpDeadline::kBody
                 : HttpDeadline::kNone;
    case HttpStage::kWrite:
      return elapsed > t.send_max ||
                     TooSlow(elapsed, bytes, t.send_grace, t.min_send_rate)
                 ? HttpDeadline::kSend
                 : HttpDeadline::kNone;
    case HttpStage::kLinger:
      return elapsed > t.linger ? HttpDeadline::kClose : HttpDeadline::kNone;
  }
  return HttpDeadline::kNone;
}

bool HttpServer::EvictOldest(const std::string& for_whom) {
  if (idle_.empty()) return false;
  Conn* victim = idle_.front();
  metrics_->dropped(HttpConnectionDrop::kEvicted).Increment();
  LogLimited("evicted",
             fmt::format("{} listener: {} connections open (the cap): closed "
                         "the oldest idle one (from {}) for a new one from {}",
                         options_.name, options_.max_connections,
                         victim->remote, for_whom));
  Close(victim);
  return true;
}

void HttpServer::SetStage(Conn* c, HttpStage stage, MonoTime now) {
  c->stage = stage;
  c->since = now;
  c->stage_bytes = 0;
  const bool evictable = Evictable(stage);
  if (evictable && !c->in_idle) {
    idle_.push_back(c);
    c->idle_it = std::prev(idle_.end());
    c->in_idle = true;
  } else if (!evictable && c->in_idle) {
    idle_.erase(c->idle_it);
    c->in_idle = false;
  }
}

void HttpServer::Drop(Conn* c, HttpConnectionDrop why) {
  metrics_->dropped(why).Increment();
  const std::string_view reason = HttpConnectionDropName(why);
  LogLimited(reason,
             fmt::format("{} listener: closed a connection from {}: {}",
                         options_.name, c->remote,
                         why == HttpConnectionDrop::kHeadTimeout
                             ? "its request head took longer than the head "
                               "deadline"
                         : why == HttpConnectionDrop::kBodyTimeout
                             ? "its body came slower than the minimum rate "
                               "or past the body deadline"
                             : "it read the response slower than the minimum "
                               "rate"));
  if (why != HttpConnectionDrop::kSendTimeout) {
    // Best effort, one non-blocking write: the connection closes either way.
    static constexpr std::string_view k408 =
        "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: "
        "close\r\n\r\n";
    [[maybe_unused]] ssize_t n =
        send(c->fd, k408.data(), k408.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  Close(c);
}

void HttpServer::ArmSweep() {
  if (sweep_timer_.pending() || conns_.empty()) return;
  sweep_timer_ = loop_.Every(kDeadlineSweep, [this] { Sweep(); });
}

void HttpServer::Sweep() {
  const MonoTime now = loop_.Now();
  std::vector<std::pair<Conn*, HttpDeadline>> due;
  for (auto& [fd, conn] : conns_) {
    Conn* c = conn.get();
    const HttpDeadline d =
        CheckHttpDeadline(c->stage, c->first_request, c->since, c->stage_bytes,
                          now, options_.timeouts);
    if (d != HttpDeadline::kNone) due.emplace_back(c, d);
  }
  for (auto [c, d] : due) {
    switch (d) {
      case HttpDeadline::kNone:
        break;
      case HttpDeadline::kClose:
        Close(c);
        break;
      case HttpDeadline::kHead:
        Drop(c, HttpConnectionDrop::kHeadTimeout);
        break;
      case HttpDeadline::kBody:
        Drop(c, HttpConnectionDrop::kBodyTimeout);
        break;
      case HttpDeadline::kSend:
        Drop(c, HttpConnectionDrop::kSendTimeout);
        break;
    }
  }
  // Idle server, idle loop: no wake-ups until the next connection.
  if (conns_.empty()) sweep_timer_.Cancel();
}

}  // namespace polar
