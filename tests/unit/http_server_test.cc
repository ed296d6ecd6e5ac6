// HttpServer (daemon/net/http_server.h): the deadline math on numbers, then
// the server itself on loopback with its loop on a thread of its own and
// deadlines shortened to a few hundred milliseconds: keep-alive and
// pipelining, chunked bodies, HEAD, refusals on the head before the body is
// read, 100-continue only for a body that will be read, the per-IP limit,
// eviction of the oldest idle connection, and the head, body and send
// deadlines, each counted in polar_loadd_http_*.
#include "daemon/net/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "exporters/metrics.h"
#include "tests/support/process.h"
#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

using namespace std::chrono_literals;
using testing::MonoAt;

// ---- The deadline math
// --------------------------------------------------------

TEST(HttpDeadlines, TheFirstHeadRunsFromTheAcceptWhateverArrives) {
  HttpTimeouts t;  // head 10 s
  for (HttpStage stage : {HttpStage::kIdle, HttpStage::kHead}) {
    EXPECT_EQ(CheckHttpDeadline(stage, true, MonoAt(0s), 0, MonoAt(10s), t),
              HttpDeadline::kNone);
    // Bytes do not reset it: the sweep never even looks at them here.
    EXPECT_EQ(
        CheckHttpDeadline(stage, true, MonoAt(0s), 5000, MonoAt(10001ms), t),
        HttpDeadline::kHead);
  }
}

TEST(HttpDeadlines, KeptAliveConnectionsIdleLongThenHaveTheHeadDeadline) {
  HttpTimeouts t;  // keepalive 75 s
  EXPECT_EQ(
      CheckHttpDeadline(HttpStage::kIdle, false, MonoAt(0s), 0, MonoAt(75s), t),
      HttpDeadline::kNone);
  EXPECT_EQ(
      CheckHttpDeadline(HttpStage::kIdle, false, MonoAt(0s), 0, MonoAt(76s), t),
      HttpDeadline::kClose);
  EXPECT_EQ(CheckHttpDeadline(HttpStage::kHead, false, MonoAt(80s), 0,
                              MonoAt(91s), t),
            HttpDeadline::kHead);
}

TEST(HttpDeadlines, ABodyMayStallForTheGraceThenMustAverageTheMinimumRate) {
  HttpTimeouts t;  // grace 5 s, 1024 B/s, at most 60 s
  auto check = [&](Duration at, uint64_t bytes) {
    return CheckHttpDeadline(HttpStage::kBody, false, MonoAt(0s), bytes,
                             MonoAt(at), t);
  };
  EXPECT_EQ(check(5s, 0), HttpDeadline::kNone);
  EXPECT_EQ(check(6s, 1023), HttpDeadline::kBody);  // 1 s past the grace
  EXPECT_EQ(check(6s, 1024), HttpDeadline::kNone);
  // One byte every 5 s (the slow-body attack) is cut just after the grace.
  EXPECT_EQ(check(5250ms, 1), HttpDeadline::kBody);
  // A fast body is still bounded by the maximum.
  EXPECT_EQ(check(60s, 1 << 30), HttpDeadline::kNone);
  EXPECT_EQ(check(61s, 1 << 30), HttpDeadline::kBody);
}

TEST(HttpDeadlines, AResponseMustBeReadAtTheMinimumSendRate) {
  HttpTimeouts t;  // grace 5 s, 4096 B/s
  EXPECT_EQ(CheckHttpDeadline(HttpStage::kWrite, false, MonoAt(0s), 4095,
                              MonoAt(6s), t),
            HttpDeadline::kSend);
  EXPECT_EQ(CheckHttpDeadline(HttpStage::kWrite, false, MonoAt(0s), 4096,
                              MonoAt(6s), t),
            HttpDeadline::kNone);
  EXPECT_EQ(CheckHttpDeadline(HttpStage::kLinger, false, MonoAt(0s), 0,
                              MonoAt(3s), t),
            HttpDeadline::kClose);
}

// ---- The server on loopback
// -----------------------------------------------------

// A blocking client socket to 127.0.0.1:port from `source`.
int Connect(int port, const std::string& source = "127.0.0.1") {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &src.sin_addr);
  bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void Send(int fd, const std::string& data) {
  ASSERT_EQ(send(fd, data.data(), data.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(data.size()));
}

// Everything the server sends until it closes or `wait` passes quietly.
std::string ReadUntilQuiet(int fd, std::chrono::milliseconds wait = 500ms) {
  std::string out;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(wait.count())) <= 0) return out;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out + "<closed>";
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// Whether the server closed `fd` within `within`.
bool ClosedWithin(int fd, std::chrono::milliseconds within) {
  const auto end = std::chrono::steady_clock::now() + within;
  char buf[4096];
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
  return false;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1))
    ++n;
  return n;
}

class HttpServerTest : public ::testing::Test {
 protected:
  // Starts the server with `options` on its own loop thread.
  void Start(HttpServerOptions options) {
    options.listen = ListenAddress{"127.0.0.1", 0, false};
    options.name = "webhooks";
    options.registry = &registry_;
    std::string error;
    server_ = HttpServer::Start(
        loop_, std::move(options),
        [this](const HttpServerRequest& r) {
          ++handled_;
          HttpServerResponse out;
          if (r.path == "/big") {
            out.body = std::string(32 << 20, 'x');
          } else {
            out.body = r.method + " " + r.path + " body=" + r.body + "\n";
          }
          return out;
        },
        &error);
    ASSERT_TRUE(server_) << error;
    port_ = server_->address().port;
    thread_ = std::thread([this] { loop_.Run(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      loop_.Stop();
      thread_.join();
    }
    server_.reset();
  }
  double Metric(const std::string& name, const std::string& reason) {
    auto m = testing::ParseMetrics(SerializeMetrics(registry_));
    return testing::SumSeries(m, name, {"reason=\"" + reason + "\""});
  }
  static HttpServerOptions Short() {
    HttpServerOptions o;
    o.timeouts.head = 400ms;
    o.timeouts.keepalive = 400ms;
    o.timeouts.body_grace = 300ms;
    o.timeouts.min_body_rate = 1000;
    o.timeouts.send_grace = 300ms;
    o.timeouts.min_send_rate = 16 << 20;
    o.timeouts.linger = 300ms;
    return o;
  }

  prometheus::Registry registry_;
  EventLoop loop_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::atomic<int> handled_{0};
  int port_ = 0;
};

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrderOnOneConnection) {
  Start(Short());
  int fd = Connect(port_);
  Send(fd,
       "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
       "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
       "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "2\r\nhi\r\n0\r\n\r\n"
       "HEAD /d HTTP/1.1\r\nHost: x\r\n\r\n");
  // Less than the 400 ms keep-alive, which would close it.
  const std::string out = ReadUntilQuiet(fd, 150ms);
  EXPECT_EQ(Count(out, "HTTP/1.1 200 OK"), 4) << out;
  const auto a = out.find("GET /a body=");
  const auto b = out.find("POST /b body=xyz");
  const auto c = out.find("POST /c body=hi");
  EXPECT_TRUE(a < b && b < c && c != std::string::npos) << out;
  // HEAD: the length of what GET would send, and no body.
  EXPECT_NE(out.find("Content-Length: 14\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("HEAD /d body="), std::string::npos) << out;
  EXPECT_EQ(out.find("<closed>"), std::string::npos) << "kept alive";
  close(fd);
}

TEST_F(HttpServerTest, ARefusedFramingIsAnsweredCountedAndTheRestNeverRead) {
  Start(Short());
  int fd = Connect(port_);
  Send(fd,
       "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
       "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string out = ReadUntilQuiet(fd, 1s);
  EXPECT_EQ(out.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Connection: close"), std::string::npos);
  EXPECT_NE(out.find("<closed>"), std::string::npos);
  EXPECT_EQ(Count(out, "HTTP/1.1"), 1) << out;
  EXPECT_EQ(handled_, 0);
  EXPECT_EQ(Metric("polar_loadd_http_requests_refused_total", "bad_framing"),
            1);
  close(fd);
}

TEST_F(HttpServerTest, TheHeadHandlerRefusesBeforeAnyOfTheBodyIsRead) {
  HttpServerOptions o = Short();
  std::atomic<int> heads{0};
  o.head_handler =
      [&](const HttpServerRequest& r) -> std::optional<HttpServerResponse> {
    ++heads;
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(r.content_length, 2u << 20);
    if (r.path != "/secret") return std::nullopt;
    HttpServerResponse no;
    no.status = 401;
    return no;
  };
  o.max_body_bytes = 4 << 20;
  Start(o);
  int fd = Connect(port_);
  // The head only: the answer must come without a byte of the 2 MB.
  Send(fd,
       "POST /secret HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n");
  const std::string out = ReadUntilQuiet(fd, 1s);
  EXPECT_EQ(out.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("<closed>"), std::string::npos) << "closed after linger";
  EXPECT_EQ(heads, 1);
  EXPECT_EQ(handled_, 0);
  close(fd);
}

TEST_F(HttpServerTest, ContinueOnlyForABodyThatWillBeRead) {
  HttpServerOptions o = Short();
  o.max_body_bytes = 1024;
  Start(o);
  int fd = Connect(port_);
  Send(fd,
       "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
       "Content-Length: 1073741824\r\n\r\n");
  std::string out = ReadUntilQuiet(fd, 1s);
  EXPECT_EQ(out.rfind("HTTP/1.1 413 Content Too Large\r\n", 0), 0u) << out;
  EXPECT_EQ(out.find("100 Continue"), std::string::npos) << out;
  close(fd);
  EXPECT_EQ(Metric("polar_loadd_http_requests_refused_total", "body_too_large"),
            1);

  fd = Connect(port_);
  Send(fd,
       "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
       "Content-Length: 2\r\n\r\n");
  out = ReadUntilQuiet(fd, 300ms);
  EXPECT_EQ(out, "HTTP/1.1 100 Continue\r\n\r\n");
  Send(fd, "ok");
  out = ReadUntilQuiet(fd, 300ms);
  EXPECT_NE(out.find("POST /a body=ok"), std::string::npos) << out;
  close(fd);
}

TEST_F(HttpServerTest, ChunkedBodiesOverTheLimitAreRefusedWhileReading) {
  HttpServerOptions o = Short();
  o.max_body_bytes = 8;
  Start(o);
  int fd = Connect(port_);
  Send(fd,
       "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n");
  const std::string out = ReadUntilQuiet(fd, 1s);
  EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out;
  EXPECT_EQ(handled_, 0);
  close(fd);
}

TEST_F(HttpServerTest, TheHostAllowListRefusesOtherNamesWith421) {
  HttpServerOptions o = Short();
  o.check_host = true;
  o.allowed_hosts = {"loadbox.internal"};
  Start(o);
  for (const auto& [host, status] :
       std::vector<std::pair<std::string, std::string>>{
           {"rebind.attacker.example:1", "421"},
           {"loadbox.internal:1", "200"},
           {"127.0.0.1:1", "200"}}) {
    int fd = Connect(port_);
    Send(fd, "GET /metrics HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    const std::string out = ReadUntilQuiet(fd, 300ms);
    EXPECT_EQ(out.substr(9, 3), status) << host << ": " << out;
    close(fd);
  }
  EXPECT_EQ(
      Metric("polar_loadd_http_requests_refused_total", "host_not_allowed"), 1);
}

TEST_F(HttpServerTest, ThePerIpLimitClosesExtraConnectionsFromOneAddress) {
  HttpServerOptions o = Short();
  o.max_connections_per_ip = 2;
  Start(o);
  int a = Connect(port_, "127.0.0.2");
  int b = Connect(port_, "127.0.0.2");
  int c = Connect(port_, "127.0.0.2");
  int other = Connect(port_, "127.0.0.3");
  EXPECT_TRUE(ClosedWithin(c, 300ms));
  EXPECT_FALSE(ClosedWithin(a, 100ms));
  EXPECT_FALSE(ClosedWithin(b, 50ms));
  Send(other, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(ReadUntilQuiet(other, 200ms).find("200 OK"), std::string::npos);
  EXPECT_EQ(
      Metric("polar_loadd_http_connections_refused_total", "per_ip_limit"), 1);
  for (int fd : {a, b, c, other}) close(fd);
}

TEST_F(HttpServerTest, AFullListenerEvictsItsOldestIdleConnectionForANewOne) {
  HttpServerOptions o = Short();
  o.max_connections = 3;
  o.timeouts.head = 5s;  // no deadline interferes
  o.timeouts.body_grace = 5s;
  Start(o);
  int oldest = Connect(port_, "127.0.0.2");
  std::this_thread::sleep_for(20ms);
  // A connection with a request in progress (a body half sent) is busy.
  int busy = Connect(port_, "127.0.0.3");
  Send(busy, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
  std::this_thread::sleep_for(20ms);
  int newer = Connect(port_, "127.0.0.4");
  std::this_thread::sleep_for(20ms);
  int fresh = Connect(port_, "127.0.0.5");
  EXPECT_TRUE(ClosedWithin(oldest, 300ms)) << "the oldest idle one goes";
  EXPECT_FALSE(ClosedWithin(newer, 50ms));
  Send(fresh, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(ReadUntilQuiet(fresh, 200ms).find("200 OK"), std::string::npos);
  EXPECT_EQ(Metric("polar_loadd_http_connections_dropped_total", "evicted"), 1);
  // The body in progress was never the victim.
  Send(busy, "67890");
  EXPECT_NE(ReadUntilQuiet(busy, 200ms).find("body=1234567890"),
            std::string::npos);
  for (int fd : {oldest, busy, newer, fresh}) close(fd);
}

TEST_F(HttpServerTest, WhenEveryConnectionIsBusyANewOneIsRefusedAndCounted) {
  HttpServerOptions o = Short();
  o.max_connections = 2;
  o.timeouts.body_grace = 5s;
  Start(o);
  std::vector<int> busy;
  for (const char* source : {"127.0.0.2", "127.0.0.3"}) {
    busy.push_back(Connect(port_, source));
    Send(busy.back(),
         "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n1");
  }
  std::this_thread::sleep_for(50ms);
  int refused = Connect(port_, "127.0.0.4");
  EXPECT_TRUE(ClosedWithin(refused, 300ms));
  EXPECT_EQ(
      Metric("polar_loadd_http_connections_refused_total", "connection_limit"),
      1);
  for (int fd : busy) close(fd);
  close(refused);
}

TEST_F(HttpServerTest, AHeadSentSlowlyIsCutAtTheHeadDeadlineNotKeptAlive) {
  Start(Short());  // head deadline 400 ms
  int fd = Connect(port_);
  const std::string head = "GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaa";
  const auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (char c : head) {
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    if (ClosedWithin(fd, 50ms)) {
      closed = true;
      break;
    }
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed);
  EXPECT_GE(took, 350ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(
      Metric("polar_loadd_http_connections_dropped_total", "head_timeout"), 1);
  close(fd);
}

TEST_F(HttpServerTest, ABodyBelowTheMinimumRateIsCutAfterTheGrace) {
  Start(Short());  // grace 300 ms, then 1000 B/s
  int fd = Connect(port_);
  Send(fd, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\nx");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(ClosedWithin(fd, 2s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(
      Metric("polar_loadd_http_connections_dropped_total", "body_timeout"), 1);
  close(fd);
}

TEST_F(HttpServerTest, AClientThatDoesNotReadItsResponseIsCutAtTheSendRate) {
  Start(Short());  // grace 300 ms, then 16 MiB/s
  int fd = Connect(port_);
  Send(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  // The 32 MB never fit the socket buffers (a few MB); nothing is read.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(
      Metric("polar_loadd_http_connections_dropped_total", "send_timeout"), 1);
  close(fd);
}

TEST_F(HttpServerTest, AnIdleKeptAliveConnectionClosesQuietly) {
  Start(Short());  // keep-alive 400 ms
  int fd = Connect(port_);
  Send(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(ReadUntilQuiet(fd, 200ms).find("200 OK"), std::string::npos);
  EXPECT_TRUE(ClosedWithin(fd, 1500ms));
  for (const char* reason :
       {"evicted", "head_timeout", "body_timeout", "send_timeout"})
    EXPECT_EQ(Metric("polar_loadd_http_connections_dropped_total", reason), 0)
        << reason;
  close(fd);
}

}  // namespace
}  // namespace polar
