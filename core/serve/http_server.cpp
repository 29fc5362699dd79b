// The HTTP edge of ls_serve over Boost.Beast (http_server.h); nothing else includes Beast or Asio.
//
// One io_context on one thread owns the listening socket and every connection. A connection is a
// Session moving through idle -> head -> body -> handling -> writing and back to idle (keep-alive,
// pipelined requests read from what is buffered), each step under its own deadline; only
// `handling` waits for another thread, which answers through Respond (posted back to the loop).
// Answers are serialized here, so nothing a handler throws or a library says reaches a header.
#include "core/serve/http_server.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <map>
#include <optional>
#include <unordered_map>

#include "core/base/error.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace ls::serve {
namespace {

constexpr std::chrono::milliseconds kLinger{2000};  // reading what a refused client still sends
constexpr size_t kReadChunk = 65536;
constexpr size_t kFirstRead = 2048;  // an idle connection's buffer: a small head fits

std::string reason(int status) {
  const auto text = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  return text.empty() ? "Status" : std::string(text);
}

bool iequals(beast::string_view a, beast::string_view b) {
  return beast::iequals(a, b);
}

beast::string_view trim(beast::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A header value as written out: control characters (CR, LF) dropped, so no answer splits.
std::string header_value(const std::string& value) {
  std::string out;
  for (char c : value)
    if (static_cast<unsigned char>(c) >= 0x20 || c == '\t') out += c;
  return out;
}

// The whole response, ready to write: status line, headers, body (none for HEAD).
std::string serialize(const Answer& answer, bool head_only, bool close) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nServer: ls_serve\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
      "Connection: {}\r\n",
      answer.status, reason(answer.status), header_value(answer.content_type), answer.body.size(),
      close ? "close" : "keep-alive");
  for (const auto& [name, value] : answer.headers)
    out += fmt::format("{}: {}\r\n", header_value(name), header_value(value));
  out += "\r\n";
  if (!head_only) out += answer.body;
  return out;
}

}  // namespace

class Session;

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  HttpOptions options;
  std::map<std::string, Route> routes;  // by path
  std::function<void(const Answer&, double)> on_answer;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_pause{io};  // after an accept error (out of file descriptors)
  asio::steady_timer drain_timer{io};
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // the loop thread's
  bool draining = false;
  bool drained_cleanly = true;
  std::atomic<size_t> open{0};
  std::atomic<uint64_t> refused{0};

  void accept();
  void on_accept(const beast::error_code& ec, tcp::socket socket);
  void add_session(tcp::socket socket);
  void refuse(tcp::socket socket);
  void session_closed(Session* session);
  void start_drain(std::chrono::milliseconds timeout);
};

// One connection (file comment). Every member function runs on the loop thread.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<HttpServer::Impl> server)
      : socket_(std::move(socket)),
        deadline_(socket_.get_executor()),
        buffer_(server->options.max_header_bytes + kReadChunk),
        server_(std::move(server)) {}

  void start() { wait_for_request(server_->options.header_timeout); }

  // A drain: an idle connection with nothing sent closes. What a client sent before the signal
  // (a head arriving included) is read and answered, until --shutdown-timeout.
  void close_if_unstarted() {
    if (state_ == State::kIdle && !has_input()) close();
  }
  void close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    deadline_.cancel();
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    server_->session_closed(this);
  }

 private:
  enum class State { kIdle, kHead, kBody, kHandling, kWriting, kLinger, kClosed };

  const HttpOptions& options() const { return server_->options; }

  // Bytes of a next request: buffered here, or waiting in the socket.
  bool has_input() {
    beast::error_code ec;
    return buffer_.size() > 0 || (socket_.available(ec) > 0 && !ec);
  }

  // The deadline of the step under way: when it passes, the step's socket operation is cancelled
  // and completes with operation_aborted while timed_out_ says why. (Not beast::tcp_stream's
  // timeouts: they close the socket, and a 408 could no longer be sent.)
  void arm(Clock::duration timeout) {
    timed_out_ = false;
    deadline_.expires_after(timeout);
    deadline_.async_wait([self = shared_from_this(), armed = ++armed_](beast::error_code ec) {
      if (ec || armed != self->armed_ || self->state_ == State::kClosed) return;
      self->timed_out_ = true;
      beast::error_code ignored;
      self->socket_.cancel(ignored);
    });
  }
  void disarm() {
    ++armed_;
    deadline_.cancel();
  }
  bool timed_out(const beast::error_code& ec) const {
    return timed_out_ && ec == asio::error::operation_aborted;
  }

  // Idle: wait for a request's first byte (keep-alive or a fresh connection); what is buffered
  // already (pipelined requests) starts at once.
  void wait_for_request(std::chrono::milliseconds idle_timeout) {
    state_ = State::kIdle;
    if (buffer_.size() > 0) return read_head();
    buffer_.shrink_to_fit();
    if (server_->draining && !has_input()) return close();
    arm(idle_timeout);
    socket_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (self->state_ == State::kClosed) return;
                              self->buffer_.commit(n);
                              if (ec) return self->close();  // idle timeout or the client left
                              self->read_head();
                            });
  }

  // The request head, within the header timeout from its first byte and the header caps.
  void read_head() {
    state_ = State::kHead;
    first_byte_ = Clock::now();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(options().max_header_bytes));
    parser_->body_limit(options().max_body_bytes);
    arm(options().header_timeout);
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (self->state_ != State::kClosed) self->on_head(ec);
                            });
  }

  void on_head(beast::error_code ec) {
    if (timed_out(ec))
      return refuse(408, "the request head did not arrive within the header timeout");
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
      return refuse(431, fmt::format("request head over {} bytes", options().max_header_bytes));
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::connection_reset)
      return close();
    if (ec == http::error::body_limit)  // a Content-Length over the cap, known from the head
      return refuse(413,
                    fmt::format("request body of {} bytes, over --max-body-bytes {}",
                                parser_->content_length().value_or(0), options().max_body_bytes),
                    true);
    if (ec) return refuse(400, fmt::format("malformed request: {}", ec.message()));
    const auto& request = parser_->get();
    keep_alive_ = request.keep_alive();
    head_only_ = request.method() == http::verb::head;
    if (static_cast<size_t>(std::distance(request.begin(), request.end())) >
        options().max_header_fields)
      return refuse(431, fmt::format("more than {} header fields", options().max_header_fields));

    // Framing: exactly one of a Content-Length or a chunked Transfer-Encoding, or neither.
    size_t lengths = 0, codings = 0;
    bool chunked = false;
    for (const auto& field : request) {
      if (field.name() == http::field::content_length) ++lengths;
      if (field.name() == http::field::transfer_encoding) {
        ++codings;
        chunked = iequals(trim(field.value()), "chunked");
      }
    }
    if (lengths > 1) return refuse(400, "more than one Content-Length");
    if (codings > 1) return refuse(400, "more than one Transfer-Encoding");
    if (lengths && codings) return refuse(400, "both Content-Length and Transfer-Encoding");
    if (codings && !chunked) return refuse(400, "Transfer-Encoding other than chunked");

    // The route, by path (the query string ignored) and method.
    beast::string_view target = request.target();
    path_ = std::string(target.substr(0, target.find('?')));
    const auto route = server_->routes.find(path_);
    const bool has_body = lengths > 0 || chunked;
    if (route == server_->routes.end())
      return finish(error_answer(404, fmt::format("no such path: {}", path_)), has_body);
    const std::string method(request.method_string());
    if (method != route->second.method && !(route->second.method == "GET" && head_only_)) {
      Answer answer = error_answer(
          405, fmt::format("{} takes {}, not {}", path_, route->second.method, method));
      answer.headers.emplace_back("Allow", route->second.method);
      return finish(std::move(answer), has_body);
    }
    route_ = &route->second;

    if (method == "POST") {
      if (const auto coding = request.find(http::field::content_encoding);
          coding != request.end() && !iequals(trim(coding->value()), "identity"))
        return refuse(415, "Content-Encoding other than identity", true);
      if (!has_body) return refuse(411, "a POST needs a Content-Length or a chunked body");
      if (parser_->content_length() && *parser_->content_length() > options().max_body_bytes)
        return refuse(413,
                      fmt::format("request body of {} bytes, over --max-body-bytes {}",
                                  *parser_->content_length(), options().max_body_bytes),
                      true);
    }
    if (parser_->is_done()) return dispatch();
    if (const auto expect = request.find(http::field::expect);
        expect != request.end() && iequals(trim(expect->value()), "100-continue")) {
      // The client waits for this before it sends the body (curl does for bodies over 1 KiB).
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      state_ = State::kWriting;
      arm(options().body_timeout);
      return asio::async_write(socket_, asio::buffer(kContinue),
                               [self = shared_from_this()](beast::error_code ec, size_t) {
                                 if (self->state_ == State::kClosed) return;
                                 if (ec) return self->close();
                                 self->read_body();
                               });
    }
    read_body();
  }

  // The body, within the body timeout and the body cap counted on the bytes read.
  void read_body() {
    state_ = State::kBody;
    arm(options().body_timeout);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (self->state_ == State::kClosed) return;
                       if (ec == http::error::body_limit)
                         return self->refuse(413,
                                             fmt::format("request body over --max-body-bytes {}",
                                                         self->options().max_body_bytes),
                                             true);
                       if (self->timed_out(ec))
                         return self->refuse(408, "the request body did not arrive in time");
                       if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
                           ec == asio::error::eof || ec == asio::error::connection_reset)
                         return self->close();
                       if (ec)
                         return self->refuse(400, fmt::format("malformed body: {}", ec.message()));
                       self->dispatch();
                     });
  }

  // The route's handler; its answer comes back through Respond, from any thread, once.
  void dispatch() {
    state_ = State::kHandling;
    disarm();
    Request request{path_, std::move(parser_->get().body()), Clock::now()};
    parser_.reset();
    auto answered = std::make_shared<std::atomic<bool>>(false);
    Respond respond = [self = shared_from_this(), answered](Answer answer) {
      if (answered->exchange(true)) return;
      asio::post(self->server_->io, [self, answer = std::move(answer)]() mutable {
        if (self->state_ == State::kHandling) self->finish(std::move(answer), false);
      });
    };
    try {
      route_->handler(std::move(request), respond);
    } catch (const std::exception& e) {
      // A handler's failure is the server's: said on stderr, never in the answer.
      std::fprintf(stderr, "ls_serve: %s: %s\n", path_.c_str(), e.what());
      respond(error_answer(500, "internal error"));
    }
  }

  // An error answer, then the connection closes. With `unread_body`, what the client still sends
  // is read and dropped for a while, so it sees the answer rather than a reset.
  void refuse(int status, const std::string& message, bool unread_body = false) {
    keep_alive_ = false;
    finish(error_answer(status, message), unread_body);
  }

  // Writes `answer`; then the next request, or the close.
  void finish(Answer answer, bool unread_body) {
    const bool close_after = !keep_alive_ || unread_body || (server_->draining && !has_input());
    server_->on_answer(answer, std::chrono::duration<double>(Clock::now() - first_byte_).count());
    out_ = serialize(answer, head_only_, close_after);
    state_ = State::kWriting;
    arm(options().body_timeout);
    asio::async_write(
        socket_, asio::buffer(out_),
        [self = shared_from_this(), close_after, unread_body](beast::error_code ec, size_t) {
          if (self->state_ == State::kClosed) return;
          self->out_ = std::string();
          if (ec) return self->close();
          if (unread_body) return self->linger();
          if (close_after) return self->close();
          self->wait_for_request(self->options().keep_alive_timeout);
        });
  }

  // After an answer to a request whose body was not read: stop sending, read and drop what
  // arrives until the client closes or kLinger passes, then close.
  void linger() {
    state_ = State::kLinger;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    buffer_.consume(buffer_.size());
    arm(kLinger);
    drop_input();
  }
  void drop_input() {
    socket_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (self->state_ == State::kClosed) return;
                              if (ec) return self->close();
                              self->drop_input();
                            });
  }

  tcp::socket socket_;
  asio::steady_timer deadline_;
  uint64_t armed_ = 0;  // which arm() the pending deadline belongs to
  bool timed_out_ = false;
  beast::flat_buffer buffer_;
  std::shared_ptr<HttpServer::Impl> server_;
  std::optional<http::request_parser<http::string_body>> parser_;
  State state_ = State::kIdle;
  Clock::time_point first_byte_ = Clock::now();
  std::string path_;
  const Route* route_ = nullptr;
  bool keep_alive_ = true;
  bool head_only_ = false;
  std::string out_;  // the answer being written
};

void HttpServer::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    self->on_accept(ec, std::move(socket));
  });
}

void HttpServer::Impl::on_accept(const beast::error_code& ec, tcp::socket socket) {
  if (!acceptor.is_open()) return;  // draining
  if (ec) {
    // Out of file descriptors (or a transient error): pause rather than spin on it.
    accept_pause.expires_after(std::chrono::milliseconds(50));
    accept_pause.async_wait([self = shared_from_this()](beast::error_code) {
      if (self->acceptor.is_open()) self->accept();
    });
    return;
  }
  add_session(std::move(socket));
  accept();
}

void HttpServer::Impl::add_session(tcp::socket socket) {
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);  // answers go out whole, at once
  if (sessions.size() >= options.max_connections) return refuse(std::move(socket));
  auto session = std::make_shared<Session>(std::move(socket), shared_from_this());
  sessions.emplace(session.get(), session);
  ++open;
  session->start();
}

// Over --max-connections: 503 at once, without reading anything, and close.
void HttpServer::Impl::refuse(tcp::socket socket) {
  ++refused;
  Answer answer = error_answer(
      503, fmt::format("too many connections (--max-connections {})", options.max_connections));
  answer.headers.emplace_back("Retry-After", "1");
  on_answer(answer, 0.0);
  const std::string out = serialize(answer, false, true);
  ::send(socket.native_handle(), out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

void HttpServer::Impl::session_closed(Session* session) {
  sessions.erase(session);
  --open;
  if (draining && sessions.empty()) io.stop();
}

void HttpServer::Impl::start_drain(std::chrono::milliseconds timeout) {
  if (draining) return;
  draining = true;
  // Connections the kernel completed before the signal may hold requests already sent: take
  // them (without waiting) before the port closes.
  beast::error_code ignored;
  acceptor.non_blocking(true, ignored);
  for (;;) {
    beast::error_code ec;
    tcp::socket socket = acceptor.accept(ec);
    if (ec) break;
    add_session(std::move(socket));
  }
  acceptor.close(ignored);
  accept_pause.cancel();
  // Closing removes from `sessions`: close from a copy.
  std::vector<std::shared_ptr<Session>> live;
  for (auto& [raw, weak] : sessions)
    if (auto session = weak.lock()) live.push_back(std::move(session));
  for (auto& session : live) session->close_if_unstarted();
  if (sessions.empty()) return io.stop();
  drain_timer.expires_after(timeout);
  drain_timer.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec) return;
    self->drained_cleanly = false;
    std::vector<std::shared_ptr<Session>> left;
    for (auto& [raw, weak] : self->sessions)
      if (auto session = weak.lock()) left.push_back(std::move(session));
    for (auto& session : left) session->close();
    self->io.stop();
  });
}

HttpServer::HttpServer(std::vector<Route> routes, HttpOptions options,
                       std::function<void(const Answer&, double)> on_answer)
    : impl_(std::make_shared<Impl>()) {
  impl_->options = std::move(options);
  impl_->on_answer = std::move(on_answer);
  for (Route& route : routes) {
    LS_ASSERT(route.method == "GET" || route.method == "POST", "route {}: method {} is not served",
              route.path, route.method);
    const std::string path = route.path;
    LS_ASSERT(impl_->routes.emplace(path, std::move(route)).second, "route {} given twice", path);
  }
}

HttpServer::~HttpServer() {
  // Handlers still queued hold sessions, which hold the server: drop them with the loop.
  impl_->sessions.clear();
  impl_->io.stop();
}

int HttpServer::bind() {
  const HttpOptions& options = impl_->options;
  // Every connection is a file descriptor: make room for the cap (the soft limit is often 1024).
  rlimit files{};
  const rlim_t wanted = options.max_connections + 64;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < wanted) {
    files.rlim_cur = std::min(wanted, files.rlim_max);
    setrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_cur < wanted)
      std::fprintf(stderr,
                   "ls_serve: warning: --max-connections %zu needs %llu open files, the limit is "
                   "%llu (ulimit -n): connections beyond it wait in the listen backlog\n",
                   options.max_connections, static_cast<unsigned long long>(wanted),
                   static_cast<unsigned long long>(files.rlim_cur));
  }
  beast::error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  if (ec) fail("--host {}: not an IP address", options.host);
  tcp::acceptor& acceptor = impl_->acceptor;
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    fail("--host {} --port {}: cannot listen there ({})", options.host, options.port, ec.message());
  return acceptor.local_endpoint().port();
}

bool HttpServer::run() {
  impl_->accept();
  impl_->io.run();
  return impl_->drained_cleanly;
}

void HttpServer::drain(std::chrono::milliseconds timeout) {
  asio::post(impl_->io, [impl = impl_, timeout] { impl->start_drain(timeout); });
}

HttpStats HttpServer::stats() const {
  return HttpStats{impl_->open.load(), impl_->refused.load()};
}

}  // namespace ls::serve
