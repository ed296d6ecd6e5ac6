#include "daemon/net/tls_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>

namespace polar {
namespace {

// ALPN in wire form: length-prefixed names, most wanted first.
constexpr unsigned char kAlpnH2[] = "\x02h2\x08http/1.1";
constexpr unsigned char kAlpnH1[] = "\x08http/1.1";

// SSL_get_error() reads this thread's error queue, so it must hold nothing
// stale before an SSL call. ERR_clear_error() costs ~3,000 instructions in
// OpenSSL 3.0 even on an empty queue (it resets every slot), 6 % of the
// client's CPU per request when called before each read: peek first.
void ClearErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// OpenSSL's reason for the newest error on this thread's queue, or "".
std::string OpenSslReason() {
  unsigned long code = ERR_peek_last_error();
  if (code == 0) return "";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

long BioCtrl(BIO*, int cmd, long, void*) {
  // OpenSSL flushes after writing a record; everything else (kTLS queries,
  // EOF, pending) has nothing to report for an in-memory pipe.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int BioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

}  // namespace

TlsClientContext::TlsClientContext(TlsClientOptions options) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (!ctx_) {
    error_ = "TLS: cannot create a context: " + OpenSslReason();
    return;
  }
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  if (!options.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_, options.ca_file.c_str(), nullptr) !=
        1) {
      error_ = "TLS: cannot load ca_file " + options.ca_file + ": " +
               OpenSslReason();
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx_) != 1) {
    error_ = "TLS: cannot load the system trust store: " + OpenSslReason();
  }
  ERR_clear_error();
  if (options.offer_h2) {
    SSL_CTX_set_alpn_protos(ctx_, kAlpnH2, sizeof kAlpnH2 - 1);
  } else {
    SSL_CTX_set_alpn_protos(ctx_, kAlpnH1, sizeof kAlpnH1 - 1);
  }
  // Sessions are kept by this object, not by OpenSSL's internal cache (a
  // client cache is keyed by nothing useful): the newest one is offered by
  // the next connection, which then skips the certificate exchange and its
  // verification (~1 ms of CPU for an ECDSA chain, more for RSA).
  SSL_CTX_set_session_cache_mode(
      ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx_, &TlsClientContext::OnNewSession);

  bio_method_ =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "polar-tls");
  BIO_meth_set_write(bio_method_, &TlsStream::BioWrite);
  BIO_meth_set_read(bio_method_, &TlsStream::BioRead);
  BIO_meth_set_ctrl(bio_method_, &BioCtrl);
  BIO_meth_set_create(bio_method_, &BioCreate);
}

TlsClientContext::~TlsClientContext() {
  DropSession();
  if (ctx_) SSL_CTX_free(ctx_);
  if (bio_method_) BIO_meth_free(bio_method_);
}

void TlsClientContext::DropSession() {
  if (session_) SSL_SESSION_free(session_);
  session_ = nullptr;
}

int TlsClientContext::OnNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* stream = static_cast<TlsStream*>(SSL_get_app_data(ssl));
  if (!stream) return 0;
  TlsClientContext& context = stream->context_;
  context.DropSession();
  context.session_ = session;
  return 1;  // the reference is ours now
}

TlsStream::TlsStream(TlsClientContext& context, const std::string& host,
                     bool host_is_ip)
    : context_(context) {
  if (!context_.error().empty()) {
    error_ = context_.error();
    return;
  }
  ssl_ = SSL_new(context_.ctx());
  if (!ssl_) {
    error_ = "TLS: cannot create a connection: " + OpenSslReason();
    return;
  }
  SSL_set_app_data(ssl_, this);
  BIO* bio = BIO_new(context_.bio_method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one reference, owned by ssl_
  SSL_set_connect_state(ssl_);
  if (host_is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl_, host.c_str());
    SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(ssl_, host.c_str());
  }
  if (SSL_SESSION* session = context_.session()) {
    if (SSL_SESSION_is_resumable(session)) SSL_set_session(ssl_, session);
  }
}

TlsStream::~TlsStream() {
  if (!ssl_) return;
  // Counts as an orderly close: otherwise SSL_free marks the session it
  // kept as not resumable (a connection closed without close_notify looks
  // truncated to OpenSSL), and no reconnect would ever resume. Fatal TLS
  // errors have already dropped the session by then.
  if (established_)
    SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(ssl_);
}

int TlsStream::BioWrite(BIO* bio, const char* data, int size) {
  auto* self = static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  self->out_.append(data, static_cast<std::size_t>(size));
  return size;
}

int TlsStream::BioRead(BIO* bio, char* data, int size) {
  auto* self = static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  const std::size_t available = self->in_.size() - self->in_pos_;
  if (available == 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  const std::size_t n = std::min(available, static_cast<std::size_t>(size));
  std::copy_n(self->in_.data() + self->in_pos_, n, data);
  self->in_pos_ += n;
  if (self->in_pos_ == self->in_.size()) {
    self->in_.clear();
    self->in_pos_ = 0;
  }
  return static_cast<int>(n);
}

TlsStream::Result TlsStream::Failure(int ret, const char* what) {
  const int code = SSL_get_error(ssl_, ret);
  if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
    return Result::kWant;
  }
  if (code == SSL_ERROR_ZERO_RETURN) return Result::kClosed;
  const long verify = SSL_get_verify_result(ssl_);
  if (!established_ && verify != X509_V_OK) {
    error_ = std::string("TLS handshake: certificate verify failed: ") +
             X509_verify_cert_error_string(verify);
  } else {
    std::string reason = OpenSslReason();
    error_ = std::string(what) + ": " +
             (reason.empty() ? "unexpected end of the TLS stream" : reason);
  }
  ERR_clear_error();
  return Result::kError;
}

TlsStream::Result TlsStream::Handshake() {
  if (!ssl_) return Result::kError;
  if (established_) return Result::kOk;
  ClearErrors();
  const int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    established_ = true;
    return Result::kOk;
  }
  Result r = Failure(ret, "TLS handshake");
  if (r == Result::kClosed) {
    error_ = "TLS handshake: the server closed the connection";
    return Result::kError;
  }
  return r;
}

std::string_view TlsStream::alpn() const {
  if (!ssl_) return {};
  const unsigned char* data = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(ssl_, &data, &size);
  return data ? std::string_view(reinterpret_cast<const char*>(data), size)
              : std::string_view();
}

bool TlsStream::resumed() const { return ssl_ && SSL_session_reused(ssl_); }

TlsStream::Result TlsStream::Write(std::string_view plaintext) {
  if (!ssl_ || !established_) return Result::kError;
  while (!plaintext.empty()) {
    ClearErrors();
    const int chunk =
        static_cast<int>(std::min<std::size_t>(plaintext.size(), INT_MAX / 2));
    const int ret = SSL_write(ssl_, plaintext.data(), chunk);
    if (ret <= 0) {
      Result r = Failure(ret, "TLS write");
      return r == Result::kWant ? Result::kOk : Result::kError;
    }
    plaintext.remove_prefix(static_cast<std::size_t>(ret));
  }
  return Result::kOk;
}

TlsStream::Result TlsStream::Read(std::string* plaintext) {
  if (!ssl_ || !established_) return Result::kError;
  char buffer[16 * 1024];
  while (true) {
    ClearErrors();
    const int ret = SSL_read(ssl_, buffer, sizeof buffer);
    if (ret > 0) {
      plaintext->append(buffer, static_cast<std::size_t>(ret));
      // Every received byte taken and no decrypted byte left: another
      // SSL_read could only say "want more" (a whole record-layer pass).
      if (in_.empty() && SSL_pending(ssl_) == 0) return Result::kOk;
      continue;
    }
    Result r = Failure(ret, "TLS read");
    return r == Result::kWant ? Result::kOk : r;
  }
}

}  // namespace polar
