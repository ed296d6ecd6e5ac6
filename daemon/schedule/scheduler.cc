#include "daemon/schedule/scheduler.h"

#include <algorithm>

namespace polar {
namespace {

// At most this many arrivals start per timer callback; the rest run after the
// loop has polled its sockets once. 512 arrivals is ~25 ms of work at 20,000/s,
// short enough to keep responses moving.
constexpr int kMaxArrivalsPerTick = 512;

}  // namespace

ScenarioRunner::ScenarioRunner(Timers& timers, const Clock& clock,
                               Scenario& scenario, ScenarioSeries& series,
                               RunnerPlan plan, RunnerLimits limits)
    : timers_(timers),
      clock_(clock),
      scenario_(scenario),
      series_(series),
      plan_(std::move(plan)),
      limits_(std::move(limits)) {}

ScenarioRunner::~ScenarioRunner() {
  Stop();
  // The series outlive the runner (a reload builds a successor that sets them
  // again); a removed scenario must not look paused forever.
  if (series_.paused) series_.paused->Set(0);
  if (series_.rate_overridden) series_.rate_overridden->Set(0);
}

void ScenarioRunner::SetRate(double rate) {
  rate_ = rate;
  series_.target_rate->Set(rate);
}

WallTime ScenarioRunner::WallAt(MonoTime t) const {
  return clock_.WallNow() -
         std::chrono::duration_cast<WallTime::duration>(clock_.Now() - t);
}

std::unique_ptr<ArrivalProcess> ScenarioRunner::MakeProcess(
    MonoTime origin, std::optional<double> first_work,
    std::optional<MonoTime> resume_at) const {
  // The wall time of `origin`, for schedules that follow a local clock.
  const WallTime wall = WallAt(origin);
  const Shard shard = plan_.shard;
  // A shard that starts afresh takes its place on the cluster's grid
  // (ShardPhase); handed-over or resumed work keeps the phase it had.
  if (!first_work && !resume_at && shard.sharded() &&
      plan_.arrivals == ArrivalKind::kUniform) {
    first_work = ShardPhase(plan_.schedule, shard, wall);
  }
  return std::make_unique<ArrivalProcess>(
      shard.sharded() ? plan_.schedule.Scaled(1.0 / shard.count)
                      : plan_.schedule,
      plan_.arrivals, shard.Seed(plan_.seed), origin, wall, first_work,
      resume_at);
}

void ScenarioRunner::Start(MonoTime first, std::optional<double> first_work) {
  running_ = true;
  origin_ = first;
  process_ = MakeProcess(first, first_work);
  SetRate(process_->RateAt(first));
  Arm();
}

void ScenarioRunner::Stop() {
  running_ = false;
  for (Timer* t : {&timer_, &burst_timer_, &override_timer_}) t->Cancel();
  burst_pending_ = 0;
  SetRate(0);
}

void ScenarioRunner::Reconfigure(RunnerPlan plan, RunnerLimits limits) {
  limits_ = std::move(limits);
  if (!limits_.honour_retry_after) paused_until_ = MonoTime{};
  const bool same = plan.schedule == plan_.schedule &&
                    plan.arrivals == plan_.arrivals &&
                    plan.seed == plan_.seed && plan.shard == plan_.shard;
  const bool same_shard = plan.shard == plan_.shard;
  plan_ = std::move(plan);
  if (same || !process_) return;
  const MonoTime now = clock_.Now();
  origin_ = now;
  // Paused or overridden: the new schedule takes over when they end.
  if (paused_ || override_) return;
  // A new share starts on its own phase; otherwise keep the old one's.
  process_ = MakeProcess(
      now, same_shard ? process_->RemainingWork(now) : std::nullopt);
  if (!running_) return;
  timer_.Cancel();
  SetRate(process_->RateAt(now));
  Arm();
}

void ScenarioRunner::OnRetryAfter(Duration wait) {
  if (!limits_.honour_retry_after) return;
  wait = std::clamp(wait, Duration::zero(), limits_.max_retry_after);
  paused_until_ = std::max(paused_until_, clock_.Now() + wait);
}

void ScenarioRunner::Switch(MonoTime now, std::optional<double> work) {
  if (override_) {
    ScheduleSpec spec;
    spec.kind = ScheduleKind::kConstant;
    // The override is a cluster rate like the config's: this shard's part.
    spec.rate = override_->rate / plan_.shard.count;
    // A fresh Poisson stream per switch; the seed keeps runs reproducible.
    process_ = std::make_unique<ArrivalProcess>(
        spec, plan_.arrivals,
        plan_.shard.Seed(plan_.seed) ^ (sequence_ * 0x9e3779b97f4a7c15ull), now,
        WallAt(now), work);
  } else {
    process_ = MakeProcess(origin_, work, now);
  }
  timer_.Cancel();
  if (!running_ || paused_) return;
  SetRate(process_->RateAt(now));
  Arm();
}

bool ScenarioRunner::Pause() {
  if (paused_) return false;
  const MonoTime now = clock_.Now();
  paused_work_ = process_ ? process_->RemainingWork(now) : std::nullopt;
  paused_ = true;
  timer_.Cancel();
  SetRate(0);
  series_.paused->Set(1);
  return true;
}

bool ScenarioRunner::Resume() {
  if (!paused_) return false;
  paused_ = false;
  series_.paused->Set(0);
  Switch(clock_.Now(), paused_work_);
  paused_work_.reset();
  return true;
}

void ScenarioRunner::OverrideRate(double rate, MonoTime until) {
  const MonoTime now = clock_.Now();
  std::optional<double> work = paused_    ? paused_work_
                               : process_ ? process_->RemainingWork(now)
                                          : std::nullopt;
  override_ = RateOverride{rate, until};
  series_.rate_overridden->Set(1);
  override_timer_.Cancel();
  if (until != MonoTime::max())
    override_timer_ = timers_.Once(until, [this] { EndOverride(); });
  if (!paused_) Switch(now, work);
}

bool ScenarioRunner::ClearOverride() {
  if (!override_) return false;
  override_timer_.Cancel();
  EndOverride();
  return true;
}

void ScenarioRunner::EndOverride() {
  const MonoTime now = clock_.Now();
  std::optional<double> work =
      !paused_ && process_ ? process_->RemainingWork(now) : paused_work_;
  override_.reset();
  series_.rate_overridden->Set(0);
  if (!paused_) Switch(now, work);
}

double ScenarioRunner::ScheduledRate(MonoTime now) const {
  if (!paused_ && !override_ && process_) return process_->RateAt(now);
  const Shard shard = plan_.shard;
  return BuildSchedule(shard.sharded()
                           ? plan_.schedule.Scaled(1.0 / shard.count)
                           : plan_.schedule,
                       WallAt(origin_))
      ->RateAt(std::max(Duration::zero(), now - origin_));
}

bool ScenarioRunner::Burst(uint64_t count) {
  if (!running_ || count > kMaxBurst || burst_pending_ + count > kMaxBurst)
    return false;
  if (count == 0) return true;
  if (burst_pending_ == 0) burst_intended_ = clock_.Now();
  burst_pending_ += count;
  if (!burst_timer_.pending())
    burst_timer_ = timers_.After(Duration::zero(), [this] { OnBurst(); });
  return true;
}

void ScenarioRunner::OnBurst() {
  for (int i = 0; i < kMaxArrivalsPerTick && burst_pending_ > 0 && running_;
       ++i) {
    --burst_pending_;
    Admit(Arrival{burst_intended_, plan_.shard.GlobalSequence(sequence_++)});
  }
  if (burst_pending_ > 0 && running_)
    burst_timer_ = timers_.After(Duration::zero(), [this] { OnBurst(); });
}

void ScenarioRunner::Arm() {
  if (!running_ || paused_ || !process_) return;
  MonoTime due = process_->next();
  const int64_t window = GroupWindow(rate_, limits_.timer_slack).count();
  if (due != MonoTime::max() && window > 0) {
    // Up to the next multiple of the window on the monotonic clock, a grid
    // every scenario shares.
    const auto ns = due.time_since_epoch().count();
    due = MonoTime(Duration((ns + window - 1) / window * window));
  }
  // polar_loadd_target_rate follows the schedule between arrivals too: wake
  // where the rate changes when that comes first. Without it the gauge moved
  // only at arrivals, so a schedule that fell to 0/s (or to 1/h) after its
  // last arrival showed the old rate for good (or for the hour): a step
  // schedule's shards 1 and 2 of 3 kept reading 2/s after their steps ended.
  // One wake-up per step, window edge or local hour.
  const MonoTime now = clock_.Now();
  const MonoTime change = process_->RateChangeAfter(now);
  if (change > now && change < due) due = change;
  if (due == MonoTime::max()) return;
  timer_ = timers_.Once(due, [this] { OnTimer(); });
}

Duration GroupWindow(double rate, Duration slack) {
  // Each wake-up of the loop costs more than the request it sends (~10-15 us
  // of CPU on this project's 2-core VM), so arrivals go out at least two per
  // wake-up where the slack allows: the slack itself once it holds two or
  // more arrivals, twice the slack while it holds one to two, and on time
  // below one per slack. Measured with 1 ms of slack against nginx over TLS
  // and HTTP/2 (bench/tls_cpu_per_request.sh): at 1,000/s 55 us of CPU per
  // request each on time, 38 us two per wake-up; at 5,000/s 24 us with a
  // 500 us window, 16 us with 1 ms.
  const double per_slack = rate * ToSeconds(slack);
  if (slack <= Duration::zero() || per_slack < 1) return Duration::zero();
  return per_slack < 2 ? 2 * slack : slack;
}

void ScenarioRunner::Admit(const Arrival& arrival) {
  series_.arrivals->Increment();
  if (arrival.intended < paused_until_) {
    series_.dropped[static_cast<std::size_t>(DropReason::kRetryAfter)]
        ->Increment();
  } else if (scenario_.in_flight() >= limits_.max_in_flight) {
    series_.dropped[static_cast<std::size_t>(DropReason::kInFlightCap)]
        ->Increment();
  } else if (limits_.global_full()) {
    series_.dropped[static_cast<std::size_t>(DropReason::kGlobalInFlightCap)]
        ->Increment();
  } else {
    scenario_.Start(arrival);
  }
}

void ScenarioRunner::OnTimer() {
  if (paused_) return;
  const MonoTime now = clock_.Now();
  for (int i = 0;
       i < kMaxArrivalsPerTick && running_ && process_->next() <= now; ++i) {
    Admit(Arrival{process_->next(), plan_.shard.GlobalSequence(sequence_++)});
    process_->Advance();
  }
  SetRate(process_->RateAt(now));
  Arm();
}

StreamId RetryAfterGate::OpenStream(Request request, StreamOptions options,
                                    StreamHandlers handlers) {
  // A 429 head is usually cancelled by the scenario (no end follows), so the
  // runner hears about it from the head, or from the end if no head came.
  handlers.on_head =
      [this, head_cb = std::move(handlers.on_head)](const Response& head) {
        if (runner_ && head.status == 429 && head.retry_after)
          runner_->OnRetryAfter(*head.retry_after);
        if (head_cb) head_cb(head);
      };
  handlers.on_end = [this,
                     done = std::move(handlers.on_end)](Response&& response) {
    if (runner_ && response.status == 429 && response.retry_after)
      runner_->OnRetryAfter(*response.retry_after);
    if (done) done(std::move(response));
  };
  return inner_.OpenStream(std::move(request), options, std::move(handlers));
}

void RetryAfterGate::Send(Request request, ResponseCallback done) {
  inner_.Send(std::move(request),
              [this, done = std::move(done)](Response&& response) {
                if (runner_ && response.transport == Outcome::kOk &&
                    response.status == 429 && response.retry_after) {
                  runner_->OnRetryAfter(*response.retry_after);
                }
                done(std::move(response));
              });
}

}  // namespace polar
