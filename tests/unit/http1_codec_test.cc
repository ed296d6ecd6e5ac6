// The HTTP/1.1 framing of the HTTPS client without sockets: the bytes of a
// request, and the response parser fed in pieces of every size (an answer
// split at any byte parses the same), with every malformed or oversized
// answer refused with a reason.
#include "daemon/net/http1_codec.h"

#include <gtest/gtest.h>

namespace polar::http1_codec_test {
namespace {

using namespace std::chrono_literals;
using Status = Http1ResponseParser::Status;

const WallTime kNow{std::chrono::seconds(1'700'000'000)};

TEST(Http1Codec, APostCarriesItsLengthAndBodyAfterThePrebuiltHeaders) {
  Request r;
  r.method = Method::kPost;
  r.path = "/v1/events/ingest";
  r.body = R"({"events":[]})";
  std::string out;
  AppendHttp1Request(&out, r, "/polar", "Host: h\r\n");
  EXPECT_EQ(out,
            "POST /polar/v1/events/ingest HTTP/1.1\r\nHost: h\r\n"
            "Content-Type: application/json\r\nContent-Length: 13\r\n\r\n"
            R"({"events":[]})");
}

TEST(Http1Codec, AnEmptyBodyStillSendsContentLengthAndAGetSendsNone) {
  Request post;
  post.method = Method::kPatch;
  post.path = "/x";
  std::string out;
  AppendHttp1Request(&out, post, "", "");
  EXPECT_NE(out.find("Content-Length: 0\r\n\r\n"), std::string::npos) << out;
  Request get;
  get.path = "/y";
  out.clear();
  AppendHttp1Request(&out, get, "", "Host: h\r\n");
  EXPECT_EQ(out, "GET /y HTTP/1.1\r\nHost: h\r\n\r\n");
}

// Feeds `text` in pieces of `step` bytes; returns the last status.
Status FeedInPieces(Http1ResponseParser& p, std::string_view text,
                    std::size_t step, std::size_t* leftover = nullptr) {
  Status s = Status::kNeedMore;
  for (std::size_t at = 0; at < text.size(); at += step) {
    std::string_view piece = text.substr(at, step);
    std::size_t consumed = 0;
    s = p.Feed(piece, kNow, &consumed);
    if (s != Status::kNeedMore) {
      if (leftover) *leftover = text.size() - at - consumed;
      return s;
    }
    EXPECT_EQ(consumed, piece.size());
  }
  return s;
}

TEST(Http1Codec, AnAnswerSplitAtAnyByteParsesTheSame) {
  const std::string text =
      "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
      "Retry-After: 7\r\ncontent-LENGTH: 12\r\n\r\n{\"error\":1} ";
  for (std::size_t step = 1; step <= text.size(); ++step) {
    Http1ResponseParser p(1024);
    std::size_t leftover = 99;
    ASSERT_EQ(FeedInPieces(p, text, step, &leftover), Status::kDone) << step;
    EXPECT_EQ(leftover, 0u);
    EXPECT_EQ(p.status(), 429);
    EXPECT_EQ(p.http_version(), 11);
    EXPECT_EQ(p.body(), "{\"error\":1} ");
    ASSERT_TRUE(p.retry_after());
    EXPECT_EQ(*p.retry_after(), 7s);
    EXPECT_FALSE(p.close_after());
  }
}

TEST(Http1Codec, AChunkedBodyWithExtensionsAndTrailersIsJoined) {
  const std::string text =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\n";
  for (std::size_t step : {1u, 2u, 5u, 1000u}) {
    Http1ResponseParser p(1024);
    ASSERT_EQ(FeedInPieces(p, text, step), Status::kDone) << step;
    EXPECT_EQ(p.body(), "abcdefg");
  }
}

TEST(Http1Codec, ABodyWithoutLengthRunsUntilTheConnectionCloses) {
  Http1ResponseParser p(1024);
  EXPECT_EQ(FeedInPieces(p, "HTTP/1.0 200 OK\r\n\r\npartial", 3),
            Status::kNeedMore);
  EXPECT_EQ(p.Finish(), Status::kDone);
  EXPECT_EQ(p.body(), "partial");
  EXPECT_TRUE(p.close_after());
  EXPECT_EQ(p.http_version(), 10);
}

TEST(Http1Codec, InterimAnswersAreSkippedAndConnectionCloseIsSeen) {
  Http1ResponseParser p(1024);
  EXPECT_EQ(FeedInPieces(p,
                         "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No "
                         "Content\r\nConnection: close\r\n\r\n",
                         7),
            Status::kDone);
  EXPECT_EQ(p.status(), 204);
  EXPECT_TRUE(p.close_after());
  EXPECT_TRUE(p.body().empty());
}

TEST(Http1Codec, BytesAfterTheAnswerAreLeftOver) {
  Http1ResponseParser p(1024);
  std::size_t consumed = 0;
  const std::string text =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
  EXPECT_EQ(p.Feed(text, kNow, &consumed), Status::kDone);
  EXPECT_EQ(text.size() - consumed, 5u);
}

TEST(Http1Codec,
     AConnectionThatClosesEarlyIsAnErrorAndSaysWhetherAnythingCame) {
  Http1ResponseParser fresh(1024);
  EXPECT_FALSE(fresh.started());
  EXPECT_EQ(fresh.Finish(), Status::kError);
  Http1ResponseParser cut(1024);
  EXPECT_EQ(
      FeedInPieces(cut, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", 4),
      Status::kNeedMore);
  EXPECT_TRUE(cut.started());
  EXPECT_EQ(cut.Finish(), Status::kError);
  EXPECT_NE(cut.error().find("closed"), std::string::npos);
}

TEST(Http1Codec, MalformedAnswersAreRefusedWithAReason) {
  const std::pair<const char*, const char*> cases[] = {
      {"HTTP/2.0 200 OK\r\n\r\n", "status line"},
      {"HTTP/1.1 2x0 OK\r\n\r\n", "status code"},
      {"HTTP/1.1 099 Low\r\n\r\n", "status code"},
      {"HTTP/1.1 200OK\r\n\r\n", "status line"},
      {"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "header line"},
      {"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", "header line"},
      {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
       "Content-Length"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       "chunk size"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXY",
       "chunk end"},
      {"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "CR LF"},
  };
  for (const auto& [text, why] : cases) {
    Http1ResponseParser p(1024);
    EXPECT_EQ(FeedInPieces(p, text, 1000), Status::kError) << text;
    EXPECT_NE(p.error().find(why), std::string::npos)
        << text << " -> " << p.error();
    // Once failed, it stays failed.
    std::size_t consumed = 0;
    EXPECT_EQ(p.Feed("more", kNow, &consumed), Status::kError);
  }
}

TEST(Http1Codec, OversizedHeadersAndBodiesAreRefusedWithoutBuffering) {
  Http1ResponseParser header(1024);
  std::string big = "HTTP/1.1 200 OK\r\nX: " +
                    std::string(Http1ResponseParser::kMaxHeaderBytes, 'a');
  EXPECT_EQ(FeedInPieces(header, big, 4096), Status::kError);
  EXPECT_NE(header.error().find("too large"), std::string::npos);

  Http1ResponseParser declared(100);
  EXPECT_EQ(FeedInPieces(declared,
                         "HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", 10),
            Status::kError);
  EXPECT_NE(declared.error().find("size limit"), std::string::npos);

  Http1ResponseParser chunked(100);
  std::string text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) text += "a\r\n0123456789\r\n";
  EXPECT_EQ(FeedInPieces(chunked, text, 7), Status::kError);
  EXPECT_NE(chunked.error().find("size limit"), std::string::npos);

  Http1ResponseParser until_close(100);
  EXPECT_EQ(FeedInPieces(until_close,
                         "HTTP/1.1 200 OK\r\n\r\n" + std::string(200, 'b'), 50),
            Status::kError);
}

TEST(Http1Codec, ResetStartsAFreshAnswerOnTheSameConnection) {
  Http1ResponseParser p(1024);
  std::size_t consumed = 0;
  ASSERT_EQ(
      p.Feed("HTTP/1.1 500 X\r\nContent-Length: 1\r\n\r\nz", kNow, &consumed),
      Status::kDone);
  p.Reset();
  EXPECT_FALSE(p.started());
  ASSERT_EQ(
      p.Feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", kNow, &consumed),
      Status::kDone);
  EXPECT_EQ(p.status(), 200);
  EXPECT_EQ(p.body(), "ok");
  EXPECT_FALSE(p.retry_after());
}

}  // namespace
}  // namespace polar::http1_codec_test
