// HTTP messages as polar-sim's handlers see them: the request after
// libmicrohttpd parsed it, the response (possibly held until a time, possibly
// finished by deferred work) and SseStream, a text/event-stream body fed from
// any thread.
//
// SimRequest and SimResponse are plain values (one thread at a time).
// SseStream is thread-safe: Push()/Close() from any thread, read by the server.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sim/base/time.h"

namespace polar::sim {

struct SimRequest {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  std::string client_ip;
  bool has_content_length = false;
  bool body_too_large = false;

  const std::string* Header(const std::string& lower_name) const;
  const std::string* Query(const std::string& name) const;
  std::vector<std::string> QueryAll(const std::string& name) const;
};

// A text/event-stream body. Producers Push() whole frames ("data: ...\r\n\r\n")
// from any thread; the server sends them in order. Bounded: beyond max_queued
// unsent frames the oldest are dropped (a client that does not read must not
// grow memory).
class SseStream {
 public:
  explicit SseStream(std::size_t max_queued = 256) : max_queued_(max_queued) {}
  // False once the stream is closed or its client went away.
  bool Push(std::string frame);
  // Ends the stream after the queued frames.
  void Close();
  bool alive() const;
  // The frames not sent yet (tests read a stream's frames with it).
  std::vector<std::string> queued() const;

 private:
  friend class SimServer;
  friend struct SseAccess;  // the server's content reader (http.cc)
  mutable std::mutex mutex_;
  std::deque<std::string> frames_;
  std::size_t offset_ = 0;  // bytes of frames_.front() already sent
  std::size_t max_queued_;
  bool closed_ = false;
  bool gone_ = false;
  std::function<void()> waker_;  // set while the connection is parked
};

struct SimResponse {
  enum class Disconnect { kNone, kClose, kReset };

  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  // Not sent before this time (the server's Clock). If `finish` is set it runs
  // on the timer thread at that time and its result is sent instead: work that
  // "happens" at the end of the hold, such as confirm's state change.
  SteadyTime hold_until{};
  std::function<SimResponse()> finish;
  std::shared_ptr<SseStream> stream;  // if set: an event-stream body
  Disconnect disconnect = Disconnect::kNone;
  // Runs once the response has been handed to the connection: Polar pushes
  // the jobs a request enqueued only after its handler returned
  // (FlushEnqueuedWorkerJobsMiddleware), so a job never starts before the
  // answer leaves. Must not block.
  std::function<void()> on_sent;
};

using SimHandler = std::function<SimResponse(const SimRequest&)>;

// Applies `change` to the response the client will get: at once, or, when the
// response is finished by deferred work, to that work's result. Middleware uses
// it to add headers and count statuses known only once confirm's hold ended.
void OnFinal(SimResponse& response, std::function<void(SimResponse&)> change);

}  // namespace polar::sim
