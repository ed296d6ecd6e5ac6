// FakeTransport: a Transport for scenario unit tests, driven by a FakeClock
// and FakeTimers (scenarios/timers.h) so flows with think times, polls and
// deadlines run in microseconds and deterministically.
//
// Every Send is recorded and answered `latency` later (on a FakeTimers timer,
// never inside Send) by `handler`, which fills the Response (status, body,
// transport outcome). With hold = true answers wait for Release(). Streams
// are recorded; the test (or a fake target built on this) drives them with
// StreamHead/StreamData/StreamEnd, each running the scenario's handler
// directly, as the engine does after curl returns. Single-threaded, tests only.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "scenarios/timers.h"
#include "scenarios/transport.h"

namespace polar::testing {

class FakeTransport final : public Transport {
 public:
  using Handler = std::function<void(const Request&, Response&)>;

  struct Stream {
    Request request;
    StreamOptions options;
    StreamHandlers handlers;
    MonoTime sent{};
    bool open = true;        // neither cancelled nor ended
    bool cancelled = false;  // by the scenario
  };

  FakeTransport(FakeClock& clock, FakeTimers& timers)
      : clock_(clock), timers_(timers) {}

  // Answers every request; by default 200 with an empty JSON object.
  Handler handler = [](const Request&, Response& r) {
    r.status = 200;
    r.body = "{}";
  };
  Duration latency = std::chrono::milliseconds(5);
  bool supports_streams = true;
  bool hold = false;  // keep answers until Release()

  std::vector<Request> requests;       // every Send, in order
  std::map<StreamId, Stream> streams;  // every OpenStream

  void Send(Request request, ResponseCallback done) override {
    requests.push_back(request);
    Response r;
    r.intended = request.intended;
    r.sent = clock_.Now();
    if (hold) {
      held_.push_back({std::move(request), std::move(r), std::move(done)});
      return;
    }
    Schedule(std::move(request), std::move(r), std::move(done));
  }

  // Answers every held request now (each `latency` from now).
  void Release() {
    hold = false;
    auto held = std::move(held_);
    held_.clear();
    for (auto& h : held)
      Schedule(std::move(h.request), std::move(h.response), std::move(h.done));
  }
  std::size_t held() const { return held_.size(); }

  StreamId OpenStream(Request request, StreamOptions options,
                      StreamHandlers handlers) override {
    if (!supports_streams) return kNoStream;
    StreamId id = next_stream_++;
    Stream s;
    s.request = std::move(request);
    s.options = options;
    s.handlers = std::move(handlers);
    s.sent = clock_.Now();
    streams.emplace(id, std::move(s));
    if (auto_head) {
      timers_.At(clock_.Now() + latency, [this, id] {
        StreamHead(id, auto_head_status, auto_head_type);
      });
    }
    return id;
  }
  void CancelStream(StreamId id) override {
    auto it = streams.find(id);
    if (it == streams.end() || !it->second.open) return;
    it->second.open = false;
    it->second.cancelled = true;
  }

  // Streams get their head automatically `latency` after they are opened.
  bool auto_head = true;
  long auto_head_status = 200;
  std::string auto_head_type = "text/event-stream; charset=utf-8";

  void StreamHead(StreamId id, long status, const std::string& content_type) {
    Stream* s = Open(id);
    if (!s) return;
    Response head;
    head.status = status;
    head.content_type = content_type;
    head.intended = s->request.intended;
    head.sent = s->sent;
    head.done = clock_.Now();
    auto on_head = s->handlers.on_head;
    if (on_head) on_head(head);
  }
  void StreamData(StreamId id, const std::string& chunk) {
    Stream* s = Open(id);
    if (!s) return;
    auto on_data = s->handlers.on_data;
    if (on_data) on_data(chunk);
  }
  void StreamEnd(StreamId id, Outcome transport, long status = 200) {
    Stream* s = Open(id);
    if (!s) return;
    s->open = false;
    Response end;
    end.transport = transport;
    end.status = status;
    end.intended = s->request.intended;
    end.sent = s->sent;
    end.done = clock_.Now();
    auto on_end = std::move(s->handlers.on_end);
    if (on_end) on_end(std::move(end));
  }
  // Open streams whose path contains `needle`.
  std::vector<StreamId> OpenStreams(const std::string& needle = "") const {
    std::vector<StreamId> out;
    for (const auto& [id, s] : streams)
      if (s.open && s.request.path.find(needle) != std::string::npos)
        out.push_back(id);
    return out;
  }
  std::size_t Count(Method method, const std::string& needle) const {
    std::size_t n = 0;
    for (const auto& r : requests)
      if (r.method == method && r.path.find(needle) != std::string::npos) ++n;
    return n;
  }

 private:
  struct Held {
    Request request;
    Response response;
    ResponseCallback done;
  };

  Stream* Open(StreamId id) {
    auto it = streams.find(id);
    return it == streams.end() || !it->second.open ? nullptr : &it->second;
  }

  void Schedule(Request request, Response r, ResponseCallback done) {
    timers_.At(clock_.Now() + latency,
               [this, request = std::move(request), r = std::move(r),
                done = std::move(done)]() mutable {
                 r.done = clock_.Now();
                 handler(request, r);
                 done(std::move(r));
               });
  }

  FakeClock& clock_;
  FakeTimers& timers_;
  std::deque<Held> held_;
  StreamId next_stream_ = 1;
};

}  // namespace polar::testing
