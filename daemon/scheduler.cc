#include "daemon/scheduler.h"

#include <algorithm>

namespace polar {
namespace {

// At most this many arrivals start per timer callback; the rest run after the
// loop has polled its sockets once. 512 arrivals is ~25 ms of work at 20,000/s,
// short enough to keep responses moving.
constexpr int kMaxArrivalsPerTick = 512;

}  // namespace

ScenarioRunner::ScenarioRunner(EventLoop& loop, const Clock& clock,
                               Scenario& scenario, ScenarioSeries& series,
                               RunnerPlan plan, RunnerLimits limits)
    : loop_(loop),
      clock_(clock),
      scenario_(scenario),
      series_(series),
      plan_(std::move(plan)),
      limits_(std::move(limits)) {}

ScenarioRunner::~ScenarioRunner() { Stop(); }

std::unique_ptr<ArrivalProcess> ScenarioRunner::MakeProcess(
    MonoTime origin, std::optional<double> first_work) const {
  // The wall time of `origin`, for schedules that follow a local clock.
  const WallTime wall =
      clock_.WallNow() -
      std::chrono::duration_cast<WallTime::duration>(clock_.Now() - origin);
  return std::make_unique<ArrivalProcess>(plan_.schedule, plan_.arrivals,
                                          plan_.seed, origin, wall, first_work);
}

void ScenarioRunner::Start(MonoTime first, std::optional<double> first_work) {
  running_ = true;
  process_ = MakeProcess(first, first_work);
  series_.target_rate->Set(process_->RateAt(first));
  Arm();
}

void ScenarioRunner::Stop() {
  running_ = false;
  if (timer_) loop_.Cancel(timer_);
  timer_ = 0;
  series_.target_rate->Set(0);
}

void ScenarioRunner::Reconfigure(RunnerPlan plan, RunnerLimits limits) {
  limits_ = std::move(limits);
  if (!limits_.honour_retry_after) paused_until_ = MonoTime{};
  const bool same = plan.schedule == plan_.schedule &&
                    plan.arrivals == plan_.arrivals && plan.seed == plan_.seed;
  plan_ = std::move(plan);
  if (same || !process_) return;
  const MonoTime now = clock_.Now();
  process_ = MakeProcess(now, process_->RemainingWork(now));
  if (!running_) return;
  if (timer_) loop_.Cancel(timer_);
  timer_ = 0;
  series_.target_rate->Set(process_->RateAt(now));
  Arm();
}

void ScenarioRunner::OnRetryAfter(Duration wait) {
  if (!limits_.honour_retry_after) return;
  wait = std::clamp(wait, Duration::zero(), limits_.max_retry_after);
  paused_until_ = std::max(paused_until_, clock_.Now() + wait);
}

void ScenarioRunner::Arm() {
  if (!running_ || !process_ || process_->next() == MonoTime::max()) return;
  timer_ = loop_.AddTimer(process_->next(), [this] {
    timer_ = 0;
    OnTimer();
  });
}

void ScenarioRunner::OnTimer() {
  const MonoTime now = clock_.Now();
  for (int i = 0;
       i < kMaxArrivalsPerTick && running_ && process_->next() <= now; ++i) {
    Arrival arrival{process_->next(), sequence_++};
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
    process_->Advance();
  }
  series_.target_rate->Set(process_->RateAt(now));
  Arm();
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
