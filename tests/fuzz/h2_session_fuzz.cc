// Fuzz target: the HTTPS client's HTTP/2 session (daemon/net/h2_session.h) fed
// what an untrusted server sends after two requests went out: frames of any
// kind, in pieces of any size. It must never crash or grow without bound,
// every stream it reports ended is one that was submitted and ends once, and
// no body it hands over is larger than the limit.
//
// Input: byte 0 is the piece size (1-256); the rest follows the server's
// empty SETTINGS frame (so the bytes reach frame handling, not only the
// preface check).
#include <set>
#include <string>
#include <string_view>

#include "daemon/net/h2_session.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  constexpr std::size_t kMaxBody = 4096;
  const polar::WallTime now{std::chrono::seconds(1'700'000'000)};
  polar::H2Session session(kMaxBody);
  polar::H2Headers headers;
  headers.authority = "api.example";
  headers.authorization = "Bearer t";
  polar::Request post;
  post.method = polar::Method::kPost;
  post.path = "/v1/events/ingest";
  post.body = R"({"events":[]})";
  polar::Request get;
  get.path = "/v1/checkouts/1";
  std::set<int32_t> submitted;
  for (const polar::Request* r : {&post, &get}) {
    const int32_t id = session.Submit(*r, headers);
    if (id <= 0) __builtin_trap();
    submitted.insert(id);
  }
  std::string out;
  if (!session.Output(&out)) __builtin_trap();

  std::string bytes("\0\0\0\x04\0\0\0\0\0", 9);  // SETTINGS, no entries
  bytes.append(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t step = data[0] + 1u;
  std::set<int32_t> ended;
  for (std::size_t at = 0; at < bytes.size(); at += step) {
    const bool alive =
        session.Receive(std::string_view(bytes).substr(at, step), now);
    for (const polar::H2StreamEnd& end : session.ended()) {
      if (!submitted.count(end.stream_id)) __builtin_trap();
      if (!ended.insert(end.stream_id).second) __builtin_trap();
      if (end.body.size() > kMaxBody) __builtin_trap();
    }
    session.ended().clear();
    out.clear();
    session.Output(&out);
    if (!alive) break;
    if (session.CanSubmit()) {
      const int32_t id = session.Submit(get, headers);
      if (id > 0) submitted.insert(id);
    }
  }
  if (session.open_streams() > submitted.size()) __builtin_trap();
  return 0;
}
