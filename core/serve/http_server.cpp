// The HTTP edge of ls_serve over cpp-httplib (http_server.h); nothing else includes httplib.
#include "core/serve/http_server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "core/base/error.h"

namespace ls::serve {
namespace {

using Clock = std::chrono::steady_clock;

// cpp-httplib's task queue with a bound: when every worker is busy and `max_pending` connections
// wait, the accept loop blocks, and further connections wait in the kernel's listen backlog.
class BoundedThreadPool : public httplib::TaskQueue {
 public:
  BoundedThreadPool(size_t threads, size_t max_pending) : max_pending_(max_pending) {
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mutex_);
    room_.wait(lock, [&] { return jobs_.size() < max_pending_; });
    jobs_.push_back(std::move(fn));
    ready_.notify_one();
  }
  // Runs every queued connection, then joins the workers.
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shutdown_ = true;
    }
    ready_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return shutdown_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      room_.notify_one();
      fn();
    }
  }
  const size_t max_pending_;
  std::mutex mutex_;
  std::condition_variable ready_, room_;
  std::deque<std::function<void()>> jobs_;
  bool shutdown_ = false;
  std::vector<std::thread> workers_;
};

void write_answer(const Answer& answer, httplib::Response& res) {
  res.status = answer.status;
  for (const auto& [name, value] : answer.headers) res.set_header(name, value);
  res.set_content(answer.body, answer.content_type);
}

}  // namespace

struct HttpServer::Impl {
  HttpOptions options;
  httplib::Server server;
  int listen_fd = -1;
};

HttpServer::HttpServer(std::vector<Route> routes, HttpOptions options,
                       std::function<void(int status, double seconds)> on_answer)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  httplib::Server& server = impl_->server;
  const size_t threads = options.threads;
  server.new_task_queue = [threads] { return new BoundedThreadPool(threads, threads); };
  server.set_payload_max_length(options.max_body_bytes);
  server.set_keep_alive_timeout(2);  // idle keep-alive connections delay a shutdown this long
  server.set_keep_alive_max_count(100);
  // cpp-httplib listens with a backlog of 5: a burst of clients connecting at once overflows it
  // and some see their connection reset. Keep the listening socket to listen again with more.
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second server bind a
  // port already served and take half its connections.
  // TCP_NODELAY (inherited by accepted sockets): httplib writes a response's headers and body
  // separately, and with Nagle's algorithm the body then waits for the client's delayed ACK of
  // the headers, about 40 ms per request on Linux loopback.
  server.set_socket_options([impl = impl_.get()](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    impl->listen_fd = sock;
  });
  server.set_tcp_nodelay(true);

  // Paths and their methods: anything else is 404 (unknown path) or 405 (known path).
  std::map<std::string, std::string> methods;
  for (const Route& route : routes) methods[route.path] = route.method;
  thread_local Clock::time_point started;
  server.set_pre_routing_handler([methods](const httplib::Request& req, httplib::Response& res) {
    started = Clock::now();
    const auto route = methods.find(req.path);
    if (route == methods.end()) {
      write_answer(error_answer(404, fmt::format("no such path: {}", req.path)), res);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method != route->second && !(route->second == "GET" && req.method == "HEAD")) {
      res.set_header("Allow", route->second);
      write_answer(error_answer(405, fmt::format("{} takes {}, not {}", req.path, route->second,
                                                 req.method)),
                   res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413)
      write_answer(error_answer(413, "request body too large (--max-body-bytes)"), res);
    else
      write_answer(error_answer(res.status, fmt::format("HTTP status {}", res.status)), res);
  });
  server.set_logger(
      [on_answer = std::move(on_answer)](const httplib::Request&, const httplib::Response& res) {
        on_answer(res.status, std::chrono::duration<double>(Clock::now() - started).count());
      });

  for (Route& route : routes) {
    auto handle = [handler = std::move(route.handler)](const httplib::Request& req,
                                                       httplib::Response& res) {
      write_answer(handler(req.body), res);
    };
    if (route.method == "GET")
      server.Get(route.path, std::move(handle));
    else if (route.method == "POST")
      server.Post(route.path, std::move(handle));
    else
      LS_ASSERT(false, "route {}: method {} is not served", route.path, route.method);
  }
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  const HttpOptions& options = impl_->options;
  httplib::Server& server = impl_->server;
  const int bound = options.port == 0
                        ? server.bind_to_any_port(options.host)
                        : (server.bind_to_port(options.host, options.port) ? options.port : -1);
  if (bound < 0 || ::listen(impl_->listen_fd, SOMAXCONN) != 0)
    fail("--host {} --port {}: cannot listen there (in use, or not an address of this machine)",
         options.host, options.port);
  return bound;
}

void HttpServer::listen() {
  impl_->server.listen_after_bind();
}

bool HttpServer::stop_if_listening() {
  if (!impl_->server.is_running()) return false;
  impl_->server.stop();
  return true;
}

}  // namespace ls::serve
