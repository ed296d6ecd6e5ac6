// The simulator's HTTP request/response values and the libmicrohttpd server
// that carries them.
//
// SimServer owns a libmicrohttpd daemon with its own thread pool (polar-sim is
// a stand-in target that must take 20,000 requests/s, so it uses threads; the
// one-loop rule is polar-loadd's). The handler is called concurrently from
// those threads and must be thread-safe.
#pragma once

#include <microhttpd.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace polar::sim {

struct SimRequest {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  bool has_content_length = false;
  bool body_too_large = false;

  const std::string* Header(const std::string& lower_name) const;
  const std::string* Query(const std::string& name) const;
};

struct SimResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

using SimHandler = std::function<SimResponse(const SimRequest&)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;
  bool ipv6 = false;
  int threads = 2;
  // Polar refuses bodies over 10 MiB (API_MAX_REQUEST_BODY_SIZE, polar-api.md
  // §0) with 413.
  std::size_t max_body_bytes = 10 * 1024 * 1024;
};

class SimServer {
 public:
  static std::unique_ptr<SimServer> Start(const ServerOptions& options,
                                          SimHandler handler,
                                          std::string* error);
  ~SimServer();
  uint16_t port() const { return port_; }

 private:
  SimServer() = default;
  static MHD_Result OnRequest(void* cls, MHD_Connection* connection,
                              const char* url, const char* method,
                              const char* version, const char* upload_data,
                              size_t* upload_data_size, void** con_cls);
  static void OnCompleted(void* cls, MHD_Connection* connection, void** con_cls,
                          MHD_RequestTerminationCode code);

  SimHandler handler_;
  std::size_t max_body_bytes_ = 0;
  MHD_Daemon* daemon_ = nullptr;
  uint16_t port_ = 0;
};

// Polar's error bodies (polar-api.md §6).
SimResponse JsonError(int status, std::string_view error,
                      std::string_view detail);
SimResponse NotFound();  // {"detail":"Not Found"}

}  // namespace polar::sim
