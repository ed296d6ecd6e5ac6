#include "sim/http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <unordered_map>

namespace polar::sim {

// One request on a libmicrohttpd connection. Outside the anonymous namespace
// because SimServer::Core, declared in the header, holds these.
struct SimServer::Conn {
  SimRequest request;
  MHD_Connection* connection = nullptr;
  bool handled = false;        // the handler ran for this request
  bool suspended = false;      // guarded by Core::mutex
  bool have_response = false;  // guarded by Core::mutex
  SimResponse response;        // guarded by Core::mutex until resumed
};

namespace {

using Conn = SimServer::Conn;
using ConnPtr = std::shared_ptr<Conn>;

MHD_Result CollectHeader(void* cls, MHD_ValueKind, const char* key,
                         const char* value) {
  auto* request = static_cast<SimRequest*>(cls);
  std::string name(key);
  for (char& c : name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name == "content-length") request->has_content_length = true;
  request->headers[name] = value ? value : "";
  return MHD_YES;
}

MHD_Result CollectQuery(void* cls, MHD_ValueKind, const char* key,
                        const char* value) {
  static_cast<std::multimap<std::string, std::string>*>(cls)->emplace(
      key, value ? value : "");
  return MHD_YES;
}

std::string ClientIp(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!info || !info->client_addr) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  const sockaddr* sa = info->client_addr;
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf,
              sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr,
              buf, sizeof buf);
  }
  return buf;
}

// Closing with SO_LINGER {on, 0} makes the kernel send RST instead of FIN: the
// client sees "connection reset by peer", as behind a crashing load balancer.
MHD_Result ResetConnection(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (info) {
    linger l{1, 0};
    setsockopt(info->connect_fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  return MHD_NO;
}

}  // namespace

struct SimServer::Core : std::enable_shared_from_this<SimServer::Core> {
  ServerOptions options;
  SimHandler handler;
  TimerThread* timer = nullptr;

  mutable std::mutex mutex;  // guards everything below and Conn's flags
  MHD_Daemon* daemon = nullptr;
  uint16_t port = 0;
  bool stopping = false;
  std::unordered_map<Conn*, ConnPtr> held;
  std::atomic<Outage> outage{Outage::kNone};
  std::mutex control;  // serialises StartDaemon/StopDaemon

  bool StartDaemon(std::string* error);
  void StopDaemon();
  bool Suspend(const ConnPtr& conn);
  void Resume(const ConnPtr& conn);
  void Deliver(const ConnPtr& conn, SimResponse response);
  MHD_Result Queue(const ConnPtr& conn, SimResponse response);

  static MHD_Result OnRequest(void* cls, MHD_Connection* connection,
                              const char* url, const char* method,
                              const char* version, const char* upload_data,
                              size_t* upload_data_size, void** con_cls);
  static void OnCompleted(void* cls, MHD_Connection* connection, void** con_cls,
                          MHD_RequestTerminationCode code);
};

namespace {

struct StreamCtx {
  std::weak_ptr<SimServer::Core> core;
  ConnPtr conn;
  std::shared_ptr<SseStream> stream;
};

}  // namespace

struct SseAccess {
  static ssize_t Read(void* cls, uint64_t, char* buf, size_t max);
  static void Free(void* cls);
};

ssize_t SseAccess::Read(void* cls, uint64_t, char* buf, size_t max) {
  auto* ctx = static_cast<StreamCtx*>(cls);
  SseStream& s = *ctx->stream;
  std::lock_guard lock(s.mutex_);
  if (!s.frames_.empty()) {
    size_t n = 0;
    while (n < max && !s.frames_.empty()) {
      const std::string& f = s.frames_.front();
      size_t take = std::min(max - n, f.size() - s.offset_);
      std::memcpy(buf + n, f.data() + s.offset_, take);
      n += take;
      s.offset_ += take;
      if (s.offset_ == f.size()) {
        s.frames_.pop_front();
        s.offset_ = 0;
      }
    }
    return static_cast<ssize_t>(n);
  }
  if (s.closed_) return MHD_CONTENT_READER_END_OF_STREAM;
  auto core = ctx->core.lock();
  // Nothing to send: park the connection until Push() wakes it (returning 0
  // without suspending would make libmicrohttpd spin).
  if (!core || !core->Suspend(ctx->conn))
    return MHD_CONTENT_READER_END_WITH_ERROR;
  s.waker_ = [weak = ctx->core, conn = ctx->conn] {
    if (auto c = weak.lock()) c->Resume(conn);
  };
  return 0;
}

void SseAccess::Free(void* cls) {
  auto* ctx = static_cast<StreamCtx*>(cls);
  {
    std::lock_guard lock(ctx->stream->mutex_);
    ctx->stream->gone_ = true;
    ctx->stream->waker_ = nullptr;
  }
  delete ctx;
}

bool SimServer::Core::StartDaemon(std::string* error) {
  sockaddr_storage storage{};
  if (options.ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, options.host.c_str(), &a->sin6_addr) != 1) {
      *error = "not an IPv6 address: " + options.host;
      return false;
    }
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, options.host.c_str(), &a->sin_addr) != 1) {
      *error = "not an IPv4 address: " + options.host;
      return false;
    }
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                   MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME;
  if (options.ipv6) flags |= MHD_USE_IPv6;
  MHD_Daemon* d = MHD_start_daemon(
      flags, port, nullptr, nullptr, &Core::OnRequest, this,
      MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&storage),
      MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned>(options.threads),
      MHD_OPTION_NOTIFY_COMPLETED, &Core::OnCompleted, this,
      MHD_OPTION_CONNECTION_LIMIT, 10'000u, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
  if (!d) {
    *error = "cannot listen on " + options.host + ":" + std::to_string(port);
    return false;
  }
  const MHD_DaemonInfo* info =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  std::lock_guard lock(mutex);
  daemon = d;
  if (info && info->port) port = info->port;
  stopping = false;
  return true;
}

void SimServer::Core::StopDaemon() {
  MHD_Daemon* d = nullptr;
  {
    std::lock_guard lock(mutex);
    // libmicrohttpd must not be stopped with suspended connections: resume
    // them all first; they are then closed with the daemon.
    stopping = true;
    for (auto& [raw, conn] : held) {
      conn->suspended = false;
      MHD_resume_connection(conn->connection);
    }
    held.clear();
    d = daemon;
    daemon = nullptr;
  }
  if (d) MHD_stop_daemon(d);
}

bool SimServer::Core::Suspend(const ConnPtr& conn) {
  std::lock_guard lock(mutex);
  if (stopping) return false;
  MHD_suspend_connection(conn->connection);
  conn->suspended = true;
  held.emplace(conn.get(), conn);
  return true;
}

void SimServer::Core::Resume(const ConnPtr& conn) {
  std::lock_guard lock(mutex);
  if (!conn->suspended) return;
  conn->suspended = false;
  held.erase(conn.get());
  MHD_resume_connection(conn->connection);
}

void SimServer::Core::Deliver(const ConnPtr& conn, SimResponse response) {
  std::unique_lock lock(mutex);
  if (!conn->suspended) {
    // The client went away meanwhile. The request was served all the same:
    // what it leaves for afterwards still happens.
    lock.unlock();
    if (response.on_sent) response.on_sent();
    return;
  }
  conn->response = std::move(response);
  conn->have_response = true;
  conn->suspended = false;
  held.erase(conn.get());
  MHD_resume_connection(conn->connection);
}

MHD_Result SimServer::Core::Queue(const ConnPtr& conn, SimResponse out) {
  if (out.disconnect == SimResponse::Disconnect::kReset)
    return ResetConnection(conn->connection);
  if (out.disconnect == SimResponse::Disconnect::kClose) return MHD_NO;
  MHD_Response* response = nullptr;
  if (out.stream) {
    auto* ctx = new StreamCtx{weak_from_this(), conn, out.stream};
    response = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 4096, &SseAccess::Read, ctx, &SseAccess::Free);
    if (!response) delete ctx;
  } else {
    response = MHD_create_response_from_buffer(out.body.size(), out.body.data(),
                                               MHD_RESPMEM_MUST_COPY);
  }
  if (!response) return MHD_NO;
  if (!out.content_type.empty() && (!out.body.empty() || out.stream)) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                            out.content_type.c_str());
  }
  for (const auto& [name, value] : out.headers) {
    MHD_add_response_header(response, name.c_str(), value.c_str());
  }
  MHD_Result result = MHD_queue_response(
      conn->connection, static_cast<unsigned>(out.status), response);
  MHD_destroy_response(response);
  if (out.on_sent) out.on_sent();
  return result;
}

MHD_Result SimServer::Core::OnRequest(void* cls, MHD_Connection* connection,
                                      const char* url, const char* method,
                                      const char*, const char* upload_data,
                                      size_t* upload_data_size,
                                      void** con_cls) {
  auto* self = static_cast<Core*>(cls);
  auto* holder = static_cast<ConnPtr*>(*con_cls);
  if (!holder) {
    if (self->outage.load() == Outage::kReset)
      return ResetConnection(connection);
    holder = new ConnPtr(std::make_shared<Conn>());
    Conn& conn = **holder;
    conn.connection = connection;
    conn.request.method = method;
    conn.request.path = url;
    conn.request.client_ip = ClientIp(connection);
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectHeader,
                              &conn.request);
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &CollectQuery,
                              &conn.request.query);
    *con_cls = holder;
    return MHD_YES;
  }
  const ConnPtr& conn = *holder;
  if (*upload_data_size > 0) {
    SimRequest& r = conn->request;
    if (r.body.size() + *upload_data_size > self->options.max_body_bytes) {
      r.body_too_large = true;
      std::string().swap(r.body);
    } else if (!r.body_too_large) {
      if (r.body.empty()) {
        // One allocation for the whole body when its length is announced.
        auto it = r.headers.find("content-length");
        if (it != r.headers.end()) {
          unsigned long long n = std::strtoull(it->second.c_str(), nullptr, 10);
          if (n <= self->options.max_body_bytes) r.body.reserve(n);
        }
      }
      r.body.append(upload_data, *upload_data_size);
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  {
    std::unique_lock lock(self->mutex);
    if (conn->have_response) {
      SimResponse out = std::move(conn->response);
      conn->have_response = false;
      lock.unlock();
      return self->Queue(conn, std::move(out));
    }
  }
  if (conn->handled) return MHD_NO;  // resumed without a response: stopping
  conn->handled = true;
  if (self->outage.load() == Outage::kReset) return ResetConnection(connection);

  SimResponse out = self->handler(conn->request);
  auto now = self->timer->clock().Now();
  if (!out.finish && out.hold_until <= now)
    return self->Queue(conn, std::move(out));

  auto when = std::max(out.hold_until, now);
  if (!self->Suspend(conn)) {
    // Shutting down: no holding; do the deferred work now.
    if (out.finish) out = out.finish();
    return self->Queue(conn, std::move(out));
  }
  self->timer->Schedule(when, [weak = self->weak_from_this(), conn,
                               out = std::move(out)]() mutable {
    // The deferred work runs even if the client went away: the server had
    // accepted the request.
    SimResponse result = out.finish ? out.finish() : std::move(out);
    if (auto core = weak.lock()) core->Deliver(conn, std::move(result));
  });
  return MHD_YES;
}

void SimServer::Core::OnCompleted(void*, MHD_Connection*, void** con_cls,
                                  MHD_RequestTerminationCode) {
  delete static_cast<ConnPtr*>(*con_cls);
  *con_cls = nullptr;
}

std::unique_ptr<SimServer> SimServer::Start(const ServerOptions& options,
                                            SimHandler handler,
                                            TimerThread* timer,
                                            std::string* error) {
  auto core = std::make_shared<Core>();
  core->options = options;
  core->handler = std::move(handler);
  core->timer = timer;
  core->port = options.port;
  if (!core->StartDaemon(error)) return nullptr;
  return std::unique_ptr<SimServer>(new SimServer(std::move(core)));
}

SimServer::~SimServer() {
  std::lock_guard control(core_->control);
  core_->StopDaemon();
}

uint16_t SimServer::port() const {
  std::lock_guard lock(core_->mutex);
  return core_->port;
}

bool SimServer::SetOutage(Outage mode, std::string* error) {
  std::lock_guard control(core_->control);
  Outage before = core_->outage.exchange(mode);
  bool listening;
  {
    std::lock_guard lock(core_->mutex);
    listening = core_->daemon != nullptr;
  }
  if (mode == Outage::kRefuse && listening) {
    core_->StopDaemon();
  } else if (mode != Outage::kRefuse && !listening) {
    if (!core_->StartDaemon(error)) {
      core_->outage = before;
      return false;
    }
  }
  return true;
}

SimServer::Outage SimServer::outage() const { return core_->outage.load(); }

std::size_t SimServer::held_connections() const {
  std::lock_guard lock(core_->mutex);
  return core_->held.size();
}

bool ParseOutage(const std::string& text,
                 std::pair<SimServer::Outage, Duration>* out) {
  auto colon = text.find(':');
  std::string mode = text.substr(0, colon);
  if (mode == "refuse") {
    out->first = SimServer::Outage::kRefuse;
  } else if (mode == "reset") {
    out->first = SimServer::Outage::kReset;
  } else {
    return false;
  }
  return colon != std::string::npos &&
         ParseDuration(text.substr(colon + 1), &out->second);
}

const char* ToString(SimServer::Outage mode) {
  switch (mode) {
    case SimServer::Outage::kNone:
      return "none";
    case SimServer::Outage::kRefuse:
      return "refuse";
    case SimServer::Outage::kReset:
      return "reset";
  }
  return "none";
}

}  // namespace polar::sim
