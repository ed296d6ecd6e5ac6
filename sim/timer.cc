#include "sim/timer.h"

namespace polar::sim {

TimerThread::TimerThread() : thread_([this] { Run(); }) {}

TimerThread::~TimerThread() { Stop(); }

void TimerThread::Schedule(SteadyClock::time_point when,
                           std::function<void()> callback) {
  std::lock_guard lock(mutex_);
  if (stop_) return;
  bool earliest = heap_.empty() || when < heap_.top().when;
  heap_.push(Entry{when, seq_++, std::move(callback)});
  if (earliest) cv_.notify_one();
}

void TimerThread::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
    thread_.join();
  std::lock_guard lock(mutex_);
  while (!heap_.empty()) heap_.pop();
}

std::size_t TimerThread::pending() const {
  std::lock_guard lock(mutex_);
  return heap_.size();
}

void TimerThread::Run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (heap_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto when = heap_.top().when;
    if (SteadyClock::now() < when) {
      cv_.wait_until(lock, when);
      continue;
    }
    // priority_queue::top is const; the callback is moved out via a cast that
    // is safe because the entry is popped right after.
    auto callback = std::move(const_cast<Entry&>(heap_.top()).callback);
    heap_.pop();
    lock.unlock();
    callback();
    lock.lock();
  }
}

}  // namespace polar::sim
