// The HTTP edge of ls_serve, and the one file that knows the HTTP library (Boost.Beast on
// Boost.Asio): one event loop on one thread owns every socket, so a slow or idle client costs a
// connection (a few KiB), never a thread. It parses requests under hard limits, each with its
// status code (docs/SERVE.md, "Limits"), routes them by path and method, and writes each Answer
// out. Handlers run on the loop thread and must not block: the service moves parsing,
// tokenizing and the model to its own threads and answers through `Respond` from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/serve/api.h"

namespace ls::serve {

using Clock = std::chrono::steady_clock;

// Sends a request's answer; callable once, from any thread.
using Respond = std::function<void(Answer)>;

// A request as a handler sees it: its body read whole (within the body cap), any framing.
struct Request {
  std::string path;
  std::string body;
  Clock::time_point received;  // when its body was read
};

// A route: `method` (GET also answers HEAD) on `path`.
struct Route {
  std::string method;
  std::string path;
  std::function<void(Request, Respond)> handler;
};

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port
  size_t max_body_bytes = 1 << 20;  // bytes read, whatever the framing: beyond, 413
  size_t max_header_bytes = 16384;  // request line and header fields: beyond, 431
  size_t max_header_fields = 100;   // beyond, 431
  size_t max_connections = 1024;    // beyond, a new connection gets 503 and is closed at once
  std::chrono::milliseconds header_timeout{10000};     // a request head, first byte to last
  std::chrono::milliseconds body_timeout{30000};       // a request body, and writing an answer
  std::chrono::milliseconds keep_alive_timeout{5000};  // idle between requests: then closed
};

// What the server counts, for /metrics.
struct HttpStats {
  size_t open_connections = 0;
  uint64_t refused_connections = 0;  // over --max-connections
};

class HttpServer {
 public:
  // `on_answer(status, answer, seconds)` is called on the loop thread for every answer the
  // server sends (every path and error), with the time from the request's first byte.
  HttpServer(std::vector<Route> routes, HttpOptions options,
             std::function<void(const Answer& answer, double seconds)> on_answer);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the address and listens; returns the port (the chosen one for port 0). UserError naming
  // --host and --port when it cannot.
  int bind();
  // Serves on the calling thread until a drain finishes (below); false when the drain's timeout
  // cut connections.
  bool run();
  // From any thread: stop accepting (the port closes), close idle connections, answer every
  // request already read (each answer says `Connection: close`), then return from run(); after
  // `timeout` every connection left is cut. Returns at once.
  void drain(std::chrono::milliseconds timeout);
  // Thread-safe snapshot.
  HttpStats stats() const;

  struct Impl;  // the loop's state, shared with its connections (http_server.cpp)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ls::serve
