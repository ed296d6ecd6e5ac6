// Resolver: host-name lookups (getaddrinfo) off the event loop.
//
// getaddrinfo blocks for as long as DNS takes (seconds when a server is
// slow), and nothing on the loop may block, so lookups run on one helper
// thread of this object and the answer comes back to the loop thread through
// an eventfd the loop watches. Used by the HTTPS client when the target is a
// host name (Polar's API is), once per new connection at most: answers are
// cached for `ttl`.
//
// Owned by the HTTPS client. Resolve() and the callbacks run on the loop
// thread; the helper thread only calls getaddrinfo. Destroying the resolver
// drops pending callbacks; a lookup still running finishes on its thread and
// is thrown away.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/net/event_loop.h"

namespace polar {

struct ResolvedAddress {
  sockaddr_storage address{};
  socklen_t length = 0;
};

class Resolver {
 public:
  // Addresses in getaddrinfo's order, or empty with *error set.
  using Callback = std::function<void(std::vector<ResolvedAddress> addresses,
                                      std::string error)>;

  Resolver(EventLoop& loop, std::string host, uint16_t port,
           Duration ttl = std::chrono::seconds(60));
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Calls back with the cached answer (never before Resolve() returns) or
  // after a lookup; concurrent calls share one lookup.
  void Resolve(Callback callback);
  // Forgets the cached answer (a connection to it failed).
  void Invalidate() { cached_until_ = MonoTime::min(); }

 private:
  struct Shared;
  void OnAnswer();

  EventLoop& loop_;
  std::string host_;
  uint16_t port_;
  Duration ttl_;
  std::shared_ptr<Shared> shared_;
  std::vector<Callback> waiting_;
  std::vector<ResolvedAddress> cached_;
  MonoTime cached_until_ = MonoTime::min();
  bool in_progress_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace polar
