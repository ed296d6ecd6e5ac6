#include "daemon/scheduler.h"

namespace polar {
namespace {

// At most this many arrivals start per timer callback; the rest run after the
// loop has polled its sockets once. 512 arrivals is ~25 ms of work at 20,000/s,
// short enough to keep responses moving.
constexpr int kMaxArrivalsPerTick = 512;

}  // namespace

ScenarioRunner::ScenarioRunner(EventLoop& loop, const Clock& clock,
                               Scenario& scenario, ScenarioSeries& series,
                               std::unique_ptr<ArrivalProcess> arrivals,
                               RunnerLimits limits)
    : loop_(loop),
      clock_(clock),
      scenario_(scenario),
      series_(series),
      arrivals_(std::move(arrivals)),
      limits_(std::move(limits)) {}

ScenarioRunner::~ScenarioRunner() { Stop(); }

void ScenarioRunner::Start(MonoTime first) {
  running_ = true;
  next_ = first;
  series_.target_rate->Set(arrivals_->RateAt(first));
  Arm();
}

void ScenarioRunner::Stop() {
  running_ = false;
  if (timer_) loop_.Cancel(timer_);
  timer_ = 0;
  series_.target_rate->Set(0);
}

void ScenarioRunner::Arm() {
  if (!running_ || next_ == MonoTime::max()) return;
  timer_ = loop_.AddTimer(next_, [this] {
    timer_ = 0;
    OnTimer();
  });
}

void ScenarioRunner::OnTimer() {
  const MonoTime now = clock_.Now();
  for (int i = 0; i < kMaxArrivalsPerTick && running_ && next_ <= now; ++i) {
    Arrival arrival{next_, sequence_++};
    series_.arrivals->Increment();
    if (scenario_.in_flight() >= limits_.max_in_flight) {
      series_.dropped[static_cast<std::size_t>(DropReason::kInFlightCap)]
          ->Increment();
    } else if (limits_.global_full()) {
      series_.dropped[static_cast<std::size_t>(DropReason::kGlobalInFlightCap)]
          ->Increment();
    } else {
      scenario_.Start(arrival);
    }
    next_ = arrivals_->Next(next_);
  }
  series_.target_rate->Set(arrivals_->RateAt(now));
  Arm();
}

}  // namespace polar
