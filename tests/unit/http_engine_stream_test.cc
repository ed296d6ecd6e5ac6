// HttpEngine streams (OpenStream) against a local chunked text/event-stream
// server: head, pieces and end in order; the stream's own deadline instead of
// the request timeout; cancellation (on the wire, queued, from inside a
// handler) that frees the connection; the buffer bound; plain answers and
// refused connections through the same handlers.
#include <gtest/gtest.h>

#include <string>

#include "daemon/net/http_engine.h"
#include "tests/support/test_http_server.h"

namespace polar {
namespace {

using namespace std::chrono_literals;

struct Seen {
  int heads = 0;
  Response head;
  std::string data;
  int data_calls = 0;
  int ends = 0;
  Response end;
};

class StreamTest : public ::testing::Test {
 protected:
  void Make(const std::string& base_url, std::size_t connections = 4,
            Duration timeout = 5s) {
    EngineOptions o;
    o.base_url = base_url;
    o.token = "t";
    o.connections = connections;
    o.timeout = timeout;
    engine_ = std::make_unique<HttpEngine>(loop_, clock_, o);
  }

  StreamHandlers Handlers(Seen& seen) {
    StreamHandlers h;
    h.on_head = [&seen](const Response& head) {
      ++seen.heads;
      seen.head = head;
    };
    h.on_data = [&seen](std::string_view chunk) {
      ++seen.data_calls;
      seen.data.append(chunk);
    };
    h.on_end = [&seen](Response&& end) {
      ++seen.ends;
      seen.end = std::move(end);
    };
    return h;
  }

  StreamId Open(Seen& seen, StreamOptions options = {}) {
    Request r;
    r.path = "/v1/checkouts/client/s/stream";
    r.authenticated = false;
    r.intended = clock_.Now();
    return engine_->OpenStream(std::move(r), options, Handlers(seen));
  }

  // Runs the loop until `done` holds or `limit` passes (then the test fails
  // on its own assertions rather than hanging).
  void RunUntil(const std::function<bool()>& done, Duration limit = 5s) {
    const MonoTime end = clock_.Now() + limit;
    std::function<void()> check = [&] {
      if (done() || clock_.Now() >= end) {
        loop_.Stop();
        return;
      }
      loop_.AddTimerAfter(5ms, check);
    };
    loop_.AddTimerAfter(0ms, check);
    loop_.Run();
  }

  EventLoop loop_;
  SystemClock clock_;
  std::unique_ptr<HttpEngine> engine_;
};

TEST_F(StreamTest, HeadPiecesAndEndArriveInOrder) {
  testing::TestHttpServerOptions so;
  so.stream_chunks = {"data: {\"key\":\"a\"}\r\n\r\n", ": ping\r\n\r\n",
                      "data: {\"key\":\"b\"}\r\n\r\n"};
  so.stream_gap = 30ms;
  testing::TestHttpServer server(so);
  Make(server.base_url());
  Seen seen;
  StreamId id = Open(seen);
  EXPECT_NE(id, kNoStream);
  EXPECT_EQ(seen.heads, 0) << "no handler runs inside OpenStream";
  RunUntil([&] { return seen.ends > 0; });
  ASSERT_EQ(seen.ends, 1);
  EXPECT_EQ(seen.heads, 1);
  EXPECT_EQ(seen.head.status, 200);
  EXPECT_EQ(seen.head.content_type, "text/event-stream");
  EXPECT_LE(seen.head.intended, seen.head.sent);
  EXPECT_LE(seen.head.sent, seen.head.done);
  EXPECT_EQ(seen.data,
            "data: {\"key\":\"a\"}\r\n\r\n: ping\r\n\r\ndata: {\"key\":\"b\"}"
            "\r\n\r\n");
  EXPECT_GE(seen.data_calls, 2) << "pieces 30 ms apart arrive separately";
  EXPECT_EQ(seen.end.transport, Outcome::kOk);
  EXPECT_EQ(seen.end.status, 200);
  EXPECT_GE(seen.end.done - seen.head.done, 60ms);
  EXPECT_EQ(engine_->in_flight(), 0u);
  EXPECT_EQ(engine_->streams(), 0u);
}

TEST_F(StreamTest, AStreamOutlivesTheRequestTimeoutAndEndsAtItsDeadline) {
  testing::TestHttpServerOptions so;
  so.stream_chunks = {"data: 1\n\n", "data: 2\n\n"};
  so.stream_gap = 150ms;
  so.stream_end = false;
  testing::TestHttpServer server(so);
  Make(server.base_url(), 4, /*timeout=*/100ms);
  Seen seen;
  StreamOptions options;
  options.deadline = 600ms;
  const MonoTime start = clock_.Now();
  Open(seen, options);
  RunUntil([&] { return seen.ends > 0; });
  ASSERT_EQ(seen.ends, 1);
  EXPECT_EQ(seen.data, "data: 1\n\ndata: 2\n\n") << "past the 100 ms timeout";
  EXPECT_EQ(seen.end.transport, Outcome::kTimeout);
  EXPECT_EQ(seen.end.status, 200) << "the head had come";
  EXPECT_GE(seen.end.done - start, 590ms);
  EXPECT_LT(seen.end.done - start, 2s);
}

TEST_F(StreamTest, CancellingStopsTheHandlersAndFreesTheConnection) {
  testing::TestHttpServerOptions so;
  so.stream_chunks = {"data: 1\n\n"};
  so.stream_end = false;
  testing::TestHttpServer server(so);
  Make(server.base_url(), /*connections=*/1);
  Seen seen;
  StreamId id = Open(seen);
  RunUntil([&] { return !seen.data.empty(); });
  ASSERT_EQ(seen.heads, 1);
  engine_->CancelStream(id);
  engine_->CancelStream(id);  // twice is harmless
  EXPECT_EQ(engine_->in_flight(), 0u);
  // The only connection is free again: a plain request goes through.
  Response answer;
  bool answered = false;
  Request r;
  r.path = "/v1/events/ingest";
  r.method = Method::kPost;
  r.intended = clock_.Now();
  // The server streams every answer; what matters is that it is sent.
  engine_->Send(std::move(r), [&](Response&& resp) {
    answered = true;
    answer = std::move(resp);
  });
  RunUntil([&] { return server.requests() >= 2; });
  EXPECT_EQ(server.requests(), 2u);
  EXPECT_EQ(seen.ends, 0) << "no handler after CancelStream";
  EXPECT_EQ(seen.heads, 1);
  (void)answered;
}

TEST_F(StreamTest, AQueuedStreamCanBeCancelledBeforeItIsSent) {
  testing::TestHttpServerOptions so;
  so.stream_chunks = {"data: 1\n\n"};
  so.stream_end = false;
  testing::TestHttpServer server(so);
  Make(server.base_url(), /*connections=*/1);
  Seen first, second;
  StreamId a = Open(first);
  StreamId b = Open(second);
  EXPECT_EQ(engine_->streams(), 2u);
  RunUntil([&] { return first.heads > 0; });
  engine_->CancelStream(b);  // still waiting for the connection
  EXPECT_EQ(engine_->streams(), 1u);
  engine_->CancelStream(a);
  RunUntil([] { return false; }, 200ms);
  EXPECT_EQ(server.requests(), 1u) << "the cancelled stream was never sent";
  EXPECT_EQ(second.heads + second.ends, 0);
  EXPECT_EQ(engine_->in_flight(), 0u);
}

TEST_F(StreamTest, HandlersMayCancelAndSendFromInsideOnData) {
  testing::TestHttpServerOptions so;
  so.stream_chunks = {"data: 1\n\n", "data: 2\n\n"};
  so.stream_gap = 20ms;
  so.stream_end = false;
  testing::TestHttpServer server(so);
  Make(server.base_url(), /*connections=*/1);
  StreamId id = kNoStream;
  int data_calls = 0, ends = 0, sends_answered = 0;
  StreamHandlers h;
  h.on_data = [&](std::string_view) {
    ++data_calls;
    engine_->CancelStream(id);  // the handler's own stream
    Request r;
    r.intended = clock_.Now();
    engine_->Send(std::move(r), [&](Response&&) { ++sends_answered; });
  };
  h.on_end = [&](Response&&) { ++ends; };
  Request r;
  r.intended = clock_.Now();
  id = engine_->OpenStream(std::move(r), {}, std::move(h));
  RunUntil([&] { return server.requests() >= 2; });
  RunUntil([] { return false; }, 100ms);
  EXPECT_EQ(data_calls, 1);
  EXPECT_EQ(ends, 0);
  EXPECT_EQ(server.requests(), 2u) << "the Send from the handler went out";
}

TEST_F(StreamTest, MoreThanTheBufferBoundEndsAsInvalidResponse) {
  testing::TestHttpServerOptions so;
  so.stream_chunks = {"data: " + std::string(32 * 1024, 'x') + "\n\n"};
  so.stream_end = false;
  testing::TestHttpServer server(so);
  Make(server.base_url());
  Seen seen;
  StreamOptions options;
  options.max_buffered = 1024;
  Open(seen, options);
  RunUntil([&] { return seen.ends > 0; });
  ASSERT_EQ(seen.ends, 1);
  EXPECT_EQ(seen.end.transport, Outcome::kInvalidResponse);
  EXPECT_NE(seen.end.error.find("buffer"), std::string::npos) << seen.end.error;
  EXPECT_LE(seen.data.size(), 1024u);
}

TEST_F(StreamTest, APlainAnswerComesAsHeadDataAndEnd) {
  testing::TestHttpServerOptions so;
  so.status = 404;
  so.body = R"({"detail":"Not Found"})";
  testing::TestHttpServer server(so);
  Make(server.base_url());
  Seen seen;
  Open(seen);
  RunUntil([&] { return seen.ends > 0; });
  EXPECT_EQ(seen.head.status, 404);
  EXPECT_EQ(seen.head.content_type, "application/json");
  EXPECT_EQ(seen.data, R"({"detail":"Not Found"})");
  EXPECT_EQ(seen.end.transport, Outcome::kOk);
  EXPECT_EQ(seen.end.status, 404);
}

TEST_F(StreamTest, ARefusedConnectionEndsWithoutAHead) {
  // A port nothing listens on: bind one, note it, close it.
  int port = 0;
  {
    testing::TestHttpServer gone({});
    port = std::stoi(gone.base_url().substr(gone.base_url().rfind(':') + 1));
  }
  Make("http://127.0.0.1:" + std::to_string(port));
  Seen seen;
  Open(seen);
  RunUntil([&] { return seen.ends > 0; });
  ASSERT_EQ(seen.ends, 1);
  EXPECT_EQ(seen.heads, 0);
  EXPECT_EQ(seen.end.transport, Outcome::kConnectError);
}

TEST_F(StreamTest, DestroyingTheEngineWithAStreamOpenIsClean) {
  testing::TestHttpServerOptions so;
  so.stream_chunks = {"data: 1\n\n"};
  so.stream_end = false;
  testing::TestHttpServer server(so);
  Make(server.base_url(), 1);
  Seen a, b;
  Open(a);
  Open(b);  // queued
  RunUntil([&] { return a.heads > 0; });
  engine_.reset();  // LeakSanitizer checks that both streams were freed
  EXPECT_EQ(a.ends + b.ends, 0);
}

}  // namespace
}  // namespace polar
