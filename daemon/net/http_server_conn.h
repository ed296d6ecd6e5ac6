// HttpServer::Conn: one accepted connection of the HTTP/1.1 server, the
// request being read on it and the answer being written, shared by the
// server's three source files: http_server.cc (accepting, reading and framing
// requests, closing), http_server_answers.cc (writing answers and refusals)
// and http_server_deadlines.cc (stages, deadlines, eviction).
//
// Private to daemon/net/http_server*.cc; owned by HttpServer (its conns_
// map); loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>

#include "daemon/net/http_server.h"

namespace polar {

struct HttpServer::Conn {
  int fd = -1;
  bool closed = false;
  std::string remote;  // printable address
  std::string ip_key;  // IpKey()
  HttpStage stage = HttpStage::kIdle;
  // When the stage started; for the first request's kIdle and kHead, the
  // accept (the head deadline runs from there).
  MonoTime since;
  bool first_request = true;
  uint64_t stage_bytes = 0;  // body read / response written in this stage
  uint32_t events = 0;       // the epoll mask now
  std::string in;            // read, not yet consumed
  // The request being read.
  HttpServerRequest request;
  bool keep_alive = true;
  bool http10 = false;
  bool head_method = false;
  uint64_t body_left = 0;
  std::optional<ChunkedDecoder> decoder;  // for a chunked body
  // The response being written.
  std::string out;
  std::size_t out_pos = 0;
  bool close_after = false;
  bool linger_after = false;
  std::size_t lingered = 0;
  // Position in idle_ while Evictable(stage).
  bool in_idle = false;
  std::list<Conn*>::iterator idle_it;
};

}  // namespace polar
