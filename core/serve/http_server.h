// The HTTP edge of ls_serve, and the one file that knows the HTTP library (cpp-httplib): routes
// by path and method (404 for an unknown path, 405 with Allow for a wrong method), the body limit
// (413), bounded worker threads, TCP_NODELAY, a full listen backlog, and writing each Answer out.
// Swapping the HTTP library touches http_server.cpp alone.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/serve/api.h"

namespace ls::serve {

// A route: `method` (GET also answers HEAD) on `path`; the handler gets the request body.
struct Route {
  std::string method;
  std::string path;
  std::function<Answer(const std::string& body)> handler;
};

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port
  size_t max_body_bytes = 1 << 20;  // a larger body gets 413
  size_t threads = 32;              // workers; as many connections more wait in a queue
};

class HttpServer {
 public:
  // `on_answer(status, seconds)` is called for every answer (every path), with the time from the
  // request's headers to its answer.
  HttpServer(std::vector<Route> routes, HttpOptions options,
             std::function<void(int status, double seconds)> on_answer);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the address and listens; returns the port (the chosen one for port 0). UserError naming
  // --host and --port when it cannot.
  int bind();
  // Serves until stop; returns once every accepted request is answered.
  void listen();
  // Stops a listening server (from any thread); false when it does not listen yet.
  bool stop_if_listening();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ls::serve
