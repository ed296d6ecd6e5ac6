#include "daemon/net/h2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "daemon/net/retry_after.h"

namespace polar {
namespace {

// A response header block above this is garbage, not an answer from Polar.
constexpr std::size_t kMaxHeaderBlock = 64 * 1024;
// Cap on the server's concurrency limit, whatever it says: more streams on
// one connection only deepen its queue (the in-flight caps bound it anyway).
constexpr uint32_t kMaxStreamsCap = 1000;

nghttp2_nv Header(std::string_view name, std::string_view value,
                  uint8_t flags = NGHTTP2_NV_FLAG_NONE) {
  nghttp2_nv nv;
  // nghttp2 does not write through these pointers; its API is not const.
  nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
  nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
  nv.namelen = name.size();
  nv.valuelen = value.size();
  // Names are string literals that outlive the frame.
  nv.flags = flags | NGHTTP2_NV_FLAG_NO_COPY_NAME;
  return nv;
}

}  // namespace

struct H2Session::Stream {
  std::string path;  // ":path", kept until the stream ends
  std::string request_body;
  std::size_t sent = 0;  // bytes of request_body handed to nghttp2
  long status = 0;
  std::optional<Duration> retry_after;
  std::string body;
  std::size_t header_bytes = 0;
  bool complete = false;   // the response ended (END_STREAM received)
  bool too_large = false;  // body or header block over the limit
  bool cancelled = false;  // we reset it; nobody waits for it
};

struct H2Session::Callbacks {
  static H2Session* Self(void* user) { return static_cast<H2Session*>(user); }

  static Stream* Find(H2Session* self, int32_t id) {
    auto it = self->streams_.find(id);
    return it == self->streams_.end() ? nullptr : it->second.get();
  }

  static ssize_t ReadBody(nghttp2_session*, int32_t, uint8_t* buffer,
                          size_t length, uint32_t* flags,
                          nghttp2_data_source* source, void*) {
    auto* stream = static_cast<Stream*>(source->ptr);
    const std::size_t n =
        std::min(length, stream->request_body.size() - stream->sent);
    std::memcpy(buffer, stream->request_body.data() + stream->sent, n);
    stream->sent += n;
    if (stream->sent == stream->request_body.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return static_cast<ssize_t>(n);
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame,
                      const uint8_t* name, size_t namelen, const uint8_t* value,
                      size_t valuelen, uint8_t, void* user) {
    H2Session* self = Self(user);
    Stream* stream = Find(self, frame->hd.stream_id);
    if (!stream || stream->cancelled) return 0;
    stream->header_bytes += namelen + valuelen + 32;  // RFC 9113's accounting
    if (stream->header_bytes > kMaxHeaderBlock) {
      stream->too_large = true;
      // nghttp2 resets the stream (INTERNAL_ERROR) and closes it.
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      // nghttp2 has checked it is three digits.
      int status = 0;
      std::from_chars(v.data(), v.data() + v.size(), status);
      stream->status = status;
    } else if (n == "retry-after") {
      stream->retry_after = ParseRetryAfter(v, self->now_);
    }
    return 0;
  }

  static int OnData(nghttp2_session* session, uint8_t, int32_t id,
                    const uint8_t* data, size_t size, void* user) {
    H2Session* self = Self(user);
    Stream* stream = Find(self, id);
    if (!stream || stream->cancelled || stream->too_large) return 0;
    if (stream->body.size() + size > self->max_body_) {
      stream->too_large = true;
      stream->body.clear();
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      return 0;
    }
    stream->body.append(reinterpret_cast<const char*>(data), size);
    return 0;
  }

  static int OnFrame(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    H2Session* self = Self(user);
    switch (frame->hd.type) {
      case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
          self->settings_received_ = true;
        }
        break;
      case NGHTTP2_GOAWAY:
        self->goaway_ = true;
        break;
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
          if (Stream* s = Find(self, frame->hd.stream_id)) s->complete = true;
        }
        break;
      default:
        break;
    }
    return 0;
  }

  static int OnError(nghttp2_session*, int, const char* message, size_t length,
                     void* user) {
    Self(user)->last_error_.assign(message, length);
    return 0;
  }

  static int OnClose(nghttp2_session*, int32_t id, uint32_t code, void* user) {
    H2Session* self = Self(user);
    auto it = self->streams_.find(id);
    if (it == self->streams_.end()) return 0;
    std::unique_ptr<Stream> stream = std::move(it->second);
    self->streams_.erase(it);
    if (stream->cancelled) return 0;
    H2StreamEnd end;
    end.stream_id = id;
    if (stream->complete && !stream->too_large && stream->status >= 200) {
      end.kind = H2StreamEnd::Kind::kComplete;
      end.status = stream->status;
      end.retry_after = stream->retry_after;
      end.body = std::move(stream->body);
    } else if (stream->too_large) {
      end.kind = H2StreamEnd::Kind::kTooLarge;
      end.error = stream->header_bytes > kMaxHeaderBlock
                      ? "response header block over the size limit"
                      : "response body over the size limit";
    } else if (code == NGHTTP2_REFUSED_STREAM) {
      end.kind = H2StreamEnd::Kind::kRefused;
      end.error = self->goaway_
                      ? "not processed: the server sent GOAWAY"
                      : "stream refused by the server (REFUSED_STREAM)";
    } else {
      end.kind = H2StreamEnd::Kind::kReset;
      end.status = stream->status;
      end.error = std::string("stream reset: ") + nghttp2_http2_strerror(code);
    }
    self->ended_.push_back(std::move(end));
    return 0;
  }
};

H2Session::H2Session(std::size_t max_body) : max_body_(max_body) {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks,
                                                   &Callbacks::OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks,
                                                            &Callbacks::OnData);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks,
                                                       &Callbacks::OnFrame);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks,
                                                         &Callbacks::OnClose);
  nghttp2_session_callbacks_set_error_callback2(callbacks, &Callbacks::OnError);
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  nghttp2_option_set_peer_max_concurrent_streams(option, kDefaultMaxStreams);
  nghttp2_session_client_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  // No server push; a stream window as large as the largest body accepted, so
  // a full-size answer never waits for a WINDOW_UPDATE round trip.
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
       static_cast<uint32_t>(std::min<std::size_t>(
           std::max<std::size_t>(max_body_, 65535), (1u << 31) - 1))},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings,
                          sizeof settings / sizeof settings[0]);
}

H2Session::~H2Session() { nghttp2_session_del(session_); }

uint32_t H2Session::max_streams() const {
  if (!settings_received_) return kDefaultMaxStreams;
  return std::min(nghttp2_session_get_remote_settings(
                      session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
                  kMaxStreamsCap);
}

bool H2Session::CanSubmit() const {
  return !broken_ && !goaway_ && streams_.size() < max_streams() &&
         nghttp2_session_check_request_allowed(session_) != 0;
}

int32_t H2Session::Submit(const Request& request, const H2Headers& headers) {
  if (!CanSubmit()) return 0;
  auto stream = std::make_unique<Stream>();
  stream->path = headers.path_prefix + request.path;
  const bool body_method =
      request.method == Method::kPost || request.method == Method::kPut ||
      request.method == Method::kPatch ||
      (request.method == Method::kDelete && !request.body.empty());
  char digits[24];
  std::string_view length;
  if (body_method) {
    auto [end, ec] =
        std::to_chars(digits, digits + sizeof digits, request.body.size());
    length = std::string_view(digits, static_cast<std::size_t>(end - digits));
    stream->request_body = request.body;
  }
  nghttp2_nv nva[9];
  std::size_t n = 0;
  nva[n++] = Header(":method", MethodName(request.method));
  nva[n++] = Header(":scheme", "https");
  nva[n++] = Header(":authority", headers.authority);
  nva[n++] = Header(":path", stream->path);
  if (!headers.user_agent.empty()) {
    nva[n++] = Header("user-agent", headers.user_agent);
  }
  nva[n++] = Header("accept", "application/json");
  if (body_method) {
    // Always a length: Polar answers 411 without one.
    nva[n++] = Header("content-type", "application/json");
    nva[n++] = Header("content-length", length);
  }
  if (request.authenticated && !headers.authorization.empty()) {
    // Never indexed: the token stays out of every HPACK table on the way.
    nva[n++] = Header("authorization", headers.authorization,
                      NGHTTP2_NV_FLAG_NO_INDEX);
  }
  nghttp2_data_provider provider;
  provider.source.ptr = stream.get();
  provider.read_callback = &Callbacks::ReadBody;
  const int32_t id = nghttp2_submit_request(
      session_, nullptr, nva, n,
      body_method && !request.body.empty() ? &provider : nullptr, nullptr);
  if (id < 0) return 0;
  streams_.emplace(id, std::move(stream));
  return id;
}

void H2Session::Cancel(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  it->second->cancelled = true;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id,
                            NGHTTP2_CANCEL);
}

bool H2Session::Receive(std::string_view data, WallTime now) {
  if (broken_) return false;
  now_ = now;
  const ssize_t n = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  if (n < 0) {
    broken_ = true;
    error_ = std::string("HTTP/2: ") + nghttp2_strerror(static_cast<int>(n));
    return false;
  }
  // nghttp2 stops reading once its own GOAWAY is out, not when it is
  // queued: take the frames now (Output() sends them) and then ask.
  if (!Drain(&pending_out_)) return false;
  if (!goaway_ && nghttp2_session_want_read(session_) == 0) {
    // nghttp2 found a connection error in what arrived and queued its own
    // GOAWAY: nothing more will be read here.
    broken_ = true;
    error_ = "HTTP/2: " + (last_error_.empty() ? std::string("protocol error")
                                               : last_error_);
    return false;
  }
  return true;
}

bool H2Session::Output(std::string* out) {
  if (broken_) return false;
  if (!pending_out_.empty()) {
    out->append(pending_out_);
    pending_out_.clear();
  }
  return Drain(out);
}

bool H2Session::Drain(std::string* out) {
  while (true) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      broken_ = true;
      error_ = std::string("HTTP/2: ") + nghttp2_strerror(static_cast<int>(n));
      return false;
    }
    if (n == 0) return true;
    out->append(reinterpret_cast<const char*>(data),
                static_cast<std::size_t>(n));
  }
}

bool H2Session::WantsToWrite() const {
  return !pending_out_.empty() || nghttp2_session_want_write(session_) != 0;
}

bool H2Session::finished() const {
  return nghttp2_session_want_read(session_) == 0 &&
         nghttp2_session_want_write(session_) == 0;
}

}  // namespace polar
