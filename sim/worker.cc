#include "sim/worker.h"

#include <fmt/format.h>

#include <deque>
#include <queue>

namespace polar::sim {
namespace {

// polar_task_duration_seconds buckets, as Polar declares them
// (server/polar/observability/metrics.py).
constexpr double kBuckets[] = {0.1, 0.25, 0.5,  1.0,  2.5,
                               5.0, 10.0, 30.0, 60.0, 120.0};

}  // namespace

struct Worker::Queue {
  std::string name;
  int concurrency = 1;
  mutable std::mutex mutex;
  std::condition_variable cv;
  std::deque<Job> ready;
  struct Later {
    bool operator()(const Job& a, const Job& b) const {
      return a.eta != b.eta ? a.eta > b.eta : a.seq > b.seq;
    }
  };
  std::priority_queue<Job, std::vector<Job>, Later> delayed;
  uint64_t seq = 0;
  std::vector<std::thread> threads;
};

void JobContext::Work() {
  if (worked_) return;
  worked_ = true;
  worker_->Sleep(worker_->JobTime(queue_, actor_));
}

bool JobContext::stopping() const { return worker_->stopping(); }

Worker::Worker(const WorkerOptions& options)
    : options_(options), rng_(options.seed * 0x9e3779b97f4a7c15ULL + 7) {
  for (const auto& [name, threads] : options_.concurrency) {
    auto q = std::make_unique<Queue>();
    q->name = name;
    q->concurrency = std::max(1, threads);
    queues_.emplace(name, std::move(q));
  }
  for (auto& [name, q] : queues_) {
    for (int i = 0; i < q->concurrency; ++i)
      q->threads.emplace_back([this, raw = q.get()] { Run(raw); });
  }
}

Worker::~Worker() { Stop(); }

void Worker::Stop() {
  if (stop_.exchange(true)) return;
  { std::lock_guard lock(sleep_mutex_); }
  sleep_cv_.notify_all();
  for (auto& [name, q] : queues_) {
    { std::lock_guard lock(q->mutex); }
    q->cv.notify_all();
  }
  for (auto& [name, q] : queues_) {
    for (auto& t : q->threads) t.join();
    std::lock_guard lock(q->mutex);
    q->ready.clear();
    while (!q->delayed.empty()) q->delayed.pop();
  }
}

bool Worker::Enqueue(std::string_view queue, std::string actor, JobFn fn,
                     Duration delay) {
  auto it = queues_.find(queue);
  if (it == queues_.end() || stop_) return false;
  Job job;
  job.actor = std::move(actor);
  job.fn = std::move(fn);
  job.enqueued = SteadyClock::now();
  {
    std::lock_guard lock(it->second->mutex);
    if (it->second->ready.size() + it->second->delayed.size() >=
        options_.max_queued) {
      std::lock_guard stats(stats_mutex_);
      ++dropped_[it->first];
      return false;
    }
  }
  Push(it->second.get(), std::move(job), delay);
  return true;
}

void Worker::Push(Queue* q, Job job, Duration delay) {
  std::lock_guard lock(q->mutex);
  job.seq = q->seq++;
  job.eta = SteadyClock::now() + delay;
  if (delay > Duration::zero()) {
    q->delayed.push(std::move(job));
  } else {
    q->ready.push_back(std::move(job));
  }
  q->cv.notify_one();
}

void Worker::SetSlowdown(const std::string& queue, double factor,
                         Duration add) {
  std::lock_guard lock(config_mutex_);
  if (factor == 1.0 && add == Duration::zero()) {
    slowdown_.erase(queue);
  } else {
    slowdown_[queue] = {factor, add};
  }
}

Duration Worker::JobTime(std::string_view queue, const std::string& actor) {
  std::lock_guard lock(config_mutex_);
  Duration base{0};
  if (auto it = options_.job_time.find(actor); it != options_.job_time.end())
    base = it->second.Sample(rng_);
  auto slow = slowdown_.find(std::string(queue));
  if (slow == slowdown_.end()) slow = slowdown_.find("*");
  if (slow != slowdown_.end()) {
    base = std::chrono::duration_cast<Duration>(base * slow->second.first) +
           slow->second.second;
  }
  return base;
}

void Worker::Sleep(Duration d) {
  if (d <= Duration::zero()) return;
  std::unique_lock lock(sleep_mutex_);
  sleep_cv_.wait_for(lock, d, [this] { return stop_.load(); });
}

void Worker::Run(Queue* q) {
  std::unique_lock lock(q->mutex);
  while (!stop_) {
    auto now = SteadyClock::now();
    while (!q->delayed.empty() && q->delayed.top().eta <= now) {
      q->ready.push_back(std::move(const_cast<Job&>(q->delayed.top())));
      q->delayed.pop();
    }
    if (q->ready.empty()) {
      if (q->delayed.empty()) {
        q->cv.wait(lock);
      } else {
        // A copy: wait_until keeps a reference, and pushes while we wait can
        // move the heap's storage.
        const SteadyClock::time_point next = q->delayed.top().eta;
        q->cv.wait_until(lock, next);
      }
      continue;
    }
    Job job = std::move(q->ready.front());
    q->ready.pop_front();
    lock.unlock();

    auto start = SteadyClock::now();
    JobContext ctx(this, job.actor, q->name, job.attempt);
    JobResult result = job.fn(ctx);
    if (!ctx.worked_) ctx.Work();
    double seconds = Seconds(SteadyClock::now() - start);
    bool retry = result.kind == JobResult::Kind::kRetry && !stop_;
    Record(q->name, job.actor, result.kind, retry, seconds);
    if (retry) {
      ++job.attempt;
      Push(q, std::move(job), result.delay);
    }
    lock.lock();
  }
}

void Worker::Record(std::string_view queue, const std::string& actor,
                    JobResult::Kind kind, bool retried, double seconds) {
  std::lock_guard lock(stats_mutex_);
  Stats& s = stats_[{std::string(queue), actor}];
  if (s.buckets.empty()) s.buckets.assign(std::size(kBuckets), 0);
  switch (kind) {
    case JobResult::Kind::kDone:
      ++s.success;
      break;
    case JobResult::Kind::kRetry:
    case JobResult::Kind::kFailed:
      // Dramatiq reports a job that raised (Retry included) as a failure.
      ++s.failure;
      break;
    case JobResult::Kind::kSkipped:
      ++s.skipped;
      break;
  }
  if (retried) ++s.retries;
  for (std::size_t i = 0; i < std::size(kBuckets); ++i)
    if (seconds <= kBuckets[i]) ++s.buckets[i];
  s.sum += seconds;
  ++s.count;
}

std::size_t Worker::ready(std::string_view queue) const {
  auto it = queues_.find(queue);
  if (it == queues_.end()) return 0;
  std::lock_guard lock(it->second->mutex);
  return it->second->ready.size();
}

void Worker::AppendMetrics(std::string* out) const {
  auto now = SteadyClock::now();
  std::string size, delayed, age;
  for (const auto& [name, q] : queues_) {
    std::lock_guard lock(q->mutex);
    // Due delayed jobs count as ready: they would be in Polar's main list.
    std::size_t ready = q->ready.size();
    SteadyClock::time_point oldest = now;
    for (const Job& j : q->ready) oldest = std::min(oldest, j.enqueued);
    size += fmt::format("polar_queue_size{{queue=\"{}\"}} {}\n", name, ready);
    delayed += fmt::format("polar_sim_queue_delayed{{queue=\"{}\"}} {}\n", name,
                           q->delayed.size());
    age += fmt::format(
        "polar_queue_oldest_message_age_seconds{{queue=\"{}\"}} {:.6f}\n", name,
        ready ? Seconds(now - oldest) : 0.0);
  }
  *out += "# HELP polar_queue_size Number of messages ready in the queue.\n";
  *out += "# TYPE polar_queue_size gauge\n" + size;
  *out +=
      "# HELP polar_queue_oldest_message_age_seconds Age of the oldest ready "
      "message in the queue, from its first enqueue.\n";
  *out += "# TYPE polar_queue_oldest_message_age_seconds gauge\n" + age;
  *out +=
      "# HELP polar_sim_queue_delayed Messages waiting for their delay "
      "(retries) in the queue.\n";
  *out += "# TYPE polar_sim_queue_delayed gauge\n" + delayed;

  std::lock_guard lock(stats_mutex_);
  *out +=
      "# HELP polar_task_executions_total Total number of task executions.\n";
  *out += "# TYPE polar_task_executions_total counter\n";
  for (const auto& [key, s] : stats_) {
    const auto& [queue, actor] = key;
    for (auto [status, n] :
         {std::pair<const char*, uint64_t>{"success", s.success},
          {"failure", s.failure},
          {"skipped", s.skipped}}) {
      *out += fmt::format(
          "polar_task_executions_total{{queue=\"{}\",task_name=\"{}\",status="
          "\"{}\"}} {}\n",
          queue, actor, status, n);
    }
  }
  *out += "# HELP polar_task_retries_total Total number of task retries.\n";
  *out += "# TYPE polar_task_retries_total counter\n";
  for (const auto& [key, s] : stats_) {
    *out += fmt::format(
        "polar_task_retries_total{{queue=\"{}\",task_name=\"{}\"}} {}\n",
        key.first, key.second, s.retries);
  }
  *out +=
      "# HELP polar_task_duration_seconds Task execution duration in "
      "seconds.\n";
  *out += "# TYPE polar_task_duration_seconds histogram\n";
  for (const auto& [key, s] : stats_) {
    std::string labels =
        fmt::format("queue=\"{}\",task_name=\"{}\"", key.first, key.second);
    for (std::size_t i = 0; i < std::size(kBuckets); ++i) {
      *out +=
          fmt::format("polar_task_duration_seconds_bucket{{{},le=\"{}\"}} {}\n",
                      labels, kBuckets[i], s.buckets[i]);
    }
    *out +=
        fmt::format("polar_task_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n",
                    labels, s.count);
    *out += fmt::format("polar_task_duration_seconds_sum{{{}}} {:.6f}\n",
                        labels, s.sum);
    *out += fmt::format("polar_task_duration_seconds_count{{{}}} {}\n", labels,
                        s.count);
  }
  *out +=
      "# HELP polar_sim_jobs_dropped_total Jobs refused because their queue "
      "was full.\n";
  *out += "# TYPE polar_sim_jobs_dropped_total counter\n";
  for (const auto& [name, q] : queues_) {
    auto it = dropped_.find(name);
    *out += fmt::format("polar_sim_jobs_dropped_total{{queue=\"{}\"}} {}\n",
                        name, it == dropped_.end() ? 0 : it->second);
  }
}

}  // namespace polar::sim
