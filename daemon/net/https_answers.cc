// HttpsClient, answers: decrypting what a connection received and handing it
// to HTTP/2 (streams that ended) or HTTP/1.1 (the one exchange), dating each
// answer by when its bytes reached the kernel, resending once what the server
// did not process (REFUSED_STREAM, an idle keep-alive connection closed as it
// was reused), and what a peer's close means for the requests on it.
//
// Owned by HttpsClient (https_client.h); loop thread only.
#include <algorithm>

#include "daemon/net/https_client.h"
#include "daemon/net/https_conn.h"
#include "daemon/net/socket_time.h"

namespace polar {

void HttpsClient::Process(Conn* conn) {
  if (conn->closed) return;
  const TlsStream::Result r = conn->tls->Read(&conn->plain_in);
  if (conn->h2) {
    ProcessH2(conn);
  } else {
    ProcessH1(conn);
  }
  if (conn->closed) return;
  if (r == TlsStream::Result::kError) {
    Fail(conn, Outcome::kInvalidResponse, conn->tls->error());
    return;
  }
  // TLS may have something to say back (a key update).
  if (!conn->tls->outgoing().empty() && !SendCiphertext(conn)) return;
  if (r == TlsStream::Result::kClosed || conn->eof) OnPeerClosed(conn);
}

void HttpsClient::ProcessH2(Conn* conn) {
  bool ok = true;
  if (!conn->plain_in.empty()) {
    ok = conn->session->Receive(conn->plain_in, clock_.WallNow());
    conn->plain_in.clear();
  }
  if (ok && !conn->settings_known && conn->session->settings_received()) {
    conn->settings_known = true;
    Release(conn);  // Finish() below pumps them out
  }
  std::vector<H2StreamEnd> ended = std::move(conn->session->ended());
  conn->session->ended().clear();
  std::vector<std::pair<Exchange, Response>> done;
  const MonoTime arrived =
      ended.empty() ? MonoTime{} : ArrivalTime(clock_, conn->received);
  for (H2StreamEnd& end : ended) {
    auto it = conn->streams.find(end.stream_id);
    if (it == conn->streams.end()) continue;
    Exchange exchange = std::move(it->second);
    conn->streams.erase(it);
    if (end.kind == H2StreamEnd::Kind::kRefused) {
      ++stats_.streams_refused;
      if (!exchange.resent) {
        // Not processed by the server: send it on another connection.
        Requeue(std::move(exchange));
        continue;
      }
    }
    Response response;
    response.intended = exchange.request.intended;
    response.sent = exchange.sent;
    response.done = std::max(arrived, exchange.sent);
    if (end.kind == H2StreamEnd::Kind::kComplete) {
      response.status = end.status;
      response.http_version = 2;
      response.body = std::move(end.body);
      response.retry_after = end.retry_after;
    } else {
      response.transport = Outcome::kInvalidResponse;
      response.error = std::move(end.error);
    }
    done.emplace_back(std::move(exchange), std::move(response));
  }
  if (conn->session->goaway_received() && !conn->goaway_counted) {
    conn->goaway_counted = true;
    ++stats_.goaways;
  }
  if (!ok) {
    // The streams that ended cleanly above still count as answered.
    const std::string error = conn->session->error();
    Fail(conn, Outcome::kInvalidResponse, error);
  } else if (conn->streams.empty() &&
             (conn->session->goaway_received() || conn->session->finished())) {
    Close(conn);  // drained after GOAWAY
  } else if (conn->session->WantsToWrite()) {
    MarkDirty(conn);  // SETTINGS and PING acknowledgements, WINDOW_UPDATEs
  }
  Finish(std::move(done));
}

void HttpsClient::ProcessH1(Conn* conn) {
  if (conn->plain_in.empty()) return;
  if (!conn->exchange) {
    // Bytes nobody asked for on an idle connection: the peer is confused.
    conn->plain_in.clear();
    Close(conn);
    return;
  }
  std::size_t consumed = 0;
  const auto status =
      conn->parser.Feed(conn->plain_in, clock_.WallNow(), &consumed);
  const bool extra = consumed < conn->plain_in.size();
  conn->plain_in.clear();
  if (status == Http1ResponseParser::Status::kNeedMore) return;
  if (status == Http1ResponseParser::Status::kError) {
    conn->reused = false;  // an answer started: never resent
    Fail(conn, Outcome::kInvalidResponse, conn->parser.error());
    return;
  }
  // Bytes after the answer that nobody asked for: the next exchange could
  // not be told apart from them, so this connection is done.
  CompleteH1(conn, extra);
}

void HttpsClient::CompleteH1(Conn* conn, bool close_after) {
  Exchange exchange = std::move(*conn->exchange);
  conn->exchange.reset();
  Response response;
  response.intended = exchange.request.intended;
  response.sent = exchange.sent;
  response.done = std::max(ArrivalTime(clock_, conn->received), exchange.sent);
  response.status = conn->parser.status();
  response.http_version = conn->parser.http_version();
  response.retry_after = conn->parser.retry_after();
  response.body = std::move(conn->parser.body());
  if (conn->parser.close_after() || close_after || conn->eof) {
    Close(conn);
  } else {
    conn->reused = true;
    idle_h1_.push_back(conn);
  }
  std::vector<std::pair<Exchange, Response>> done;
  done.emplace_back(std::move(exchange), std::move(response));
  Finish(std::move(done));
}

void HttpsClient::OnPeerClosed(Conn* conn) {
  if (conn->closed) return;
  const std::string why = conn->eof_error.empty()
                              ? "the server closed the connection"
                              : conn->eof_error;
  if (!conn->h2 && conn->exchange) {
    if (conn->parser.Finish() == Http1ResponseParser::Status::kDone) {
      // The body ran until the connection closed.
      CompleteH1(conn, true);
      return;
    }
    if (conn->reused && !conn->parser.started() && !conn->exchange->resent) {
      // The server closed an idle keep-alive connection as we reused it: no
      // answer was started, so send the request again on a new connection.
      Exchange exchange = std::move(*conn->exchange);
      conn->exchange.reset();
      Close(conn);
      Requeue(std::move(exchange));
      Pump();
      return;
    }
    Fail(conn, Outcome::kInvalidResponse,
         "connection closed before the response ended: " + why);
    return;
  }
  if (conn->h2 && !conn->streams.empty()) {
    Fail(conn, Outcome::kInvalidResponse,
         "connection closed with requests in flight: " + why);
    return;
  }
  Close(conn);
}

}  // namespace polar
