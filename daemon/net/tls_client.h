// TLS for the HTTPS client, without I/O of its own: TlsClientContext holds
// the OpenSSL context of one target (trust store, ALPN offer, the session
// kept for resumption) and TlsStream is one client connection's TLS state,
// fed with the ciphertext the socket received and drained of the ciphertext
// to send.
//
// Why no socket BIO: OpenSSL's socket BIO reads a record header and then its
// body with two read() calls and writes every record with its own write().
// Here the caller does one recv() per wake-up for everything that arrived and
// one send() per loop turn for everything encrypted meanwhile (HEADERS and
// DATA frames of many requests in one record), and uses MSG_NOSIGNAL.
//
// Owned by the HTTPS client; loop thread only. A context never throws: when
// it cannot be used (a CA file that does not load) error() says why and every
// handshake fails with that reason, so each request is a counted tls_error.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
typedef struct bio_st BIO;
typedef struct bio_method_st BIO_METHOD;

namespace polar {

struct TlsClientOptions {
  // PEM bundle to trust instead of the system store (a private CA); empty:
  // the system store.
  std::string ca_file;
  // Offer h2 and http/1.1 by ALPN (false: http/1.1 only).
  bool offer_h2 = true;
};

class TlsClientContext {
 public:
  explicit TlsClientContext(TlsClientOptions options);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  // Empty when the context is usable.
  const std::string& error() const { return error_; }
  SSL_CTX* ctx() const { return ctx_; }
  // The session the next connection offers for resumption (the newest the
  // server issued), or null.
  SSL_SESSION* session() const { return session_; }
  // Forgets the kept session (the server refused to resume it).
  void DropSession();
  BIO_METHOD* bio_method() const { return bio_method_; }

 private:
  static int OnNewSession(SSL* ssl, SSL_SESSION* session);

  SSL_CTX* ctx_ = nullptr;
  BIO_METHOD* bio_method_ = nullptr;
  SSL_SESSION* session_ = nullptr;
  std::string error_;
};

class TlsStream {
 public:
  enum class Result {
    kOk,      // done (handshake complete / plaintext taken)
    kWant,    // needs more ciphertext from the peer
    kClosed,  // the peer closed TLS (close_notify)
    kError,   // a TLS failure; error() says why
  };

  // `host` is checked against the certificate: a DNS name (also sent as SNI)
  // or an IP literal (matched against the certificate's IP addresses).
  TlsStream(TlsClientContext& context, const std::string& host,
            bool host_is_ip);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Drives the handshake with what has been received so far.
  Result Handshake();
  bool established() const { return established_; }
  // The protocol ALPN settled on ("h2", "http/1.1"), or "" (none: HTTP/1.1).
  std::string_view alpn() const;
  // True when the handshake resumed a kept session.
  bool resumed() const;

  // Ciphertext the socket received, for Handshake() and Read().
  void Received(const char* data, std::size_t size) { in_.append(data, size); }
  // Encrypts `plaintext` into outgoing(). kError only after a failure.
  Result Write(std::string_view plaintext);
  // Decrypts what is available and appends it to *plaintext: kOk when some
  // or none was appended and more may come (kWant is folded into kOk here).
  Result Read(std::string* plaintext);

  // Ciphertext waiting to be sent; the caller erases what it sent.
  std::string& outgoing() { return out_; }
  const std::string& error() const { return error_; }

 private:
  static int BioWrite(BIO* bio, const char* data, int size);
  static int BioRead(BIO* bio, char* data, int size);
  Result Failure(int ret, const char* what);

  TlsClientContext& context_;
  SSL* ssl_ = nullptr;
  std::string in_;  // ciphertext received, not yet consumed by OpenSSL
  std::size_t in_pos_ = 0;
  std::string out_;  // ciphertext produced, not yet sent
  bool established_ = false;
  std::string error_;

  friend class TlsClientContext;
};

}  // namespace polar
