#include "sim/worker/worker.h"

#include <deque>
#include <queue>

namespace polar::sim {
namespace {

// polar_task_duration_seconds buckets, as Polar declares them
// (server/polar/observability/metrics.py).
const prometheus::Histogram::BucketBoundaries& Buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0};
  return buckets;
}

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
  int occupied = 0;  // threads inside a job, busy or at its busy time
  std::vector<std::thread> threads;
};

void JobContext::Work() {
  if (worked_) return;
  worked_ = true;
  worker_->Sleep(worker_->JobTime(queue_, actor_));
}

bool JobContext::stopping() const { return worker_->stopping(); }

Worker::Worker(const WorkerOptions& options, const Clock& clock,
               prometheus::Registry& registry)
    : options_(options),
      clock_(clock),
      rng_(options.seed * 0x9e3779b97f4a7c15ULL + 7),
      queue_size_(prometheus::BuildGauge()
                      .Name("polar_queue_size")
                      .Help("Number of messages ready in the queue.")
                      .Register(registry)),
      queue_age_(prometheus::BuildGauge()
                     .Name("polar_queue_oldest_message_age_seconds")
                     .Help("Age of the oldest ready message in the queue, "
                           "from its first enqueue.")
                     .Register(registry)),
      queue_delayed_(prometheus::BuildGauge()
                         .Name("polar_sim_queue_delayed")
                         .Help("Messages waiting for their delay (retries) in "
                               "the queue.")
                         .Register(registry)),
      executions_(prometheus::BuildCounter()
                      .Name("polar_task_executions_total")
                      .Help("Total number of task executions.")
                      .Register(registry)),
      retries_(prometheus::BuildCounter()
                   .Name("polar_task_retries_total")
                   .Help("Total number of task retries.")
                   .Register(registry)),
      durations_(prometheus::BuildHistogram()
                     .Name("polar_task_duration_seconds")
                     .Help("Task execution duration in seconds.")
                     .Register(registry)) {
  auto& dropped = prometheus::BuildCounter()
                      .Name("polar_sim_jobs_dropped_total")
                      .Help("Jobs refused because their queue was full.")
                      .Register(registry);
  for (const auto& [name, threads] : options_.concurrency) {
    auto q = std::make_unique<Queue>();
    q->name = name;
    q->concurrency = std::max(1, threads);
    queues_.emplace(name, std::move(q));
    dropped_.emplace(name, &dropped.Add({{"queue", name}}));
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
  NotifySettle();
}

bool Worker::Enqueue(std::string_view queue, std::string actor, JobFn fn,
                     Duration delay) {
  auto it = queues_.find(queue);
  if (it == queues_.end() || stop_) return false;
  Job job;
  job.actor = std::move(actor);
  job.fn = std::move(fn);
  job.enqueued = clock_.Now();
  {
    std::lock_guard lock(it->second->mutex);
    if (it->second->ready.size() + it->second->delayed.size() >=
        options_.max_queued) {
      dropped_.find(it->first)->second->Increment();
      return false;
    }
  }
  Push(it->second.get(), std::move(job), delay);
  return true;
}

void Worker::Push(Queue* q, Job job, Duration delay) {
  std::lock_guard lock(q->mutex);
  ++activity_;
  job.seq = q->seq++;
  job.eta = clock_.Now() + delay;
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
  const SteadyTime deadline = clock_.Now() + d;
  std::unique_lock lock(sleep_mutex_);
  auto mine = sleepers_.insert(deadline);
  ++activity_;
  --busy_;
  NotifySettle();
  while (!stop_ && clock_.Now() < deadline)
    clock_.WaitUntil(sleep_cv_, lock, deadline);
  ++busy_;
  ++activity_;
  sleepers_.erase(mine);
}

void Worker::Run(Queue* q) {
  std::unique_lock lock(q->mutex);
  while (!stop_) {
    auto now = clock_.Now();
    while (!q->delayed.empty() && q->delayed.top().eta <= now) {
      q->ready.push_back(std::move(const_cast<Job&>(q->delayed.top())));
      q->delayed.pop();
    }
    if (q->ready.empty()) {
      NotifySettle();
      if (q->delayed.empty()) {
        q->cv.wait(lock);
      } else {
        // A copy: the wait keeps a reference, and pushes while we wait can
        // move the heap's storage.
        const SteadyTime next = q->delayed.top().eta;
        clock_.WaitUntil(q->cv, lock, next);
      }
      continue;
    }
    Job job = std::move(q->ready.front());
    q->ready.pop_front();
    ++busy_;  // under the queue's lock: Settle() never sees it in neither
    ++q->occupied;
    ++activity_;
    lock.unlock();

    auto start = clock_.Now();
    JobContext ctx(this, job.actor, q->name, job.attempt);
    JobResult result = job.fn(ctx);
    if (!ctx.worked_) ctx.Work();
    double seconds = Seconds(clock_.Now() - start);
    bool retry = result.kind == JobResult::Kind::kRetry && !stop_;
    Record(q->name, job.actor, result.kind, retry, seconds);
    if (retry) {
      ++job.attempt;
      Push(q, std::move(job), result.delay);
    }
    lock.lock();
    ++activity_;
    --q->occupied;
    --busy_;
  }
}

void Worker::Record(std::string_view queue, const std::string& actor,
                    JobResult::Kind kind, bool retried, double seconds) {
  ActorMetrics* m;
  {
    std::lock_guard lock(metrics_mutex_);
    auto key = std::make_pair(std::string(queue), actor);
    auto it = actors_.find(key);
    if (it == actors_.end()) {
      const prometheus::Labels base = {{"queue", key.first},
                                       {"task_name", actor}};
      auto with = [&](const char* status) {
        prometheus::Labels l = base;
        l.emplace("status", status);
        return &executions_.Add(l);
      };
      it = actors_
               .emplace(key, ActorMetrics{with("success"), with("failure"),
                                          with("skipped"), &retries_.Add(base),
                                          &durations_.Add(base, Buckets())})
               .first;
    }
    m = &it->second;
  }
  switch (kind) {
    case JobResult::Kind::kDone:
      m->success->Increment();
      break;
    case JobResult::Kind::kRetry:
    case JobResult::Kind::kFailed:
      // Dramatiq reports a job that raised (Retry included) as a failure.
      m->failure->Increment();
      break;
    case JobResult::Kind::kSkipped:
      m->skipped->Increment();
      break;
  }
  if (retried) m->retries->Increment();
  m->duration->Observe(seconds);
}

std::size_t Worker::ready(std::string_view queue) const {
  auto it = queues_.find(queue);
  if (it == queues_.end()) return 0;
  std::lock_guard lock(it->second->mutex);
  return it->second->ready.size();
}

void Worker::UpdateGauges() {
  const SteadyTime now = clock_.Now();
  for (const auto& [name, q] : queues_) {
    std::size_t ready, delayed;
    SteadyTime oldest = now;
    {
      std::lock_guard lock(q->mutex);
      ready = q->ready.size();
      delayed = q->delayed.size();
      for (const Job& j : q->ready) oldest = std::min(oldest, j.enqueued);
    }
    const prometheus::Labels labels = {{"queue", name}};
    queue_size_.Add(labels).Set(static_cast<double>(ready));
    queue_delayed_.Add(labels).Set(static_cast<double>(delayed));
    queue_age_.Add(labels).Set(ready ? Seconds(now - oldest) : 0.0);
  }
}

bool Worker::SettledNow() {
  if (stop_) return true;
  // Any push, pop, start or end of a busy time between the two reads of
  // activity_ means the checks in between may be stale.
  const uint64_t before = activity_.load();
  if (busy_.load() != 0) return false;
  const SteadyTime now = clock_.Now();
  for (const auto& [name, q] : queues_) {
    std::lock_guard lock(q->mutex);
    // Waiting work is settled only while every thread of its queue is taken.
    if (q->occupied == q->concurrency) continue;
    if (!q->ready.empty()) return false;
    if (!q->delayed.empty() && q->delayed.top().eta <= now) return false;
  }
  {
    std::lock_guard lock(sleep_mutex_);
    if (!sleepers_.empty() && *sleepers_.begin() <= now) return false;
  }
  return busy_.load() == 0 && activity_.load() == before;
}

void Worker::NotifySettle() {
  {
    std::lock_guard lock(settle_mutex_);
    ++settle_generation_;
  }
  settle_cv_.notify_all();
}

void Worker::Settle() {
  while (true) {
    uint64_t seen;
    {
      std::lock_guard lock(settle_mutex_);
      seen = settle_generation_;
    }
    // Checked without settle_mutex_: the job threads notify while holding
    // their queue's lock, which SettledNow() takes.
    if (SettledNow()) return;
    std::unique_lock lock(settle_mutex_);
    settle_cv_.wait_for(lock, std::chrono::milliseconds(10),
                        [&] { return settle_generation_ != seen; });
  }
}

}  // namespace polar::sim
