#include "daemon/net/http1_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/net/http_engine.h"
#include "tests/support/arrival_window.h"
#include "tests/support/scripted_http_server.h"

namespace polar {
namespace {

using namespace std::chrono_literals;
using testing::ExpectDatedBetween;
using testing::ScriptedHttpServer;
using Reply = ScriptedHttpServer::Reply;

class Http1ClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<Http1Client> Client(const std::string& base_url,
                                      Duration timeout = 2s,
                                      std::size_t connections = 8) {
    Http1Options o;
    auto target = PlainHttpTarget(base_url);
    EXPECT_TRUE(target) << base_url;
    o.target = *target;
    o.token = "polar_oat_secret";
    o.user_agent = "polar-loadd/test";
    o.timeout = timeout;
    o.connect_timeout = 1s;
    o.connections = connections;
    o.max_response_bytes = 4096;
    return std::make_unique<Http1Client>(loop_, clock_, o);
  }

  Request Post(std::string body = R"({"events":[]})") {
    Request r;
    r.method = Method::kPost;
    r.path = "/v1/events/ingest";
    r.body = std::move(body);
    r.intended = clock_.Now();
    return r;
  }

  // Sends `requests` one after another (each after the previous answer) and
  // runs the loop until all are answered or 5 s pass.
  std::vector<Response> SendSequentially(Http1Client& client, int requests) {
    std::vector<Response> out;
    std::function<void()> next = [&] {
      if (static_cast<int>(out.size()) == requests) {
        loop_.Stop();
        return;
      }
      client.Send(Post(), [&](Response&& r) {
        out.push_back(std::move(r));
        next();
      });
    };
    next();
    auto guard = loop_.AddTimerAfter(5s, [&] { loop_.Stop(); });
    loop_.Run();
    loop_.Cancel(guard);
    return out;
  }

  EventLoop loop_;
  SystemClock clock_;
};

TEST(PlainHttpTarget, TakesLiteralAddressesAndLeavesTheRestToCurl) {
  auto v4 = PlainHttpTarget("http://127.0.0.1:8000");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host_header, "127.0.0.1:8000");
  EXPECT_EQ(v4->path_prefix, "");
  auto v6 = PlainHttpTarget("http://[::1]:9000/prefix/");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->address.ss_family, AF_INET6);
  EXPECT_EQ(v6->path_prefix, "/prefix");
  EXPECT_TRUE(PlainHttpTarget("http://localhost:8000"));
  EXPECT_FALSE(PlainHttpTarget("https://127.0.0.1:8000"));
  EXPECT_FALSE(PlainHttpTarget("http://polar.internal:8000"));
  EXPECT_FALSE(PlainHttpTarget("http://127.0.0.1:0"));
}

TEST_F(Http1ClientTest, KeepAliveCarriesManyRequestsOverOneConnection) {
  ScriptedHttpServer server([](const std::string&, int) {
    return Reply{ScriptedHttpServer::Ok(R"({"inserted":0})")};
  });
  auto client = Client(server.base_url());
  auto responses = SendSequentially(*client, 10);
  ASSERT_EQ(responses.size(), 10u);
  for (const auto& r : responses) {
    EXPECT_EQ(r.transport, Outcome::kOk) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"inserted":0})");
  }
  EXPECT_EQ(server.connections_accepted(), 1);
}

TEST_F(Http1ClientTest,
       BodiesCarryContentLengthAndTheTokenOnlyWhenAuthenticated) {
  ScriptedHttpServer server([](const std::string&, int) {
    return Reply{ScriptedHttpServer::Ok("{}")};
  });
  auto client = Client(server.base_url());
  int answered = 0;
  Request anonymous;
  anonymous.method = Method::kGet;
  anonymous.path = "/v1/checkouts/client/abc";
  anonymous.authenticated = false;
  client->Send(Post(R"({"a":1})"), [&](Response&&) { ++answered; });
  client->Send(std::move(anonymous), [&](Response&&) {
    if (++answered == 2) loop_.Stop();
  });
  loop_.AddTimerAfter(5s, [&] { loop_.Stop(); });
  loop_.Run();
  ASSERT_EQ(answered, 2);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  std::string post =
      requests[0].rfind("POST", 0) == 0 ? requests[0] : requests[1];
  std::string get =
      requests[0].rfind("GET", 0) == 0 ? requests[0] : requests[1];
  EXPECT_EQ(post.rfind("POST /v1/events/ingest HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(post.find("\r\nContent-Length: 7\r\n"), std::string::npos);
  EXPECT_NE(post.find("\r\nAuthorization: Bearer polar_oat_secret\r\n"),
            std::string::npos);
  EXPECT_NE(post.find("\r\nHost: 127.0.0.1:"), std::string::npos);
  EXPECT_EQ(post.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(post.substr(post.size() - 7), R"({"a":1})");
  EXPECT_EQ(get.find("Authorization"), std::string::npos);
  EXPECT_EQ(get.find("Content-Length"), std::string::npos);
}

TEST_F(Http1ClientTest, ChunkedAndCloseDelimitedBodiesAreReassembled) {
  ScriptedHttpServer server([](const std::string&, int index) {
    if (index == 0) {
      return Reply{
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "4\r\n{\"in\r\n9;ext=1\r\nserted\":7\r\n1\r\n}\r\n0\r\nX-T: "
          "1\r\n\r\n"};
    }
    return Reply{"HTTP/1.1 200 OK\r\n\r\n{\"until\":\"close\"}", true};
  });
  auto client = Client(server.base_url());
  auto responses = SendSequentially(*client, 2);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[0].transport, Outcome::kOk) << responses[0].error;
  EXPECT_EQ(responses[0].body, R"({"inserted":7})");
  EXPECT_EQ(responses[1].transport, Outcome::kOk) << responses[1].error;
  EXPECT_EQ(responses[1].body, R"({"until":"close"})");
}

TEST_F(Http1ClientTest, IdleConnectionsTheServerClosesAreDroppedNotReused) {
  // The server closes after every answer without saying so (as uvicorn does
  // with idle keep-alive connections): the next request meets a dead socket.
  ScriptedHttpServer server([](const std::string&, int) {
    return Reply{ScriptedHttpServer::Ok("{}"), true};
  });
  auto client = Client(server.base_url());
  std::vector<Response> responses;
  for (int i = 0; i < 3; ++i) {
    // Let the close arrive before the next request, so it is reused stale.
    auto more = SendSequentially(*client, 1);
    responses.insert(responses.end(), more.begin(), more.end());
    usleep(20'000);
  }
  ASSERT_EQ(responses.size(), 3u);
  for (const auto& r : responses)
    EXPECT_EQ(r.transport, Outcome::kOk) << r.error;
  EXPECT_EQ(server.connections_accepted(), 3);
}

TEST_F(Http1ClientTest,
       ARequestMeetingAConnectionClosedUnderItIsSentAgainOnce) {
  // The second request arrives as the server gives up on the connection: it
  // closes without a byte of answer. That request is retried on a fresh
  // connection; a close without an answer on that one is a real failure.
  ScriptedHttpServer server([](const std::string&, int index) {
    if (index == 1 || index == 3 || index == 4) return Reply{"", true};
    return Reply{ScriptedHttpServer::Ok("{}")};
  });
  auto client = Client(server.base_url());
  auto responses = SendSequentially(*client, 3);
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[0].transport, Outcome::kOk) << responses[0].error;
  EXPECT_EQ(responses[1].transport, Outcome::kOk) << responses[1].error;
  // Third request: stale close (index 3), retried, closed again (index 4).
  EXPECT_EQ(responses[2].transport, Outcome::kInvalidResponse);
  EXPECT_EQ(server.requests().size(), 5u);
  EXPECT_EQ(server.connections_accepted(), 3);
}

TEST_F(Http1ClientTest, ASilentServerEndsInATimeoutNearTheConfiguredLimit) {
  ScriptedHttpServer server([](const std::string&, int) {
    return Reply{"", false, true};
  });
  auto client = Client(server.base_url(), 300ms);
  auto started = std::chrono::steady_clock::now();
  auto responses = SendSequentially(*client, 1);
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].transport, Outcome::kTimeout);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 1s);
}

TEST_F(Http1ClientTest,
       ARefusedConnectionIsAConnectErrorDeliveredAfterSendReturns) {
  int port;
  {
    ScriptedHttpServer gone([](const std::string&, int) { return Reply{}; });
    port = gone.port();
  }
  auto client = Client("http://127.0.0.1:" + std::to_string(port));
  bool returned = false;
  bool called_early = false;
  std::optional<Response> got;
  client->Send(Post(), [&](Response&& r) {
    called_early = !returned;
    got = std::move(r);
    loop_.Stop();
  });
  returned = true;
  loop_.AddTimerAfter(3s, [&] { loop_.Stop(); });
  loop_.Run();
  ASSERT_TRUE(got);
  EXPECT_FALSE(called_early);
  EXPECT_EQ(got->transport, Outcome::kConnectError);
}

TEST_F(Http1ClientTest, GarbageAndOversizedAnswersAreInvalidResponses) {
  ScriptedHttpServer server([](const std::string&, int index) {
    if (index == 0) return Reply{"SMTP ready\r\n\r\n", true};
    return Reply{ScriptedHttpServer::Ok(std::string(10'000, 'x'))};
  });
  auto client = Client(server.base_url());
  auto responses = SendSequentially(*client, 2);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[0].transport, Outcome::kInvalidResponse);
  EXPECT_EQ(responses[1].transport, Outcome::kInvalidResponse);
  EXPECT_NE(responses[1].error.find("size limit"), std::string::npos);
}

TEST_F(Http1ClientTest, ContinueIsSkippedAndRetryAfterIsRead) {
  ScriptedHttpServer server([](const std::string&, int) {
    return Reply{"HTTP/1.1 100 Continue\r\n\r\n" +
                 ScriptedHttpServer::Ok("", 429, "Retry-After: 7\r\n")};
  });
  auto client = Client(server.base_url());
  auto responses = SendSequentially(*client, 1);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].transport, Outcome::kOk);
  EXPECT_EQ(responses[0].status, 429);
  EXPECT_EQ(responses[0].retry_after, std::chrono::seconds(7));
}

TEST_F(Http1ClientTest, RequestsBeyondTheConnectionLimitWaitTheirTurn) {
  std::atomic<int> seen{0};
  ScriptedHttpServer server([&](const std::string&, int) {
    ++seen;
    usleep(50'000);
    return Reply{ScriptedHttpServer::Ok("{}")};
  });
  auto client = Client(server.base_url(), 2s, /*connections=*/2);
  int answered = 0;
  for (int i = 0; i < 6; ++i) {
    client->Send(Post(), [&](Response&& r) {
      EXPECT_EQ(r.transport, Outcome::kOk) << r.error;
      if (++answered == 6) loop_.Stop();
    });
  }
  EXPECT_EQ(client->in_flight(), 6u);
  EXPECT_LE(client->active(), 2u);
  loop_.AddTimerAfter(5s, [&] { loop_.Stop(); });
  loop_.Run();
  EXPECT_EQ(answered, 6);
  EXPECT_EQ(server.connections_accepted(), 2);
  EXPECT_EQ(client->in_flight(), 0u);
}

// The names of the headers in one raw request, lower-cased, without Host's
// and Content-Length's values mattering.
std::set<std::string> HeaderNames(const std::string& request) {
  std::set<std::string> names;
  std::istringstream in(request.substr(0, request.find("\r\n\r\n")));
  std::string line;
  std::getline(in, line);  // request line
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    names.insert(name);
  }
  return names;
}

// An answer that waits in the socket while the loop is busy (or batched
// into its next wake-up) is dated by when it reached the kernel: the 100 ms
// the loop spent elsewhere is not service time.
TEST_F(Http1ClientTest, AnAnswerReadLateIsDatedByItsArrival) {
  // The second answer leaves 20 ms after its request, so after the busy timer
  // below has started (due timers run before I/O in a wake-up; without the
  // wait it would be read in the wake-up that sends the request when a new
  // connection opens).
  ScriptedHttpServer server([](const std::string&, int index) {
    if (index == 1) std::this_thread::sleep_for(20ms);
    return Reply{ScriptedHttpServer::Ok(R"({"inserted":1})")};
  });
  auto client = Client(server.base_url());
  ASSERT_EQ(SendSequentially(*client, 1).size(), 1u);  // connected, warm
  std::vector<Response> out;
  MonoTime read_at{};
  client->Send(Post(), [&](Response&& r) {
    read_at = clock_.Now();
    out.push_back(std::move(r));
    loop_.Stop();
  });
  // The loop stays busy for 100 ms after the answer is in the socket: it
  // waits (bounded) for the server to have written it, whatever the box's
  // load does to the server thread's 20 ms.
  std::optional<ScriptedHttpServer::Written> written;
  loop_.AddTimerAfter(1ms, [&] {
    written = server.WaitWritten(1, 2s);
    std::this_thread::sleep_for(100ms);
  });
  auto bound = loop_.AddTimerAfter(5s, [&] { loop_.Stop(); });
  loop_.Run();
  loop_.Cancel(bound);
  ASSERT_TRUE(written) << "the server did not answer within 2 s";
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].transport, Outcome::kOk) << out[0].error;
  ExpectDatedBetween(out[0].done, written->before, written->after);
  EXPECT_GE(read_at - out[0].done, 90ms) << "dated when read";
}

// What one HttpEngine answers for one request, and what the server saw.
struct EngineRun {
  bool builtin = false;
  Response response;
  std::string request;
};

EngineRun RunEngine(const std::string& base_url, bool builtin_http1,
                    const std::function<std::string()>& last_request) {
  EventLoop loop;
  SystemClock clock;
  EngineOptions o;
  o.base_url = base_url;
  o.token = "polar_oat_secret";
  o.user_agent = "polar-loadd/test";
  o.timeout = 2s;
  o.builtin_http1 = builtin_http1;
  EngineRun run;
  {
    HttpEngine engine(loop, clock, o);
    run.builtin = engine.uses_builtin_http1();
    Request r;
    r.method = Method::kPost;
    r.path = "/v1/events/ingest";
    r.body = R"({"events":[]})";
    r.intended = clock.Now();
    engine.Send(std::move(r), [&](Response&& response) {
      run.response = std::move(response);
      loop.Stop();
    });
    auto guard = loop.AddTimerAfter(5s, [&] { loop.Stop(); });
    loop.Run();
    loop.Cancel(guard);
  }
  run.request = last_request();
  return run;
}

TEST(HttpEngineBuiltinHttp1,
     PlainLiteralTargetsUseItAndAnswerExactlyAsCurlDoes) {
  ScriptedHttpServer server([](const std::string&, int) {
    return Reply{ScriptedHttpServer::Ok(R"({"error":"TooManyRequests"})", 429,
                                        "Retry-After: 7\r\n")};
  });
  auto last = [&] { return server.requests().back(); };
  EngineRun fast = RunEngine(server.base_url(), true, last);
  EngineRun curl = RunEngine(server.base_url(), false, last);
  EXPECT_TRUE(fast.builtin);
  EXPECT_FALSE(curl.builtin);
  for (const EngineRun* run : {&fast, &curl}) {
    EXPECT_EQ(run->response.transport, Outcome::kOk) << run->response.error;
    EXPECT_EQ(run->response.status, 429);
    EXPECT_EQ(run->response.http_version, 11);
    EXPECT_EQ(run->response.body, R"({"error":"TooManyRequests"})");
    EXPECT_EQ(run->response.retry_after, std::chrono::seconds(7));
    EXPECT_NE(run->request.find("Authorization: Bearer polar_oat_secret"),
              std::string::npos);
    EXPECT_NE(run->request.find("Content-Length: 13"), std::string::npos);
  }
  // The target sees the same request either way (curl's "Expect:" removal
  // leaves no header behind).
  EXPECT_EQ(HeaderNames(fast.request), HeaderNames(curl.request))
      << fast.request << "\n---\n"
      << curl.request;
}

// (https:// targets have their own built-in client: http_engine_tls_test.)
TEST(HttpEngineBuiltinHttp1, OnlyPlainHttpLiteralTargetsUseIt) {
  EventLoop loop;
  SystemClock clock;
  EngineOptions o;
  o.builtin_http1 = true;
  o.base_url = "https://127.0.0.1:8443";
  EXPECT_FALSE(HttpEngine(loop, clock, o).uses_builtin_http1());
  o.base_url = "http://polar.internal:8000";
  EXPECT_FALSE(HttpEngine(loop, clock, o).uses_builtin_http1());
  o.base_url = "http://[::1]:8000";
  EXPECT_TRUE(HttpEngine(loop, clock, o).uses_builtin_http1());
}

}  // namespace
}  // namespace polar
