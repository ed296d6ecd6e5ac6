// Worker: polar-sim's model of Polar's Dramatiq worker (docs/polar-api.md §7):
// named queues, each served by its own threads (the configurable
// concurrency), jobs that keep a thread busy for a time drawn from a per-actor
// distribution, delayed jobs (retries, debounces), and the queue metrics Polar
// exports (polar_queue_size, polar_queue_oldest_message_age_seconds, task
// executions and durations), registered in the Registry given at construction.
// Job times, delays and queue ages are on the Clock given at construction, so
// tests run the worker on a FakeClock: a job's busy time passes only when the
// test advances the clock, and Settle() waits until nothing is due.
//
// Thread rules: Enqueue(), SetSlowdown(), UpdateGauges() and Settle() may be
// called from any thread, Enqueue() also from inside a job. Jobs run on the
// worker's threads; a job may block (the webhook job makes an HTTP call) but
// must check JobContext::stopping() in long waits. Stop() joins every thread
// and drops the jobs still queued.
//
// Bounded: each queue holds at most max_queued jobs; beyond that Enqueue()
// refuses and counts the job in polar_sim_jobs_dropped_total.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sim/base/clock.h"
#include "sim/base/distribution.h"

namespace polar::sim {

// Polar's queues (server/polar/worker/_queues.py).
inline constexpr const char* kQueueHigh = "high_priority";
inline constexpr const char* kQueueMedium = "medium_priority";
inline constexpr const char* kQueueLow = "low_priority";
inline constexpr const char* kQueueWebhooks = "webhooks";
inline constexpr const char* kQueueTinybird = "tinybird";

struct JobResult {
  enum class Kind { kDone, kRetry, kFailed, kSkipped };
  Kind kind = Kind::kDone;
  Duration delay{0};  // for kRetry
  static JobResult Done() { return {}; }
  static JobResult Retry(Duration delay) { return {Kind::kRetry, delay}; }
  static JobResult Failed() { return {Kind::kFailed, {}}; }
  static JobResult Skipped() { return {Kind::kSkipped, {}}; }
};

class Worker;

class JobContext {
 public:
  // Keeps this worker thread busy for the actor's job time (scaled by the
  // slow-worker fault). Call it where the job's simulated work happens, before
  // its effects become visible.
  void Work();
  int attempt() const { return attempt_; }  // 0 on the first run
  bool stopping() const;
  const std::string& actor() const { return actor_; }

 private:
  friend class Worker;
  JobContext(Worker* worker, std::string actor, std::string_view queue,
             int attempt)
      : worker_(worker),
        actor_(std::move(actor)),
        queue_(queue),
        attempt_(attempt) {}
  Worker* worker_;
  std::string actor_;
  std::string_view queue_;
  int attempt_;
  bool worked_ = false;
};

using JobFn = std::function<JobResult(JobContext&)>;

struct WorkerOptions {
  // Threads per queue. Polar runs `dramatiq -p 1 -t 1` locally and 16 threads
  // for webhooks in production.
  std::map<std::string, int> concurrency = {{kQueueHigh, 1},
                                            {kQueueMedium, 1},
                                            {kQueueLow, 1},
                                            {kQueueWebhooks, 4},
                                            {kQueueTinybird, 1}};
  // How long each actor keeps a thread busy; absent actors take no time.
  std::map<std::string, Distribution> job_time;
  std::size_t max_queued = 100'000;
  uint64_t seed = 1;
};

class Worker {
 public:
  Worker(const WorkerOptions& options, const Clock& clock,
         prometheus::Registry& registry);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // False when the queue is unknown, full or stopped (the job is dropped and
  // counted).
  bool Enqueue(std::string_view queue, std::string actor, JobFn fn,
               Duration delay = Duration::zero());
  // Slow-worker fault: job times on `queue` ("*" for all) become
  // time × factor + add.
  void SetSlowdown(const std::string& queue, double factor, Duration add);
  void Stop();
  bool stopping() const { return stop_.load(); }

  // Ready jobs waiting in `queue` (not counting delayed ones or running ones).
  std::size_t ready(std::string_view queue) const;
  // Sets the queue gauges (sizes, oldest ages, delayed jobs): call before a
  // scrape.
  void UpdateGauges();
  // Blocks until no job is ready, due, running or at the end of its busy
  // time. With a real clock more may fall due meanwhile; tests use it on a
  // FakeClock after advancing it.
  void Settle();
  bool IsSettled() { return SettledNow(); }

 private:
  friend class JobContext;
  struct Job {
    std::string actor;
    JobFn fn;
    SteadyTime enqueued;  // first enqueue, kept across retries
    SteadyTime eta;
    int attempt = 0;
    uint64_t seq = 0;
  };
  struct Queue;
  // An actor's metric children, created on its first job.
  struct ActorMetrics {
    prometheus::Counter* success;
    prometheus::Counter* failure;
    prometheus::Counter* skipped;
    prometheus::Counter* retries;
    prometheus::Histogram* duration;
  };

  void Run(Queue* queue);
  void Push(Queue* queue, Job job, Duration delay);
  Duration JobTime(std::string_view queue, const std::string& actor);
  void Sleep(Duration d);
  void Record(std::string_view queue, const std::string& actor,
              JobResult::Kind kind, bool retried, double seconds);
  bool SettledNow();
  void NotifySettle();

  WorkerOptions options_;
  const Clock& clock_;
  std::map<std::string, std::unique_ptr<Queue>, std::less<>> queues_;
  std::atomic<bool> stop_{false};
  std::mutex sleep_mutex_;
  std::condition_variable sleep_cv_;
  std::multiset<SteadyTime>
      sleepers_;              // busy-time deadlines, under sleep_mutex_
  std::atomic<int> busy_{0};  // threads running a job, not sleeping
  std::atomic<uint64_t> activity_{0};  // bumped by every change Settle() reads
  std::mutex settle_mutex_;  // taken last, never held while taking another
  std::condition_variable settle_cv_;
  uint64_t settle_generation_ = 0;  // under settle_mutex_

  mutable std::mutex config_mutex_;
  std::map<std::string, std::pair<double, Duration>> slowdown_;
  std::mt19937_64 rng_;

  prometheus::Family<prometheus::Gauge>& queue_size_;
  prometheus::Family<prometheus::Gauge>& queue_age_;
  prometheus::Family<prometheus::Gauge>& queue_delayed_;
  prometheus::Family<prometheus::Counter>& executions_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Histogram>& durations_;
  std::map<std::string, prometheus::Counter*, std::less<>> dropped_;
  std::mutex metrics_mutex_;
  std::map<std::pair<std::string, std::string>, ActorMetrics> actors_;
};

}  // namespace polar::sim
