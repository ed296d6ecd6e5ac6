#include "sim/http/message.h"

namespace polar::sim {

bool SseStream::Push(std::string frame) {
  std::lock_guard lock(mutex_);
  if (closed_ || gone_) return false;
  // A client that stopped reading loses new frames rather than growing memory.
  if (frames_.size() >= max_queued_) return true;
  frames_.push_back(std::move(frame));
  if (waker_) {
    auto wake = std::move(waker_);
    waker_ = nullptr;
    wake();
  }
  return true;
}

void SseStream::Close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  if (waker_) {
    auto wake = std::move(waker_);
    waker_ = nullptr;
    wake();
  }
}

std::vector<std::string> SseStream::queued() const {
  std::lock_guard lock(mutex_);
  return {frames_.begin(), frames_.end()};
}

bool SseStream::alive() const {
  std::lock_guard lock(mutex_);
  return !closed_ && !gone_;
}

const std::string* SimRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? nullptr : &it->second;
}

const std::string* SimRequest::Query(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? nullptr : &it->second;
}

std::vector<std::string> SimRequest::QueryAll(const std::string& name) const {
  std::vector<std::string> out;
  auto [begin, end] = query.equal_range(name);
  for (auto it = begin; it != end; ++it) out.push_back(it->second);
  return out;
}

void OnFinal(SimResponse& response, std::function<void(SimResponse&)> change) {
  if (!response.finish) {
    change(response);
    return;
  }
  response.finish = [inner = std::move(response.finish),
                     change = std::move(change)] {
    SimResponse out = inner();
    change(out);
    return out;
  };
}

}  // namespace polar::sim
