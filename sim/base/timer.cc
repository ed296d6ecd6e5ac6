#include "sim/base/timer.h"

namespace polar::sim {

TimerThread::TimerThread(const Clock& clock)
    : clock_(clock), thread_([this] { Run(); }) {}

TimerThread::~TimerThread() { Stop(); }

void TimerThread::Schedule(SteadyTime when, std::function<void()> callback) {
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
  settled_cv_.notify_all();
}

std::size_t TimerThread::pending() const {
  std::lock_guard lock(mutex_);
  return heap_.size();
}

bool TimerThread::SettledLocked() const {
  return stop_ || (!running_callback_ &&
                   (heap_.empty() || heap_.top().when > clock_.Now()));
}

void TimerThread::Settle() {
  std::unique_lock lock(mutex_);
  while (!SettledLocked()) {
    // A due entry is picked up by the timer thread, which the clock woke.
    cv_.notify_one();
    settled_cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
}

void TimerThread::Run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (heap_.empty()) {
      settled_cv_.notify_all();
      cv_.wait(lock);
      continue;
    }
    auto when = heap_.top().when;
    if (clock_.Now() < when) {
      settled_cv_.notify_all();
      clock_.WaitUntil(cv_, lock, when);
      continue;
    }
    // priority_queue::top is const; the callback is moved out via a cast that
    // is safe because the entry is popped right after.
    auto callback = std::move(const_cast<Entry&>(heap_.top()).callback);
    heap_.pop();
    running_callback_ = true;
    lock.unlock();
    callback();
    lock.lock();
    running_callback_ = false;
  }
}

}  // namespace polar::sim
