// HttpEngine: the Transport that puts requests on the wire with libcurl's
// multi_socket interface, driven by the EventLoop (epoll for curl's sockets,
// one loop timer for curl's timeout).
//
// Owned by App; loop thread only. Connections are kept alive and reused across
// requests; HTTP/2 is negotiated over TLS when the target offers it. At most
// `connections` transfers are on the wire at once; further requests wait in a
// FIFO inside the engine, and the time they wait counts as schedule lag (their
// latency still runs from the intended time). The caller bounds that FIFO: the
// scheduler admits a request only while in_flight() is below the configured
// caps.
//
// Streams (OpenStream, for the checkout's SSE stream) use the same connections
// and FIFO. curl hands their body over inside its write callback, where curl
// must not be called again, so the bytes wait in a per-stream buffer (bounded
// by StreamOptions::max_buffered) and the handlers run right after curl
// returns, on the same loop turn. A stream's transfer gets its own deadline
// instead of the request timeout.
#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "daemon/net/event_loop.h"
#include "daemon/net/http1_client.h"
#include "daemon/net/https_client.h"
#include "scenarios/transport.h"

namespace polar {

struct EngineOptions {
  std::string base_url;  // "http://127.0.0.1:8000", no trailing slash
  std::string
      token;  // secret: goes into one header list, never into a log line
  Duration timeout = std::chrono::seconds(10);
  Duration connect_timeout = std::chrono::seconds(3);
  std::string ca_file;  // empty: the system trust store
  std::size_t connections = 256;
  // Bodies above this are cut off and the request counts as invalid_response: a
  // misbehaving target must not make the daemon's memory grow (Polar's largest
  // real answers are a few KiB).
  std::size_t max_response_bytes = 1 << 20;
  std::string user_agent;
  // Plain requests to an http:// target with a literal address go through
  // Http1Client instead of libcurl (target.http_client = "auto").
  bool builtin_http1 = true;
  // Plain requests to an https:// target go through HttpsClient instead of
  // libcurl (target.http_client = "auto"), unless a proxy is set in the
  // environment (https_proxy, all_proxy): only libcurl speaks to proxies.
  bool builtin_https = true;

  // A config reload builds a new engine only when these differ.
  bool operator==(const EngineOptions&) const = default;
};

class HttpEngine final : public Transport {
 public:
  HttpEngine(EventLoop& loop, const Clock& clock, EngineOptions options);
  ~HttpEngine() override;
  HttpEngine(const HttpEngine&) = delete;
  HttpEngine& operator=(const HttpEngine&) = delete;

  void Send(Request request, ResponseCallback done) override;
  StreamId OpenStream(Request request, StreamOptions options,
                      StreamHandlers handlers) override;
  void CancelStream(StreamId id) override;

  // Requests accepted and not yet answered (queued + on the wire).
  std::size_t in_flight() const {
    return queue_.size() + active_ + (http1_ ? http1_->in_flight() : 0) +
           (https_ ? https_->in_flight() : 0);
  }
  std::size_t active() const {
    return active_ + (http1_ ? http1_->active() : 0) +
           (https_ ? https_->active() : 0);
  }
  // True when plain requests bypass libcurl (see EngineOptions).
  bool uses_builtin_http1() const { return http1_ != nullptr; }
  bool uses_builtin_https() const { return https_ != nullptr; }
  // The built-in HTTPS client, when it is in use (connection statistics).
  const HttpsClient* https() const { return https_.get(); }
  // Streams open or waiting for a connection.
  std::size_t streams() const { return streams_.size() + queued_streams_; }

 private:
  struct Transfer;
  struct StreamState;

  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* engine,
                      void* socket_data);
  static int OnTimer(CURLM* multi, long timeout_ms, void* engine);
  static int OnCloseSocket(void* engine, curl_socket_t fd);
  void ArmCurlTimer();
  static size_t OnBody(char* data, size_t size, size_t count, void* transfer);
  static size_t OnHeader(char* data, size_t size, size_t count, void* transfer);

  void SocketAction(curl_socket_t fd, int events);
  void StartQueued();
  void Launch(std::unique_ptr<Transfer> transfer);
  void CollectDone();
  void Finish(Transfer* transfer, CURLcode code);
  Transfer* NewTransfer();
  // Runs the handlers of streams that have a head or body waiting.
  void DeliverStreams();
  void DeliverStream(Transfer* transfer);
  // Puts a finished or cancelled transfer back in the pool.
  void Recycle(Transfer* transfer);

  EventLoop& loop_;
  const Clock& clock_;
  EngineOptions options_;
  const bool tls_;  // https:// target
  // CURLOPT_PIPEWAIT for the next transfers (TLS only): on while transfers
  // get answers, off after one fails to connect, until one is answered again.
  bool pipewait_ = true;
  CURLM* multi_ = nullptr;
  curl_slist* headers_auth_ = nullptr;
  curl_slist* headers_anon_ = nullptr;
  // curl's one timeout, and the loop timer serving it. The loop timer is only
  // moved earlier, never cancelled for a later deadline: curl changes its
  // timeout several times per request, and a timer that fires early and
  // re-arms costs less than churning the timer heap and the timerfd.
  Timer curl_timer_;
  MonoTime curl_timer_at_ = MonoTime::max();
  MonoTime curl_deadline_ = MonoTime::max();
  // Event masks of the sockets registered in the loop (0: registered, but
  // curl does not want events now). Registrations outlive curl's interest:
  // a kept-alive connection is dropped from watching after each transfer and
  // re-added for the next, which would be two epoll_ctl calls per request.
  // curl's close-socket callback ends a registration for good.
  std::unordered_map<int, uint32_t> sockets_;
  struct Pending {
    Request request;
    ResponseCallback done;                // plain requests
    std::unique_ptr<StreamState> stream;  // streams
  };
  std::deque<Pending> queue_;  // waiting for a connection, FIFO
  std::vector<std::unique_ptr<Transfer>>
      pool_;  // finished transfers, easy handles kept for reuse
  // Transfers owned by the multi handle (launched, not finished): freed by the
  // destructor when a drain gives up on them.
  std::unordered_set<Transfer*> on_wire_;
  std::size_t active_ = 0;
  // Streams on the wire by id, and the ids with a head or body to deliver.
  std::unordered_map<StreamId, Transfer*> streams_;
  std::vector<StreamId> deliver_;
  std::size_t queued_streams_ = 0;
  StreamId next_stream_ = 1;
  curl_slist* headers_stream_ = nullptr;  // no token; Accept: text/event-stream
  // Plain requests when the target allows it; streams always use curl (an SSE
  // stream holds its connection for its whole life, so it shares nothing with
  // the keep-alive pool).
  std::unique_ptr<Http1Client> http1_;
  std::unique_ptr<HttpsClient> https_;
};

}  // namespace polar
