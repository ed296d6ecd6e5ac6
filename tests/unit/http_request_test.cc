// The listeners' strict request parsing (daemon/net/http_request.h): framing,
// targets, duplicate headers, the chunked decoder, the Host allow-list, and
// the metrics.allowed_hosts key that feeds it.
#include "daemon/net/http_request.h"

#include <gtest/gtest.h>

#include "daemon/config/config.h"
#include "tests/support/unit_fixtures.h"

namespace polar {
namespace {

std::optional<HttpRefusal> Refusal(const std::string& head) {
  return ParseRequestHead(head).refusal;
}

HttpRequestHead Parsed(const std::string& head) {
  HttpHeadResult r = ParseRequestHead(head);
  EXPECT_FALSE(r.refusal) << head << " refused as "
                          << HttpRefusalName(
                                 r.refusal.value_or(HttpRefusal::kBadRequest));
  return r.head;
}

// A POST to the webhook path with `extra` header lines (each ending CRLF).
std::string Post(const std::string& extra,
                 const std::string& target = "/webhooks/polar") {
  return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1:9478\r\n" + extra +
         "\r\n";
}

TEST(HttpRequestHead, AnOriginFormRequestIsParsedWithItsQueryAndHeaders) {
  HttpRequestHead h = Parsed(
      "GET /api/status?x=1&name=a%20b+c&flag HTTP/1.1\r\nHost: "
      "127.0.0.1:9477\r\nAccept: text/plain\r\nX-Padded:   v  \r\n\r\n");
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.path, "/api/status");
  EXPECT_EQ(h.query.at("x"), "1");
  EXPECT_EQ(h.query.at("name"), "a b c");
  EXPECT_EQ(h.query.at("flag"), "");
  EXPECT_EQ(h.headers.at("accept"), "text/plain");
  EXPECT_EQ(h.headers.at("x-padded"), "v");
  EXPECT_EQ(h.host, "127.0.0.1:9477");
  EXPECT_FALSE(h.has_body());
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(h.minor_version, 1);
}

TEST(HttpRequestHead, FindHeadEndWaitsForTheEmptyLine) {
  EXPECT_EQ(FindHeadEnd("GET / HTTP/1.1\r\nHost: a\r\n"), 0u);
  EXPECT_EQ(FindHeadEnd("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"), 27u);
}

TEST(HttpRequestHead, LinesMustEndInCrlfAndFieldsBeWellFormed) {
  // Folded (obs-fold), bare LF, bare CR, space before the colon, no colon,
  // a control byte in a value, a space in the target, an unknown version.
  for (const std::string& head : std::vector<std::string>{
           Post("X-A: a\r\n folded\r\n"),
           std::string("GET / HTTP/1.1\nHost: a\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"),
           Post("Content-Length : 0\r\n"),
           Post("NoColonHere\r\n"),
           Post(std::string("X-A: a\0b\r\n", 11)),
           Post("X-A: a\x7f\r\n"),
           std::string("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"),
           std::string("GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
           std::string("GET / http/1.1\r\nHost: a\r\n\r\n"),
           std::string("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"),
       }) {
    EXPECT_EQ(Refusal(head), HttpRefusal::kBadRequest) << head;
  }
}

TEST(HttpRequestHead, ContentLengthTwiceIsBadFramingEvenWithTheSameValue) {
  EXPECT_EQ(Refusal(Post("Content-Length: 5\r\nContent-Length: 6\r\n")),
            HttpRefusal::kBadFraming);
  EXPECT_EQ(Refusal(Post("Content-Length: 5\r\nContent-Length: 5\r\n")),
            HttpRefusal::kBadFraming);
  EXPECT_EQ(Refusal(Post("Content-Length: 5, 5\r\n")),
            HttpRefusal::kBadFraming);
}

TEST(HttpRequestHead, ContentLengthIsOneToEighteenDigitsAndNothingElse) {
  for (const char* bad :
       {"+5", "-1", "0x5", "5 5", "", "1e3", "1234567890123456789"}) {
    EXPECT_EQ(Refusal(Post(std::string("Content-Length: ") + bad + "\r\n")),
              HttpRefusal::kBadFraming)
        << bad;
  }
  HttpRequestHead h = Parsed(Post("Content-Length: 123456789012345678\r\n"));
  EXPECT_EQ(h.content_length, 123456789012345678u);
  EXPECT_TRUE(h.has_body());
  EXPECT_FALSE(Parsed(Post("Content-Length: 0\r\n")).has_body());
}

TEST(HttpRequestHead, ContentLengthWithTransferEncodingIsBadFraming) {
  EXPECT_EQ(
      Refusal(Post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")),
      HttpRefusal::kBadFraming);
  EXPECT_EQ(
      Refusal(Post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")),
      HttpRefusal::kBadFraming);
  EXPECT_EQ(Refusal(Post("Transfer-Encoding: chunked\r\n"
                         "Transfer-Encoding: chunked\r\n")),
            HttpRefusal::kBadFraming);
  // HTTP/1.0 has no transfer codings.
  EXPECT_EQ(Refusal("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HttpRefusal::kBadFraming);
}

TEST(HttpRequestHead, TransferCodingsOtherThanChunkedAreNotImplemented) {
  for (const char* te : {"xchunked", "gzip", "gzip, chunked",
                         "chunked, chunked", "chunked;q=1", "identity"}) {
    EXPECT_EQ(Refusal(Post(std::string("Transfer-Encoding: ") + te + "\r\n")),
              HttpRefusal::kTransferCoding)
        << te;
    EXPECT_EQ(HttpRefusalStatus(HttpRefusal::kTransferCoding), 501);
  }
  HttpRequestHead h = Parsed(Post("Transfer-Encoding: Chunked\r\n"));
  EXPECT_TRUE(h.chunked);
  EXPECT_FALSE(h.content_length);
  EXPECT_TRUE(h.has_body());
}

TEST(HttpRequestHead, ControlBytesInTheTargetAreRefusedRawOrEscaped) {
  for (const std::string target :
       {"/webhooks/polar%00", "/webhooks/polar%0d%0aX:", "/a%7f", "/a%1F",
        "/a?x=%00", "/a%zz", "/a%0", "/a%", "/a#frag", "*", "webhooks/polar",
        "/caf\xc3\xa9"}) {
    EXPECT_EQ(Refusal(Post("", target)), HttpRefusal::kBadTarget) << target;
  }
  EXPECT_EQ(Refusal("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"),
            HttpRefusal::kBadTarget);
  EXPECT_EQ(Parsed(Post("", "/caf%C3%A9/%2F")).path, "/caf\xc3\xa9//");
}

TEST(HttpRequestHead, AbsoluteFormTakesItsAuthorityAsTheHost) {
  HttpRequestHead h = Parsed(
      "GET http://LoadBox-1.internal:9477/metrics?x=1 HTTP/1.1\r\nHost: "
      "other\r\n\r\n");
  EXPECT_EQ(h.path, "/metrics");
  EXPECT_EQ(h.query.at("x"), "1");
  EXPECT_EQ(h.host, "LoadBox-1.internal:9477");
  EXPECT_EQ(Parsed("GET http://a HTTP/1.1\r\nHost: a\r\n\r\n").path, "/");
  EXPECT_EQ(Refusal("GET http://us@er@a/ HTTP/1.1\r\nHost: a\r\n\r\n"),
            HttpRefusal::kBadTarget);
}

TEST(HttpRequestHead, AHeaderThatMustBeSingleIsRefusedWhenRepeated) {
  for (const char* header :
       {"webhook-id", "Webhook-Timestamp", "webhook-signature", "Host",
        "Authorization", "Content-Type", "Expect"}) {
    const std::string line = std::string(header) + ": x\r\n";
    EXPECT_EQ(Refusal("POST / HTTP/1.1\r\nHost: a\r\n" + line + line + "\r\n"),
              HttpRefusal::kDuplicateHeader)
        << header;
  }
  // List headers are joined, as RFC 9110 §5.3 allows.
  HttpRequestHead h = Parsed(Post("Accept: a\r\nAccept: b\r\n"));
  EXPECT_EQ(h.headers.at("accept"), "a, b");
}

TEST(HttpRequestHead, Http11NeedsAWellFormedHostAndHttp10DoesNot) {
  EXPECT_EQ(Refusal("GET / HTTP/1.1\r\n\r\n"), HttpRefusal::kBadRequest);
  for (const char* host :
       {"a b", "a/b", "[::1", "[zz]:1", "a:port", "a:123456", "", "a@b"}) {
    EXPECT_EQ(
        Refusal(std::string("GET / HTTP/1.1\r\nHost: ") + host + "\r\n\r\n"),
        HttpRefusal::kBadRequest)
        << host;
  }
  HttpRequestHead h = Parsed("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(h.host, "");
  EXPECT_FALSE(h.keep_alive);
}

TEST(HttpRequestHead, ExpectOtherThanContinueIs417) {
  EXPECT_TRUE(Parsed(Post("Expect: 100-Continue\r\nContent-Length: 1\r\n"))
                  .expect_continue);
  EXPECT_EQ(Refusal(Post("Expect: 200-ok\r\n")), HttpRefusal::kExpectation);
  EXPECT_EQ(HttpRefusalStatus(HttpRefusal::kExpectation), 417);
}

TEST(HttpRequestHead, KeepAliveFollowsTheVersionAndConnection) {
  EXPECT_TRUE(Parsed(Post("")).keep_alive);
  EXPECT_FALSE(Parsed(Post("Connection: close\r\n")).keep_alive);
  EXPECT_FALSE(Parsed(Post("Connection: Upgrade, CLOSE\r\n")).keep_alive);
  EXPECT_FALSE(Parsed("GET / HTTP/1.0\r\nHost: a\r\n\r\n").keep_alive);
  EXPECT_TRUE(
      Parsed("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
          .keep_alive);
}

TEST(HttpRequestHead, MoreThanAHundredHeaderLinesIs431) {
  std::string lines;
  for (int i = 0; i < 99; ++i) lines += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_FALSE(Refusal(Post(lines)));  // with Host, 100 lines
  lines += "X-100: v\r\n";
  EXPECT_EQ(Refusal(Post(lines)), HttpRefusal::kHeadTooLarge);
  EXPECT_EQ(HttpRefusalStatus(HttpRefusal::kHeadTooLarge), 431);
}

TEST(HttpRequestHead, HeaderBytesCountNamesValuesAndFourPerLine) {
  EXPECT_EQ(Parsed(Post("webhook-id: abc\r\n")).header_bytes,
            (4 + 14 + 4) + (10 + 3 + 4));
}

TEST(HostAllowList, IpLiteralsLocalhostAndConfiguredNamesOnly) {
  const std::vector<std::string> names = {"loadbox-1.internal"};
  for (const char* ok :
       {"127.0.0.1:9477", "10.1.2.3", "[::1]:9477", "[2001:db8::1]",
        "localhost:9477", "LOCALHOST", "loadbox-1.internal:9477",
        "LoadBox-1.Internal.", ""}) {
    EXPECT_TRUE(HostAllowed(ok, names)) << ok;
  }
  // A rebinding page's own name, names that merely contain an allowed one,
  // IP look-alikes that are names, malformed values.
  for (const char* no :
       {"rebind.attacker.example:9477", "loadbox-1.internal.attacker.example",
        "127.0.0.1.nip.io", "0x7f.1", "2130706433x", "localhost.attacker",
        "a b", "[::1"}) {
    EXPECT_FALSE(HostAllowed(no, names)) << no;
  }
  EXPECT_FALSE(HostAllowed("loadbox-1.internal", {}));
}

TEST(HostAllowList, HostNameLowerCasesAndDropsThePortAndTrailingDot) {
  EXPECT_EQ(HostName("LoadBox.Example.:80"), "loadbox.example");
  EXPECT_EQ(HostName("[::1]:80"), "[::1]");
  EXPECT_EQ(HostName("a:"), "a");
  EXPECT_FALSE(HostName("a:b"));
  EXPECT_FALSE(HostName(":80"));
}

// ---- Chunked bodies ---------------------------------------------------------

struct Decoded {
  ChunkedDecoder::Status status;
  std::string body;
  std::size_t consumed = 0;
};

// Feeds `in` whole, or one byte at a time.
Decoded Decode(const std::string& in, bool bytewise = false,
               std::size_t max_body = 1 << 20) {
  ChunkedDecoder d(max_body);
  Decoded out;
  if (!bytewise) {
    out.consumed = d.Feed(in, &out.body);
  } else {
    for (std::size_t i = 0;
         i < in.size() && d.status() == ChunkedDecoder::Status::kMore; ++i)
      out.consumed += d.Feed(std::string_view(in).substr(i, 1), &out.body);
  }
  out.status = d.status();
  return out;
}

TEST(ChunkedDecoder, DecodesChunksSplitAnywhereAndLeavesTheNextRequest) {
  const std::string body =
      "5\r\nhello\r\n1;name=value\r\n,\r\nA\r\n world!!!!\r\n0\r\n"
      "Trailer: x\r\n\r\nGET /next";
  for (bool bytewise : {false, true}) {
    Decoded d = Decode(body, bytewise);
    EXPECT_EQ(d.status, ChunkedDecoder::Status::kDone);
    EXPECT_EQ(d.body, "hello, world!!!!");
    EXPECT_EQ(body.substr(d.consumed), "GET /next");
  }
}

TEST(ChunkedDecoder, SizesAreStrictHexAndChunksEndInCrlf) {
  for (const std::string bad :
       {"0x5\r\nhello\r\n0\r\n\r\n", " 5\r\nhello\r\n0\r\n\r\n",
        "5 \r\nhello\r\n0\r\n\r\n", "+5\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n", "5\r\nhelloX\r\n0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n", "1000000000000000\r\n", "\r\n",
        "0\r\nTrailer\n\r\n", "5;\x01\r\nhello\r\n0\r\n\r\n"}) {
    EXPECT_EQ(Decode(bad).status, ChunkedDecoder::Status::kBad) << bad;
  }
}

TEST(ChunkedDecoder, ABodyOverTheLimitStopsBeforeItsChunkIsRead) {
  Decoded d = Decode("8\r\n12345678\r\n9\r\n", false, 16);
  EXPECT_EQ(d.status, ChunkedDecoder::Status::kTooLarge);
  EXPECT_EQ(d.body, "12345678");
  EXPECT_EQ(Decode("10\r\n0123456789abcdef\r\n0\r\n\r\n", false, 16).status,
            ChunkedDecoder::Status::kDone);
}

TEST(ChunkedDecoder, TrailersAreBoundedAt4KiB) {
  std::string trailers = "0\r\n";
  for (int i = 0; i < 100; ++i)
    trailers += "X-Trailer: " + std::string(40, 'v') + "\r\n";
  EXPECT_EQ(Decode(trailers + "\r\n").status, ChunkedDecoder::Status::kBad);
}

// ---- metrics.allowed_hosts
// ----------------------------------------------------

std::string ConfigWith(const std::string& metrics_lines) {
  return R"(
[target]
base_url = "http://127.0.0.1:8000/"
token = "polar_oat_secret"

[metrics]
listen = "127.0.0.1:0"
)" + metrics_lines +
         R"(

[scenarios.ingest]
type = "event_ingestion"
rate = "1/s"
)";
}

TEST(MetricsAllowedHosts, NamesAreNormalisedAndDefaultToNone) {
  ConfigResult none = ParseConfig(ConfigWith(""), "t.toml", testing::FakeEnv());
  ASSERT_TRUE(none.config);
  EXPECT_TRUE(none.config->metrics.allowed_hosts.empty());
  ConfigResult r = ParseConfig(
      ConfigWith(R"(allowed_hosts = ["LoadBox-1.Internal.", "grafana_proxy"])"),
      "t.toml", testing::FakeEnv());
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  EXPECT_EQ(r.config->metrics.allowed_hosts,
            (std::vector<std::string>{"loadbox-1.internal", "grafana_proxy"}));
}

TEST(MetricsAllowedHosts, APortAPatternOrANonStringIsAnErrorWithItsPlace) {
  ConfigResult r = ParseConfig(
      ConfigWith(
          R"(allowed_hosts = ["ok.example", "a.example:9477", "*.example", 5])"),
      "t.toml", testing::FakeEnv());
  ASSERT_EQ(r.errors.size(), 3u);
  for (const ConfigError& e : r.errors) {
    EXPECT_EQ(e.key, "metrics.allowed_hosts") << e.ToString();
    EXPECT_EQ(e.line, 8) << e.ToString();
  }
  ConfigResult not_a_list = ParseConfig(ConfigWith(R"(allowed_hosts = "a")"),
                                        "t.toml", testing::FakeEnv());
  ASSERT_EQ(not_a_list.errors.size(), 1u);
  EXPECT_NE(not_a_list.errors[0].message.find("list"), std::string::npos);
}

}  // namespace
}  // namespace polar
