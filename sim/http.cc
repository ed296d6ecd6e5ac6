#include "sim/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cctype>
#include <nlohmann/json.hpp>

namespace polar::sim {
namespace {

struct Pending {
  SimRequest request;
};

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

}  // namespace

const std::string* SimRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? nullptr : &it->second;
}

const std::string* SimRequest::Query(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? nullptr : &it->second;
}

SimResponse JsonError(int status, std::string_view error,
                      std::string_view detail) {
  SimResponse r;
  r.status = status;
  r.body = nlohmann::json{{"error", error}, {"detail", detail}}.dump();
  return r;
}

SimResponse NotFound() {
  SimResponse r;
  r.status = 404;
  r.body = R"({"detail":"Not Found"})";
  return r;
}

std::unique_ptr<SimServer> SimServer::Start(const ServerOptions& options,
                                            SimHandler handler,
                                            std::string* error) {
  std::unique_ptr<SimServer> server(new SimServer);
  server->handler_ = std::move(handler);
  server->max_body_bytes_ = options.max_body_bytes;
  sockaddr_storage storage{};
  if (options.ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(options.port);
    if (inet_pton(AF_INET6, options.host.c_str(), &a->sin6_addr) != 1) {
      *error = "not an IPv6 address: " + options.host;
      return nullptr;
    }
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(options.port);
    if (inet_pton(AF_INET, options.host.c_str(), &a->sin_addr) != 1) {
      *error = "not an IPv4 address: " + options.host;
      return nullptr;
    }
  }
  unsigned flags =
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO;
  if (options.ipv6) flags |= MHD_USE_IPv6;
  server->daemon_ = MHD_start_daemon(
      flags, options.port, nullptr, nullptr, &SimServer::OnRequest,
      server.get(), MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&storage),
      MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned>(options.threads),
      MHD_OPTION_NOTIFY_COMPLETED, &SimServer::OnCompleted, server.get(),
      MHD_OPTION_CONNECTION_LIMIT, 10'000u, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
  if (!server->daemon_) {
    *error =
        "cannot listen on " + options.host + ":" + std::to_string(options.port);
    return nullptr;
  }
  const MHD_DaemonInfo* info =
      MHD_get_daemon_info(server->daemon_, MHD_DAEMON_INFO_BIND_PORT);
  server->port_ = info ? info->port : options.port;
  return server;
}

SimServer::~SimServer() {
  if (daemon_) MHD_stop_daemon(daemon_);
}

MHD_Result SimServer::OnRequest(void* cls, MHD_Connection* connection,
                                const char* url, const char* method,
                                const char*, const char* upload_data,
                                size_t* upload_data_size, void** con_cls) {
  auto* self = static_cast<SimServer*>(cls);
  auto* pending = static_cast<Pending*>(*con_cls);
  if (!pending) {
    pending = new Pending;
    pending->request.method = method;
    pending->request.path = url;
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectHeader,
                              &pending->request);
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &CollectQuery,
                              &pending->request.query);
    *con_cls = pending;
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    SimRequest& r = pending->request;
    if (r.body.size() + *upload_data_size > self->max_body_bytes_) {
      r.body_too_large = true;
      std::string().swap(r.body);
    } else if (!r.body_too_large) {
      r.body.append(upload_data, *upload_data_size);
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  SimResponse out = self->handler_(pending->request);
  MHD_Response* response = MHD_create_response_from_buffer(
      out.body.size(), out.body.data(), MHD_RESPMEM_MUST_COPY);
  if (!out.content_type.empty() && !out.body.empty()) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                            out.content_type.c_str());
  }
  for (const auto& [name, value] : out.headers) {
    MHD_add_response_header(response, name.c_str(), value.c_str());
  }
  MHD_Result result = MHD_queue_response(
      connection, static_cast<unsigned>(out.status), response);
  MHD_destroy_response(response);
  return result;
}

void SimServer::OnCompleted(void*, MHD_Connection*, void** con_cls,
                            MHD_RequestTerminationCode) {
  delete static_cast<Pending*>(*con_cls);
  *con_cls = nullptr;
}

}  // namespace polar::sim
