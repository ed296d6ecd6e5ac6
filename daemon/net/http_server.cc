#include "daemon/net/http_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/epoll.h>

#include <cstring>

namespace polar {
namespace {

// Per-connection request state, created on the first callback and freed in
// OnCompleted.
struct PendingRequest {
  HttpServerRequest request;
};

MHD_Result CollectHeader(void* cls, MHD_ValueKind, const char* key,
                         const char* value) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(cls);
  std::string name(key);
  for (char& c : name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  (*headers)[name] = value ? value : "";
  return MHD_YES;
}

MHD_Result CollectQuery(void* cls, MHD_ValueKind, const char* key,
                        const char* value) {
  auto* query = static_cast<std::map<std::string, std::string>*>(cls);
  (*query)[key] = value ? value : "";
  return MHD_YES;
}

std::string AddressText(const sockaddr* addr) {
  char text[INET6_ADDRSTRLEN] = {};
  if (!addr) return "";
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr,
              text, sizeof text);
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr,
              text, sizeof text);
  }
  return text;
}

}  // namespace

const std::string& HttpServerRequest::Header(
    const std::string& lower_name) const {
  static const std::string kEmpty;
  auto it = headers.find(lower_name);
  return it == headers.end() ? kEmpty : it->second;
}

HttpServer::HttpServer(EventLoop& loop, HttpServerOptions options,
                       HttpHandler handler)
    : loop_(loop), options_(std::move(options)), handler_(std::move(handler)) {}

std::unique_ptr<HttpServer> HttpServer::Start(EventLoop& loop,
                                              HttpServerOptions options,
                                              HttpHandler handler,
                                              std::string* error) {
  std::unique_ptr<HttpServer> server(
      new HttpServer(loop, std::move(options), std::move(handler)));
  const ListenAddress& listen = server->options_.listen;
  sockaddr_storage storage{};
  if (listen.ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(listen.port);
    inet_pton(AF_INET6, listen.host.c_str(), &a->sin6_addr);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(listen.port);
    inet_pton(AF_INET, listen.host.c_str(), &a->sin_addr);
  }
  unsigned flags = MHD_USE_EPOLL;
  if (listen.ipv6) flags |= MHD_USE_IPv6;
  server->daemon_ = MHD_start_daemon(
      flags, listen.port, nullptr, nullptr, &HttpServer::OnRequest,
      server.get(), MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&storage),
      MHD_OPTION_NOTIFY_COMPLETED, &HttpServer::OnCompleted, server.get(),
      MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned>(server->options_.max_connections),
      MHD_OPTION_CONNECTION_TIMEOUT,
      server->options_.connection_timeout_seconds,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      static_cast<size_t>(server->options_.connection_memory_bytes
                              ? server->options_.connection_memory_bytes
                              : 32 * 1024),
      MHD_OPTION_END);
  if (!server->daemon_) {
    *error = fmt::format(
        "cannot listen on {} (address in use, or not a local address?)",
        listen.ToString());
    return nullptr;
  }
  server->bound_ = listen;
  if (const MHD_DaemonInfo* info =
          MHD_get_daemon_info(server->daemon_, MHD_DAEMON_INFO_BIND_PORT)) {
    server->bound_.port = info->port;
  }
  const MHD_DaemonInfo* epoll_info =
      MHD_get_daemon_info(server->daemon_, MHD_DAEMON_INFO_EPOLL_FD);
  server->epoll_fd_ = epoll_info->epoll_fd;
  HttpServer* raw = server.get();
  loop.Watch(server->epoll_fd_, EPOLLIN, [raw](uint32_t) { raw->Run(); });
  raw->ArmTimeout();
  return server;
}

HttpServer::~HttpServer() {
  timer_.Cancel();
  if (epoll_fd_ >= 0) loop_.Unwatch(epoll_fd_);
  if (daemon_) MHD_stop_daemon(daemon_);
}

void HttpServer::Run() {
  MHD_run(daemon_);
  ArmTimeout();
}

void HttpServer::ArmTimeout() {
  timer_.Cancel();
  MHD_UNSIGNED_LONG_LONG ms = 0;
  if (MHD_get_timeout(daemon_, &ms) == MHD_YES)
    timer_ = loop_.After(std::chrono::milliseconds(ms), [this] { Run(); });
}

MHD_Result HttpServer::OnRequest(void* cls, MHD_Connection* connection,
                                 const char* url, const char* method,
                                 const char*, const char* upload_data,
                                 size_t* upload_data_size, void** con_cls) {
  auto* self = static_cast<HttpServer*>(cls);
  auto* pending = static_cast<PendingRequest*>(*con_cls);
  if (!pending) {
    pending = new PendingRequest;
    pending->request.method = method;
    pending->request.path = url;
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectHeader,
                              &pending->request.headers);
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &CollectQuery,
                              &pending->request.query);
    if (const MHD_ConnectionInfo* info = MHD_get_connection_info(
            connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS)) {
      pending->request.remote = AddressText(info->client_addr);
    }
    *con_cls = pending;
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    HttpServerRequest& r = pending->request;
    if (r.body.size() + *upload_data_size > self->options_.max_body_bytes) {
      r.body_too_large = true;
      r.body.clear();
      r.body.shrink_to_fit();
    } else if (!r.body_too_large) {
      r.body.append(upload_data, *upload_data_size);
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  HttpServerResponse out = self->handler_(pending->request);
  MHD_Response* response = MHD_create_response_from_buffer(
      out.body.size(), out.body.data(), MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                          out.content_type.c_str());
  for (const auto& [name, value] : out.headers) {
    MHD_add_response_header(response, name.c_str(), value.c_str());
  }
  MHD_Result result = MHD_queue_response(
      connection, static_cast<unsigned>(out.status), response);
  MHD_destroy_response(response);
  return result;
}

void HttpServer::OnCompleted(void*, MHD_Connection*, void** con_cls,
                             MHD_RequestTerminationCode) {
  delete static_cast<PendingRequest*>(*con_cls);
  *con_cls = nullptr;
}

}  // namespace polar
