#include "daemon/net/resolver.h"

#include <netdb.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

namespace polar {

// What the lookup thread and the loop share. The thread holds a reference,
// so a resolver destroyed mid-lookup leaves it to the thread to free.
struct Resolver::Shared {
  int event_fd = -1;
  std::mutex mutex;
  bool done = false;
  std::vector<ResolvedAddress> addresses;
  std::string error;
  ~Shared() {
    if (event_fd >= 0) close(event_fd);
  }
};

namespace {

void Lookup(const std::string& host, uint16_t port,
            std::vector<ResolvedAddress>* out, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    *error = "resolve " + host + ": " + gai_strerror(rc);
    return;
  }
  for (addrinfo* a = list; a; a = a->ai_next) {
    if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
    ResolvedAddress r;
    std::memcpy(&r.address, a->ai_addr, a->ai_addrlen);
    r.length = a->ai_addrlen;
    out->push_back(r);
  }
  freeaddrinfo(list);
  if (out->empty()) *error = "resolve " + host + ": no address";
}

}  // namespace

Resolver::Resolver(EventLoop& loop, std::string host, uint16_t port,
                   Duration ttl)
    : loop_(loop), host_(std::move(host)), port_(port), ttl_(ttl) {}

Resolver::~Resolver() {
  if (shared_ && shared_->event_fd >= 0) loop_.Unwatch(shared_->event_fd);
}

void Resolver::Resolve(Callback callback) {
  const MonoTime now = std::chrono::steady_clock::now();
  if (!cached_.empty() && now < cached_until_) {
    loop_.Post([alive = std::weak_ptr<bool>(alive_), addresses = cached_,
                callback = std::move(callback)]() mutable {
      if (!alive.expired()) callback(std::move(addresses), "");
    });
    return;
  }
  waiting_.push_back(std::move(callback));
  if (in_progress_) return;
  in_progress_ = true;
  auto shared = std::make_shared<Shared>();
  shared->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  std::string start_error;
  if (shared->event_fd < 0) {
    start_error = std::string("resolve: eventfd: ") + std::strerror(errno);
  } else {
    try {
      std::thread([shared, host = host_, port = port_] {
        std::vector<ResolvedAddress> addresses;
        std::string error;
        Lookup(host, port, &addresses, &error);
        std::lock_guard<std::mutex> lock(shared->mutex);
        shared->addresses = std::move(addresses);
        shared->error = std::move(error);
        shared->done = true;
        uint64_t one = 1;
        [[maybe_unused]] auto n = write(shared->event_fd, &one, sizeof one);
      }).detach();
    } catch (const std::system_error& e) {
      start_error = std::string("resolve: cannot start a thread: ") + e.what();
    }
  }
  if (!start_error.empty()) {
    // Answered on the loop, as a lookup would be.
    shared->done = true;
    shared->error = std::move(start_error);
    loop_.Post([this, alive = std::weak_ptr<bool>(alive_)] {
      if (!alive.expired()) OnAnswer();
    });
    shared_ = std::move(shared);
    return;
  }
  if (shared_ && shared_->event_fd >= 0) loop_.Unwatch(shared_->event_fd);
  shared_ = std::move(shared);
  loop_.Watch(shared_->event_fd, EPOLLIN, [this](uint32_t) { OnAnswer(); });
}

void Resolver::OnAnswer() {
  std::vector<ResolvedAddress> addresses;
  std::string error;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    if (!shared_->done) return;
    addresses = std::move(shared_->addresses);
    error = std::move(shared_->error);
  }
  if (shared_->event_fd >= 0) loop_.Unwatch(shared_->event_fd);
  shared_.reset();
  in_progress_ = false;
  if (error.empty()) {
    cached_ = addresses;
    cached_until_ = std::chrono::steady_clock::now() + ttl_;
  }
  std::vector<Callback> waiting;
  waiting.swap(waiting_);
  for (auto& callback : waiting) callback(addresses, error);
}

}  // namespace polar
