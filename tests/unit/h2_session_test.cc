// H2Session (the HTTP/2 client framing) against an nghttp2 server session in
// memory: what a request looks like on the wire, how each way a stream can end
// is reported, and that the server's limits and a GOAWAY are kept.
#include "daemon/net/h2_session.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <map>
#include <string_view>

namespace polar::h2_session_test {
namespace {

using namespace std::chrono_literals;
using Kind = H2StreamEnd::Kind;

const WallTime kNow{std::chrono::seconds(1'700'000'000)};

// The server side, driven by the test.
class Server {
 public:
  struct Seen {
    std::map<std::string, std::string> headers;
    std::map<std::string, uint8_t> flags;
    std::string body;
    bool ended = false;  // END_STREAM received
    uint32_t closed_with = ~0u;
  };

  explicit Server(uint32_t max_streams = 100) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, &OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &OnData);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &OnFrame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &OnClose);
    nghttp2_session_server_new(&session_, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry s{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                             max_streams};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, &s, 1);
  }
  ~Server() { nghttp2_session_del(session_); }

  void Receive(const std::string& bytes) {
    ASSERT_EQ(nghttp2_session_mem_recv(
                  session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                  bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }
  std::string Output() {
    std::string out;
    const uint8_t* data = nullptr;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session_, &data)) > 0) {
      out.append(reinterpret_cast<const char*>(data), n);
    }
    return out;
  }

  void Respond(int32_t id, const std::string& status, const std::string& body,
               std::vector<std::pair<std::string, std::string>> extra = {}) {
    bodies_[id] = body;
    std::vector<nghttp2_nv> nva;
    // string_view: a literal name stays in static storage (a const
    // std::string& would be a temporary gone before nghttp2 copies it).
    auto add = [&](std::string_view n, std::string_view v) {
      nva.push_back({(uint8_t*)n.data(), (uint8_t*)v.data(), n.size(), v.size(),
                     NGHTTP2_NV_FLAG_NONE});
    };
    add(":status", status);
    for (auto& [n, v] : extra) add(n, v);
    nghttp2_data_provider p;
    p.source.ptr = &bodies_[id];
    p.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t len,
                         uint32_t* flags, nghttp2_data_source* src,
                         void*) -> ssize_t {
      auto* b = static_cast<std::string*>(src->ptr);
      size_t n = std::min(len, b->size());
      std::memcpy(buf, b->data(), n);
      b->erase(0, n);
      if (b->empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    };
    ASSERT_EQ(nghttp2_submit_response(session_, id, nva.data(), nva.size(),
                                      body.empty() ? nullptr : &p),
              0);
  }
  void Reset(int32_t id, uint32_t code) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, code);
  }
  void Ping() { nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr); }
  void Goaway(int32_t last, uint32_t code = NGHTTP2_NO_ERROR) {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last, code, nullptr, 0);
  }

  std::map<int32_t, Seen> seen;

 private:
  static Server* Self(void* u) { return static_cast<Server*>(u); }
  static int OnHeader(nghttp2_session*, const nghttp2_frame* f,
                      const uint8_t* n, size_t nl, const uint8_t* v, size_t vl,
                      uint8_t flags, void* u) {
    auto& s = Self(u)->seen[f->hd.stream_id];
    std::string name(reinterpret_cast<const char*>(n), nl);
    s.headers[name] = std::string(reinterpret_cast<const char*>(v), vl);
    s.flags[name] = flags;
    return 0;
  }
  static int OnData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* d,
                    size_t l, void* u) {
    Self(u)->seen[id].body.append(reinterpret_cast<const char*>(d), l);
    return 0;
  }
  static int OnFrame(nghttp2_session*, const nghttp2_frame* f, void* u) {
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM &&
        (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA)) {
      Self(u)->seen[f->hd.stream_id].ended = true;
    }
    return 0;
  }
  static int OnClose(nghttp2_session*, int32_t id, uint32_t code, void* u) {
    Self(u)->seen[id].closed_with = code;
    return 0;
  }

  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::string> bodies_;
};

H2Headers TestHeaders() {
  H2Headers h;
  h.authority = "api.example:8443";
  h.path_prefix = "/polar";
  h.user_agent = "polar-loadd/test";
  h.authorization = "Bearer secret";
  return h;
}

Request Post(std::string body = R"({"events":[]})") {
  Request r;
  r.method = Method::kPost;
  r.path = "/v1/events/ingest";
  r.body = std::move(body);
  return r;
}

// Moves bytes both ways until neither side has more to say.
void Exchange(H2Session& client, Server& server) {
  for (int i = 0; i < 10; ++i) {
    std::string to_server;
    ASSERT_TRUE(client.Output(&to_server));
    if (!to_server.empty()) server.Receive(to_server);
    std::string to_client = server.Output();
    if (!to_client.empty()) {
      ASSERT_TRUE(client.Receive(to_client, kNow));
    }
    if (to_server.empty() && to_client.empty()) return;
  }
}

TEST(H2Session, ARequestCarriesItsPseudoHeadersLengthAndANeverIndexedToken) {
  H2Session client(1024);
  Server server;
  const int32_t post = client.Submit(Post(), TestHeaders());
  Request get;
  get.path = "/v1/checkouts/1";
  get.authenticated = false;
  const int32_t anon = client.Submit(get, TestHeaders());
  ASSERT_GT(post, 0);
  ASSERT_GT(anon, post);
  Exchange(client, server);
  const Server::Seen& p = server.seen[post];
  EXPECT_EQ(p.headers.at(":method"), "POST");
  EXPECT_EQ(p.headers.at(":scheme"), "https");
  EXPECT_EQ(p.headers.at(":authority"), "api.example:8443");
  EXPECT_EQ(p.headers.at(":path"), "/polar/v1/events/ingest");
  EXPECT_EQ(p.headers.at("content-type"), "application/json");
  EXPECT_EQ(p.headers.at("content-length"), "13");
  EXPECT_EQ(p.headers.at("accept"), "application/json");
  EXPECT_EQ(p.headers.at("user-agent"), "polar-loadd/test");
  EXPECT_EQ(p.headers.at("authorization"), "Bearer secret");
  EXPECT_TRUE(p.flags.at("authorization") & NGHTTP2_NV_FLAG_NO_INDEX);
  EXPECT_EQ(p.body, R"({"events":[]})");
  EXPECT_TRUE(p.ended);
  const Server::Seen& g = server.seen[anon];
  EXPECT_EQ(g.headers.at(":method"), "GET");
  EXPECT_EQ(g.headers.count("content-length"), 0u);
  EXPECT_EQ(g.headers.count("authorization"), 0u);
  EXPECT_TRUE(g.ended);
  EXPECT_TRUE(client.ended().empty());
}

TEST(H2Session, AnAnswerEndsItsStreamWithStatusBodyAndRetryAfter) {
  H2Session client(1024);
  Server server;
  const int32_t id = client.Submit(Post(), TestHeaders());
  Exchange(client, server);
  server.Respond(id, "429", R"({"error":"slow down"})",
                 {{"retry-after", "30"}});
  Exchange(client, server);
  ASSERT_EQ(client.ended().size(), 1u);
  const H2StreamEnd& end = client.ended()[0];
  EXPECT_EQ(end.stream_id, id);
  EXPECT_EQ(end.kind, Kind::kComplete);
  EXPECT_EQ(end.status, 429);
  EXPECT_EQ(end.body, R"({"error":"slow down"})");
  ASSERT_TRUE(end.retry_after);
  EXPECT_EQ(*end.retry_after, 30s);
  EXPECT_EQ(client.open_streams(), 0u);
}

TEST(H2Session, OnlyFramesOwedToTheServerAskForAWrite) {
  H2Session client(1024);
  Server server;
  std::string preface;
  ASSERT_TRUE(client.Output(&preface));
  EXPECT_FALSE(client.WantsToWrite());
  server.Receive(preface);
  ASSERT_TRUE(client.Receive(server.Output(), kNow));
  EXPECT_TRUE(client.WantsToWrite()) << "the server's SETTINGS need an ACK";
  Exchange(client, server);
  EXPECT_FALSE(client.WantsToWrite());
  const int32_t id = client.Submit(Post(), TestHeaders());
  EXPECT_TRUE(client.WantsToWrite());
  Exchange(client, server);
  server.Respond(id, "200", R"({"inserted":1,"duplicates":0})");
  ASSERT_TRUE(client.Receive(server.Output(), kNow));
  ASSERT_EQ(client.ended().size(), 1u);
  EXPECT_FALSE(client.WantsToWrite()) << "a small answer owes nothing back";
  server.Ping();
  ASSERT_TRUE(client.Receive(server.Output(), kNow));
  EXPECT_TRUE(client.WantsToWrite()) << "a PING needs its ACK";
}

TEST(H2Session, AResetIsReportedAndARefusalIsToldApart) {
  H2Session client(1024);
  Server server;
  const int32_t a = client.Submit(Post(), TestHeaders());
  const int32_t b = client.Submit(Post(), TestHeaders());
  Exchange(client, server);
  server.Reset(a, NGHTTP2_INTERNAL_ERROR);
  server.Reset(b, NGHTTP2_REFUSED_STREAM);
  Exchange(client, server);
  ASSERT_EQ(client.ended().size(), 2u);
  EXPECT_EQ(client.ended()[0].stream_id, a);
  EXPECT_EQ(client.ended()[0].kind, Kind::kReset);
  EXPECT_NE(client.ended()[0].error.find("INTERNAL_ERROR"), std::string::npos);
  EXPECT_EQ(client.ended()[1].stream_id, b);
  EXPECT_EQ(client.ended()[1].kind, Kind::kRefused);
  EXPECT_TRUE(client.CanSubmit()) << "a reset ends a stream, not the session";
}

TEST(H2Session, AGoawayRefusesTheStreamsAboveItsLastIdAndStopsNewOnes) {
  H2Session client(1024);
  Server server;
  const int32_t first = client.Submit(Post(), TestHeaders());
  const int32_t second = client.Submit(Post(), TestHeaders());
  const int32_t third = client.Submit(Post(), TestHeaders());
  Exchange(client, server);
  server.Respond(first, "200", "ok");
  server.Goaway(first);
  Exchange(client, server);
  EXPECT_TRUE(client.goaway_received());
  EXPECT_FALSE(client.CanSubmit());
  EXPECT_EQ(client.Submit(Post(), TestHeaders()), 0);
  std::map<int32_t, Kind> kinds;
  for (const auto& e : client.ended()) kinds[e.stream_id] = e.kind;
  EXPECT_EQ(kinds[first], Kind::kComplete);
  EXPECT_EQ(kinds[second], Kind::kRefused);
  EXPECT_EQ(kinds[third], Kind::kRefused);
}

TEST(H2Session, TheServersConcurrencyLimitIsKept) {
  H2Session client(1024);
  Server server(2);
  EXPECT_EQ(client.max_streams(), H2Session::kDefaultMaxStreams);
  Exchange(client, server);  // the server's SETTINGS arrive
  EXPECT_EQ(client.max_streams(), 2u);
  EXPECT_GT(client.Submit(Post(), TestHeaders()), 0);
  EXPECT_GT(client.Submit(Post(), TestHeaders()), 0);
  EXPECT_FALSE(client.CanSubmit());
  EXPECT_EQ(client.Submit(Post(), TestHeaders()), 0);
  Exchange(client, server);
  server.Respond(1, "200", "ok");
  Exchange(client, server);
  EXPECT_TRUE(client.CanSubmit()) << "an ended stream frees its slot";
}

TEST(H2Session, ABodyOverTheLimitIsCutOffAndItsStreamReset) {
  H2Session client(10);
  Server server;
  const int32_t id = client.Submit(Post(), TestHeaders());
  Exchange(client, server);
  // More than the stream window (64 KiB for small limits): the server is
  // still sending when the client resets the stream.
  server.Respond(id, "200", std::string(200'000, 'x'));
  Exchange(client, server);
  ASSERT_EQ(client.ended().size(), 1u);
  EXPECT_EQ(client.ended()[0].kind, Kind::kTooLarge);
  EXPECT_TRUE(client.ended()[0].body.empty());
  EXPECT_EQ(server.seen[id].closed_with, NGHTTP2_CANCEL);
}

TEST(H2Session, ACancelledStreamIsResetAndNeverReported) {
  H2Session client(1024);
  Server server;
  const int32_t id = client.Submit(Post(), TestHeaders());
  Exchange(client, server);
  client.Cancel(id);
  Exchange(client, server);
  EXPECT_EQ(server.seen[id].closed_with, NGHTTP2_CANCEL);
  EXPECT_TRUE(client.ended().empty());
  EXPECT_EQ(client.open_streams(), 0u);
}

TEST(H2Session, AProtocolErrorFromTheServerBreaksTheSession) {
  H2Session client(1024);
  Server server;
  Exchange(client, server);
  // A DATA frame on stream 0: a connection error (RFC 9113 §6.1).
  const std::string data_on_stream_0("\x00\x00\x01\x00\x00\x00\x00\x00\x00x",
                                     10);
  EXPECT_FALSE(client.Receive(data_on_stream_0, kNow));
  EXPECT_FALSE(client.error().empty());
  EXPECT_FALSE(client.CanSubmit());
  EXPECT_FALSE(client.Receive("more", kNow));
}

}  // namespace
}  // namespace polar::h2_session_test
