// HttpsClient against a local TLS server (tests/support/h2_fault_server.py)
// that serves HTTP/2 or HTTP/1.1 by ALPN and HTTP/2 faults on cue (GOAWAY,
// RST_STREAM, REFUSED_STREAM, a small concurrency limit), with certificates
// from a private CA made here (tests/support/test_pki.h): every fault is a
// counted outcome or a resend, never a lost request, and the server's limits
// are kept.
#include "daemon/net/https_client.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/arrival_window.h"
#include "tests/support/process.h"
#include "tests/support/test_pki.h"

namespace polar::https_client_test {
namespace {

using namespace std::chrono_literals;
using testing::KeyPair;
using testing::Pki;

struct Server {
  std::unique_ptr<testing::Process> process;
  int port = 0;
  std::string url(const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(port);
  }
};

Server StartServer(const KeyPair& keys, std::vector<std::string> more = {}) {
  std::vector<std::string> args{POLAR_SOURCE_DIR
                                "/tests/support/h2_fault_server.py",
                                "--cert", keys.cert, "--key", keys.key};
  args.insert(args.end(), more.begin(), more.end());
  Server s;
  s.process = std::make_unique<testing::Process>("/usr/bin/python3", args);
  auto line = s.process->FirstStdoutLine(10s);
  if (!line || line->rfind("PORT ", 0) != 0) {
    throw std::runtime_error("h2_fault_server did not start: " +
                             s.process->Stderr());
  }
  s.port = std::stoi(line->substr(5));
  return s;
}

struct Fetched {
  std::vector<Response> responses;  // in the order they ended
  HttpsStats stats;
  std::size_t open_connections = 0;
};

struct FetchOptions {
  int requests = 1;
  bool sequential = false;  // the next request leaves when one ends
  std::size_t connections = 8;
  Duration timeout = 5s;
  Duration connect_timeout = 3s;
  std::string ca_file = Pki().ca;
};

// A client on its own loop; Fetch() may be called more than once.
class Rig {
 public:
  Rig(const std::string& url, const FetchOptions& o) {
    HttpsOptions h;
    h.target = *ParseHttpsTarget(url);
    h.token = "secret-token";
    h.user_agent = "polar-loadd/test";
    h.ca_file = o.ca_file;
    h.timeout = o.timeout;
    h.connect_timeout = o.connect_timeout;
    h.connections = o.connections;
    client_ = std::make_unique<HttpsClient>(loop_, clock_, h);
  }

  Fetched Fetch(int requests, bool sequential) {
    Fetched run;
    int sent = 0;
    std::function<void()> send_one = [&] {
      ++sent;
      Request r;
      r.method = Method::kPost;
      r.path = "/v1/events/ingest";
      r.body = R"({"events":[]})";
      r.intended = clock_.Now();
      client_->Send(std::move(r), [&](Response&& response) {
        run.responses.push_back(std::move(response));
        if (static_cast<int>(run.responses.size()) == requests) {
          loop_.Stop();
        } else if (sequential && sent < requests) {
          send_one();
        }
      });
    };
    for (int i = 0; i < (sequential ? 1 : requests); ++i) send_one();
    auto bound = loop_.AddTimerAfter(20s, [&] { loop_.Stop(); });  // a bound
    loop_.Run();
    loop_.Cancel(bound);
    run.stats = client_->stats();
    run.open_connections = client_->open_connections();
    return run;
  }

 private:
  EventLoop loop_;
  SystemClock clock_;
  std::unique_ptr<HttpsClient> client_;
};

Fetched Fetch(const std::string& url, FetchOptions o = {}) {
  Rig rig(url, o);
  return rig.Fetch(o.requests, o.sequential);
}

nlohmann::json Seen(const Response& r) { return nlohmann::json::parse(r.body); }

std::string Describe(const Response& r) {
  return std::string(OutcomeName(r.transport)) + " " +
         std::to_string(r.status) + " " + r.error + " " + r.body;
}

TEST(HttpsClient, ParsesHttpsBaseUrlsAndRefusesOthers) {
  auto a = ParseHttpsTarget("https://api.polar.sh");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "api.polar.sh");
  EXPECT_EQ(a->port, 443);
  EXPECT_FALSE(a->host_is_ip);
  EXPECT_EQ(a->authority, "api.polar.sh");
  auto b = ParseHttpsTarget("https://[::1]:8443/polar/");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 8443);
  EXPECT_TRUE(b->host_is_ip);
  EXPECT_EQ(b->authority, "[::1]:8443");
  EXPECT_EQ(b->path_prefix, "/polar");
  auto c = ParseHttpsTarget("https://127.0.0.1:9");
  ASSERT_TRUE(c && c->literal);
  EXPECT_EQ(c->literal->address.ss_family, AF_INET);
  for (const char* bad : {"http://127.0.0.1", "https://", "https://user@host",
                          "https://h:0", "https://h:65536", "https://h:x",
                          "https://[::1", "https://[nope]:1", "https://h?q"}) {
    EXPECT_FALSE(ParseHttpsTarget(bad)) << bad;
  }
}

TEST(HttpsClient, SpeaksHttp2WhenTheServerOffersIt) {
  Server server = StartServer(Pki().good);
  Fetched run = Fetch(server.url(), {.requests = 3, .sequential = true});
  ASSERT_EQ(run.responses.size(), 3u);
  for (const Response& r : run.responses) {
    ASSERT_EQ(r.transport, Outcome::kOk) << Describe(r);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.http_version, 2);
    EXPECT_EQ(Seen(r)["connection"], 1) << "one connection for all three";
    EXPECT_GE(r.done, r.sent);
  }
  EXPECT_EQ(run.stats.handshakes, 1u);
}

TEST(HttpsClient, FallsBackToHttp11WhenAlpnOffersNoH2) {
  Server server = StartServer(Pki().good, {"--alpn", "http/1.1"});
  Fetched run = Fetch(server.url(), {.requests = 6, .connections = 3});
  ASSERT_EQ(run.responses.size(), 6u);
  std::set<int> connections;
  for (const Response& r : run.responses) {
    ASSERT_EQ(r.transport, Outcome::kOk) << Describe(r);
    EXPECT_EQ(r.http_version, 11);
    connections.insert(Seen(r)["connection"].get<int>());
  }
  // One request at a time per connection, at most `connections` of them.
  EXPECT_GE(connections.size(), 2u);
  EXPECT_LE(connections.size(), 3u);
}

TEST(HttpsClient, Http2StreamsStayWithinTheServersConcurrencyLimit) {
  Server server =
      StartServer(Pki().good, {"--max-streams", "3", "--delay", "100"});
  Fetched run = Fetch(server.url(), {.requests = 12, .connections = 1});
  ASSERT_EQ(run.responses.size(), 12u);
  for (const Response& r : run.responses) {
    ASSERT_EQ(r.transport, Outcome::kOk) << Describe(r);
    EXPECT_LE(Seen(r)["open"].get<int>(), 3) << "more streams than allowed";
    EXPECT_EQ(Seen(r)["connection"], 1);
  }
}

TEST(HttpsClient, ANewConnectionOpensOnlyWhenTheOpenOnesAreFull) {
  Server server =
      StartServer(Pki().good, {"--max-streams", "4", "--delay", "300"});
  // The first request learns the server's limit; the next twelve need more
  // than one connection of four streams, but not one each.
  Rig rig(server.url(), {.connections = 8});
  Fetched warm = rig.Fetch(1, false);
  ASSERT_EQ(warm.responses.size(), 1u);
  Fetched run = rig.Fetch(12, false);
  ASSERT_EQ(run.responses.size(), 12u);
  std::map<int, int> per_connection;
  for (const Response& r : run.responses) {
    ASSERT_EQ(r.transport, Outcome::kOk) << Describe(r);
    EXPECT_LE(Seen(r)["open"].get<int>(), 4);
    ++per_connection[Seen(r)["connection"].get<int>()];
  }
  EXPECT_GE(per_connection.size(), 2u);
  EXPECT_LE(per_connection.size(), 3u);
  EXPECT_LE(run.stats.connections_opened, 3u) << "the first one included";
}

TEST(HttpsClient, RstStreamEndsOnlyItsOwnRequestAsInvalidResponse) {
  Server server = StartServer(Pki().good, {"--rst-every", "3"});
  Fetched run = Fetch(server.url(), {.requests = 9, .sequential = true});
  ASSERT_EQ(run.responses.size(), 9u);
  int reset = 0;
  for (std::size_t i = 0; i < run.responses.size(); ++i) {
    const Response& r = run.responses[i];
    if (i % 3 == 2) {
      EXPECT_EQ(r.transport, Outcome::kInvalidResponse) << Describe(r);
      EXPECT_NE(r.error.find("INTERNAL_ERROR"), std::string::npos) << r.error;
      ++reset;
    } else {
      ASSERT_EQ(r.transport, Outcome::kOk) << Describe(r);
      EXPECT_EQ(Seen(r)["connection"], 1)
          << "a reset stream kept its connection";
    }
  }
  EXPECT_EQ(reset, 3);
  EXPECT_EQ(run.stats.connections_opened, 1u);
}

TEST(HttpsClient, ARefusedStreamIsSentAgainOnce) {
  Server server = StartServer(Pki().good, {"--refuse-every", "2"});
  Fetched run = Fetch(server.url(), {.requests = 4, .sequential = true});
  ASSERT_EQ(run.responses.size(), 4u);
  for (const Response& r : run.responses) {
    ASSERT_EQ(r.transport, Outcome::kOk) << Describe(r);
  }
  EXPECT_GE(run.stats.streams_refused, 2u);
  EXPECT_EQ(run.stats.requests_resent, run.stats.streams_refused);
}

TEST(HttpsClient, AStreamRefusedTwiceIsAnInvalidResponse) {
  Server server = StartServer(Pki().good, {"--refuse-every", "1"});
  Fetched run = Fetch(server.url(), {.requests = 1});
  ASSERT_EQ(run.responses.size(), 1u);
  EXPECT_EQ(run.responses[0].transport, Outcome::kInvalidResponse);
  EXPECT_NE(run.responses[0].error.find("REFUSED_STREAM"), std::string::npos)
      << run.responses[0].error;
  EXPECT_EQ(run.stats.streams_refused, 2u);
  EXPECT_EQ(run.stats.requests_resent, 1u);
}

TEST(HttpsClient,
     AfterGoawayWhatTheServerDidNotProcessGoesOutOnANewConnection) {
  Server server = StartServer(Pki().good, {"--goaway-at", "3"});
  Fetched run = Fetch(server.url(), {.requests = 6});
  ASSERT_EQ(run.responses.size(), 6u);
  std::map<int, int> per_connection;
  for (const Response& r : run.responses) {
    ASSERT_EQ(r.transport, Outcome::kOk) << Describe(r);
    ++per_connection[Seen(r)["connection"].get<int>()];
  }
  EXPECT_EQ(per_connection[1], 2) << "the two before the GOAWAY's last id";
  EXPECT_EQ(per_connection[2], 4) << "the rest, sent again";
  EXPECT_EQ(run.stats.goaways, 1u);
  EXPECT_EQ(run.stats.streams_refused, 4u);
  EXPECT_EQ(run.stats.requests_resent, 4u);
}

TEST(HttpsClient, ReconnectsResumeTheTlsSessionOverBothProtocols) {
  for (const char* alpn : {"h2,http/1.1", "http/1.1"}) {
    SCOPED_TRACE(alpn);
    Server server =
        StartServer(Pki().good, {"--alpn", alpn, "--close-after", "1"});
    Fetched run = Fetch(server.url(), {.requests = 3, .sequential = true});
    ASSERT_EQ(run.responses.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      const Response& r = run.responses[i];
      ASSERT_EQ(r.transport, Outcome::kOk) << Describe(r);
      EXPECT_EQ(Seen(r)["connection"], static_cast<int>(i + 1));
      EXPECT_EQ(Seen(r)["resumed"], i > 0) << "request " << i;
    }
    EXPECT_EQ(run.stats.handshakes, 3u);
    EXPECT_EQ(run.stats.handshakes_resumed, 2u);
  }
}

TEST(HttpsClient, AHostNameIsResolvedAndCheckedAgainstTheCertificate) {
  Server server = StartServer(Pki().good);
  Fetched run = Fetch(server.url("localhost"), {.requests = 2});
  ASSERT_EQ(run.responses.size(), 2u);
  for (const Response& r : run.responses) {
    ASSERT_EQ(r.transport, Outcome::kOk) << Describe(r);
  }
}

TEST(HttpsClient, AnUnknownCaIsATlsError) {
  Server server = StartServer(Pki().unknown_ca);
  Fetched run = Fetch(server.url(), {.requests = 3});
  ASSERT_EQ(run.responses.size(), 3u);
  for (const Response& r : run.responses) {
    EXPECT_EQ(r.transport, Outcome::kTlsError) << Describe(r);
    EXPECT_NE(r.error.find("unable to get local issuer certificate"),
              std::string::npos)
        << r.error;
  }
}

TEST(HttpsClient, TheSystemTrustStoreDoesNotTrustAPrivateCa) {
  Server server = StartServer(Pki().good);
  Fetched run = Fetch(server.url(), {.requests = 1, .ca_file = ""});
  ASSERT_EQ(run.responses.size(), 1u);
  EXPECT_EQ(run.responses[0].transport, Outcome::kTlsError)
      << Describe(run.responses[0]);
}

TEST(HttpsClient, ACertificateForAnotherHostIsATlsError) {
  Server server = StartServer(Pki().wrong_host);
  for (const char* host : {"127.0.0.1", "localhost"}) {
    Fetched run = Fetch(server.url(host), {.requests = 1});
    ASSERT_EQ(run.responses.size(), 1u);
    const Response& r = run.responses[0];
    EXPECT_EQ(r.transport, Outcome::kTlsError) << Describe(r);
    EXPECT_NE(r.error.find("mismatch"), std::string::npos) << r.error;
  }
}

TEST(HttpsClient, AnExpiredCertificateIsATlsError) {
  Server server = StartServer(Pki().expired);
  Fetched run = Fetch(server.url(), {.requests = 1});
  ASSERT_EQ(run.responses.size(), 1u);
  EXPECT_EQ(run.responses[0].transport, Outcome::kTlsError);
  EXPECT_NE(run.responses[0].error.find("expired"), std::string::npos)
      << run.responses[0].error;
}

TEST(HttpsClient, AStalledHandshakeIsATimeoutAfterTheConnectTimeout) {
  Server server = StartServer(Pki().good, {"--stall-handshake"});
  const auto start = std::chrono::steady_clock::now();
  Fetched run = Fetch(server.url(), {.requests = 4, .connect_timeout = 300ms});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(run.responses.size(), 4u);
  for (const Response& r : run.responses) {
    EXPECT_EQ(r.transport, Outcome::kTimeout) << Describe(r);
    EXPECT_EQ(r.error, "TLS handshake timed out");
  }
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
  EXPECT_EQ(run.open_connections, 0u) << "the stalled connection was closed";
}

TEST(HttpsClient, ARequestWithoutAnAnswerIsATimeoutAndFreesItsStream) {
  Server server = StartServer(Pki().good, {"--delay", "2000"});
  Fetched run = Fetch(server.url(), {.requests = 2, .timeout = 300ms});
  ASSERT_EQ(run.responses.size(), 2u);
  for (const Response& r : run.responses) {
    EXPECT_EQ(r.transport, Outcome::kTimeout) << Describe(r);
  }
  EXPECT_EQ(run.open_connections, 1u) << "HTTP/2 keeps the connection";
}

// The `nth` (from 1) "WROTE <before> <after>" line of a server started with
// --report-writes: when it wrote an answer, on CLOCK_MONOTONIC (which
// steady_clock, and so SystemClock::Now(), reads). Waits up to `timeout`.
std::optional<std::pair<MonoTime, MonoTime>> WaitWrote(
    testing::Process& server, int nth, std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::istringstream out(server.Stdout());
    std::string line;
    int seen = 0;
    while (std::getline(out, line)) {
      long long before = 0;
      long long after = 0;
      if (std::sscanf(line.c_str(), "WROTE %lld %lld", &before, &after) == 2 &&
          ++seen == nth) {
        return std::pair{MonoTime{std::chrono::nanoseconds(before)},
                         MonoTime{std::chrono::nanoseconds(after)}};
      }
    }
    if (std::chrono::steady_clock::now() >= give_up) return std::nullopt;
    std::this_thread::sleep_for(1ms);
  }
}

// An answer that waits in the socket while the loop is busy (or batched
// into its next wake-up) is dated by when it reached the kernel: the 100 ms
// the loop spent elsewhere is not service time.
TEST(HttpsClient, AnAnswerReadLateIsDatedByItsArrival) {
  // Answers leave 20 ms after their request, so after the busy timer below
  // has started (due timers run before I/O in a wake-up).
  Server server = StartServer(Pki().good, {"--delay", "20", "--report-writes"});
  EventLoop loop;
  SystemClock clock;
  HttpsOptions h;
  h.target = *ParseHttpsTarget(server.url());
  h.ca_file = Pki().ca;
  HttpsClient client(loop, clock, h);
  std::vector<Response> out;
  MonoTime read_at{};
  auto send = [&] {
    Request r;
    r.path = "/v1/events/ingest";
    r.intended = clock.Now();
    client.Send(std::move(r), [&](Response&& response) {
      read_at = clock.Now();
      out.push_back(std::move(response));
      loop.Stop();
    });
  };
  send();                                         // connects and warms up
  loop.AddTimerAfter(10s, [&] { loop.Stop(); });  // a bound
  loop.Run();
  ASSERT_EQ(out.size(), 1u);
  send();
  // Right after the send leaves, the loop blocks until the server has written
  // the answer (bounded, whatever the box's load does to the server's 20 ms),
  // then 100 ms more: the answer waits in the socket and is read afterwards.
  std::optional<std::pair<MonoTime, MonoTime>> written;
  loop.AddTimerAfter(1ms, [&] {
    written = WaitWrote(*server.process, 2, 2000ms);
    std::this_thread::sleep_for(100ms);
  });
  loop.Run();
  ASSERT_TRUE(written) << "the server did not answer within 2 s";
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(out[1].transport, Outcome::kOk) << Describe(out[1]);
  testing::ExpectDatedBetween(out[1].done, written->first, written->second);
  EXPECT_GE(read_at - out[1].done, 90ms) << "dated when read";
}

TEST(HttpsClient, NothingListeningIsAConnectError) {
  int port = 0;
  {
    Server s = StartServer(Pki().good);
    port = s.port;
  }
  Fetched run =
      Fetch("https://127.0.0.1:" + std::to_string(port), {.requests = 2});
  ASSERT_EQ(run.responses.size(), 2u);
  for (const Response& r : run.responses) {
    EXPECT_EQ(r.transport, Outcome::kConnectError) << Describe(r);
  }
}

TEST(HttpsClient, AnUnreadableCaFileFailsEveryRequestWithItsReason) {
  Server server = StartServer(Pki().good);
  Fetched run =
      Fetch(server.url(), {.requests = 2, .ca_file = "/nonexistent.pem"});
  ASSERT_EQ(run.responses.size(), 2u);
  for (const Response& r : run.responses) {
    EXPECT_EQ(r.transport, Outcome::kTlsError);
    EXPECT_NE(r.error.find("/nonexistent.pem"), std::string::npos) << r.error;
  }
}

}  // namespace
}  // namespace polar::https_client_test
