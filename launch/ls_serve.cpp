// ls_serve: a trained run as an HTTP/1.1 JSON service (docs/SERVE.md).
//   ls_serve RUN_DIR [--adapter best|last|DIR] [--host 127.0.0.1] [--port 8080] [--device ...]
//            [--max-batch-size 32] [--max-wait-ms 5] [--max-body-bytes 1048576]
//            [--max-inputs 256] [--max-queue 1024] [--threads 32]
// The run is loaded once by ls::Predictor (as ls_predict loads it). Request threads (cpp-httplib)
// parse and tokenize; one batcher thread owns the model and runs the inputs of concurrent
// requests together: it waits for up to --max-batch-size inputs or --max-wait-ms, then takes the
// oldest input and the waiting inputs closest to it in length (less padding). Every queue is
// bounded: connections wait in a fixed-size pool queue (then in the kernel's backlog), inputs in
// a queue of --max-queue (beyond it: 503 with Retry-After). SIGTERM/SIGINT: stop accepting,
// answer every request already accepted, exit 0.
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "core/base/error.h"
#include "core/infer/predictor.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body) + "\n", "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  reply(res, status, json{{"error", message}});
}

// --- metrics (Prometheus text)
// --------------------------------------------------------------------

// A Prometheus histogram: cumulative bucket counts, sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}
  void observe(double value) {
    for (size_t i = 0; i < bounds_.size(); ++i) counts_[i] += value <= bounds_[i];
    sum_ += value;
    ++count_;
  }
  std::string text(const std::string& name, const std::string& help) const {
    std::string out = fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
    for (size_t i = 0; i < bounds_.size(); ++i)
      out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], counts_[i]);
    out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name,
                       sum_, name, count_);
    return out;
  }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  void request(int status, double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_[status];
    latency_.observe(seconds);
  }
  void batch(size_t inputs) {
    std::lock_guard<std::mutex> lock(mutex_);
    batch_size_.observe(static_cast<double>(inputs));
    inputs_ += inputs;
  }
  uint64_t answered() const {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t total = 0;
    for (const auto& [status, count] : requests_) total += count;
    return total;
  }
  std::string text(size_t queue_depth) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out =
        "# HELP ls_serve_requests_total HTTP requests answered, by status code.\n"
        "# TYPE ls_serve_requests_total counter\n";
    for (const auto& [status, count] : requests_)
      out += fmt::format("ls_serve_requests_total{{status=\"{}\"}} {}\n", status, count);
    out += latency_.text("ls_serve_request_duration_seconds",
                         "Time from a request's headers to its response, in seconds.");
    out += batch_size_.text("ls_serve_batch_size", "Inputs per forward pass.");
    out += fmt::format(
        "# HELP ls_serve_inputs_total Inputs predicted.\n# TYPE ls_serve_inputs_total counter\n"
        "ls_serve_inputs_total {}\n"
        "# HELP ls_serve_queue_depth Inputs waiting for a forward pass.\n"
        "# TYPE ls_serve_queue_depth gauge\nls_serve_queue_depth {}\n",
        inputs_, queue_depth);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> requests_;
  Histogram latency_{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  Histogram batch_size_{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}};
  uint64_t inputs_ = 0;
};

// --- dynamic batching ---------------------------------------------------------------------------

// One request's inputs on their way through the batcher.
struct Job {
  ls::PreparedInputs inputs;
  std::vector<json> predictions;
  size_t remaining = 0;
  std::string error;  // set when the forward failed
  std::promise<void> done;
};

class Batcher {
 public:
  Batcher(ls::Predictor& predictor, Metrics& metrics, size_t max_batch, Clock::duration max_wait,
          size_t max_queue)
      : predictor_(predictor),
        metrics_(metrics),
        max_batch_(max_batch),
        max_wait_(max_wait),
        max_queue_(max_queue),
        thread_([this] { loop(); }) {}
  ~Batcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  // Queues a job's inputs; false when the queue is full (the caller answers 503). A job larger
  // than the queue is taken only when the queue is empty, so the queue holds at most
  // max(max_queue, --max-inputs) inputs.
  bool submit(const std::shared_ptr<Job>& job) {
    const size_t n = job->inputs.dataset.examples.size();
    job->predictions.resize(n);
    job->remaining = n;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!queue_.empty() && queue_.size() + n > max_queue_) return false;
      const auto now = Clock::now();
      for (size_t i = 0; i < n; ++i)
        queue_.push_back(Item{
            job, i, static_cast<int64_t>(job->inputs.dataset.examples[i].input_ids.size()), now});
    }
    wake_.notify_all();
    return true;
  }

  size_t depth() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size();
  }

  // A request from its arrival until its inputs are queued (or it is answered otherwise): while
  // none is on its way, waiting cannot fill a batch, so the batcher runs what it has.
  class Arrival {
   public:
    explicit Arrival(Batcher& batcher) : batcher_(&batcher) {
      std::lock_guard<std::mutex> lock(batcher.mutex_);
      ++batcher.arriving_;
    }
    ~Arrival() { done(); }
    Arrival(const Arrival&) = delete;
    Arrival& operator=(const Arrival&) = delete;
    void done() {
      if (!batcher_) return;
      {
        std::lock_guard<std::mutex> lock(batcher_->mutex_);
        --batcher_->arriving_;
      }
      batcher_->wake_.notify_all();
      batcher_ = nullptr;
    }

   private:
    Batcher* batcher_;
  };

 private:
  struct Item {
    std::shared_ptr<Job> job;
    size_t index = 0;    // in the job's inputs
    int64_t length = 0;  // ids
    Clock::time_point queued;
  };

  void loop() {
    for (;;) {
      std::vector<Item> batch;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and nothing is left
        // A fuller batch is worth waiting for (at most max_wait) only while more requests are
        // on their way in; otherwise the model would idle for nothing.
        wake_.wait_until(lock, queue_.front().queued + max_wait_, [&] {
          return stopping_ || queue_.size() >= max_batch_ || arriving_ == 0;
        });
        batch = take_batch();
      }
      run(batch);
    }
  }

  // The oldest input (so none waits forever) and the max_batch - 1 others closest to it in
  // length, so a batch pads little. Called under the lock.
  std::vector<Item> take_batch() {
    std::vector<Item> batch;
    if (queue_.size() <= max_batch_) {
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
      return batch;
    }
    const int64_t anchor = queue_.front().length;
    std::vector<size_t> order(queue_.size() - 1);
    for (size_t i = 0; i < order.size(); ++i) order[i] = i + 1;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::abs(queue_[a].length - anchor) < std::abs(queue_[b].length - anchor);
    });
    std::vector<bool> taken(queue_.size(), false);
    taken[0] = true;
    for (size_t i = 0; i + 1 < max_batch_; ++i) taken[order[i]] = true;
    std::deque<Item> rest;
    for (size_t i = 0; i < queue_.size(); ++i)
      (taken[i] ? batch.push_back(std::move(queue_[i])) : rest.push_back(std::move(queue_[i])));
    queue_ = std::move(rest);
    return batch;
  }

  // One forward over the batch's inputs; each prediction goes back to its job.
  void run(std::vector<Item>& batch) {
    ls::PreparedInputs merged;
    const ls::data::Dataset& first = batch.front().job->inputs.dataset;
    merged.raw.path = "inputs";
    merged.raw.task = first.task;
    merged.dataset.task = first.task;
    merged.dataset.problem = first.problem;
    merged.dataset.num_labels = first.num_labels;
    merged.dataset.max_length = first.max_length;
    for (const Item& item : batch) {
      merged.raw.records.push_back(item.job->inputs.raw.records[item.index]);
      merged.dataset.examples.push_back(item.job->inputs.dataset.examples[item.index]);
    }
    std::vector<json> predictions;
    std::string error;
    try {
      predictions = predictor_.predict(merged, static_cast<int64_t>(batch.size()));
    } catch (const std::exception& e) {
      error = e.what();
    }
    metrics_.batch(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      Job& job = *batch[i].job;
      if (error.empty())
        job.predictions[batch[i].index] = std::move(predictions[i]);
      else
        job.error = error;
      if (--job.remaining == 0) job.done.set_value();  // only this thread touches `remaining`
    }
  }

  ls::Predictor& predictor_;
  Metrics& metrics_;
  const size_t max_batch_;
  const Clock::duration max_wait_;
  const size_t max_queue_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  size_t arriving_ = 0;  // requests between arrival and queueing (Arrival)
  std::thread thread_;   // last: starts once the rest is built
};

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

// The body of POST /v1/predict as inputs; UserError (-> 400) naming what is wrong.
std::vector<ls::PredictInput> parse_inputs(const std::string& body, bool token_task) {
  json request;
  try {
    request = json::parse(body);
  } catch (const json::parse_error& e) {
    // nlohmann's parser also rejects invalid UTF-8 in strings.
    ls::fail("malformed JSON: {}", e.what());
  }
  if (!request.is_object() || !request.contains("inputs"))
    ls::fail("the body must be a JSON object with \"inputs\": [...]");
  const json& inputs = request["inputs"];
  const char* expected = token_task ? "a string or a list of words" : "a string";
  if (!inputs.is_array()) ls::fail("\"inputs\" must be an array (each item {})", expected);
  if (inputs.empty()) ls::fail("\"inputs\" is empty");
  std::vector<ls::PredictInput> out(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const json& item = inputs[i];
    if (item.is_string()) {
      out[i].text = item.get<std::string>();
    } else if (token_task && item.is_array()) {
      out[i].is_words = true;
      for (const json& word : item) {
        if (!word.is_string()) ls::fail("inputs[{}]: every word must be a string", i);
        out[i].words.push_back(word.get<std::string>());
      }
    } else {
      ls::fail("inputs[{}]: expected {}, got {}", i, expected, item.type_name());
    }
  }
  return out;
}

json model_info(const ls::Predictor& predictor) {
  const ls::Config& config = predictor.config();
  return json{
      {"task", std::string(ls::enum_name(config.task.type))},
      {"problem_type", std::string(ls::enum_name(config.task.problem_type))},
      {"labels", predictor.labels().names()},
      {"attention", std::string(ls::enum_name(config.model.attention))},
      {"bidirectional_from_layer", config.model.bidirectional_from_layer},
      {"attend_to_padding", config.model.attend_to_padding},
      {"base_model", config.model.path},
      {"adapter", fs::absolute(predictor.run().adapter_dir).lexically_normal().string()},
      {"run",
       predictor.run().run_dir.empty()
           ? nullptr
           : nlohmann::json(fs::absolute(predictor.run().run_dir).lexically_normal().string())},
      {"max_length", predictor.max_length()},
      {"device", predictor.device().str()},
  };
}

// SIGTERM/SIGINT arrive at watch_signals only (blocked in every other thread), which stops the
// server once it listens. The server is published under a mutex so the watcher never touches it
// after serve_main let it go.
std::atomic<bool> g_stop_requested{false};
std::mutex g_server_mutex;
httplib::Server* g_server = nullptr;  // while listening
bool g_server_done = false;           // serve_main no longer listens (or never will)

void publish_server(httplib::Server* server, bool done) {
  std::lock_guard<std::mutex> lock(g_server_mutex);
  g_server = server;
  g_server_done = done;
}

void watch_signals(sigset_t signals) {
  int signal = 0;
  sigwait(&signals, &signal);
  std::fprintf(stderr, "ls_serve: %s: finishing the requests in flight\n",
               signal == SIGINT ? "SIGINT" : "SIGTERM");
  g_stop_requested = true;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(g_server_mutex);
      if (g_server_done) return;
      if (g_server && g_server->is_running()) return g_server->stop();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int serve_main(int argc, char** argv) {
  CLI::App app{
      "Serve a trained ls-train run over HTTP: POST /v1/predict, GET /health, "
      "GET /v1/model, GET /metrics (docs/SERVE.md)."};
  app.option_defaults()->always_capture_default();  // --help shows each default
  std::string run_dir, adapter = "best", host = "127.0.0.1", device = "", base_model;
  int port = 8080, max_wait_ms = 5;
  size_t max_batch = 32, max_body = 1 << 20, max_inputs = 256, max_queue = 1024, threads = 32;
  app.add_option("run", run_dir,
                 "run directory written by ls_train, or an adapter directory (with --model or "
                 "its recorded base model)")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--adapter", adapter,
                 "best (adapter/), last (adapter_last/), or an adapter directory");
  app.add_option("--model", base_model,
                 "base model directory (default: the run's model.path, or the adapter's "
                 "base_model_name_or_path)");
  app.add_option("--host", host, "address to listen on");
  app.add_option("--port", port, "port to listen on (0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--device", device, "auto, cpu or cuda (default: the run's model.device)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--max-batch-size", max_batch, "inputs per forward pass, across requests")
      ->check(CLI::Range(1, 4096));
  app.add_option(
         "--max-wait-ms", max_wait_ms,
         "how long the oldest waiting input may wait for a fuller batch, while more requests are "
         "on their way in")
      ->check(CLI::Range(0, 60000));
  app.add_option("--max-body-bytes", max_body, "larger request bodies get 413")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--max-inputs", max_inputs, "more inputs in one request get 413")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-queue", max_queue,
                 "inputs waiting for a forward pass; a request that would exceed it gets 503")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--threads", threads, "HTTP worker threads (concurrent connections)")
      ->check(CLI::Range(1, 1024));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return e.get_exit_code() == 0 ? 0 : 2;
  }

  // Signals go to the watcher thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread(watch_signals, signals).detach();

  std::vector<std::string> overrides;
  if (!device.empty()) overrides.push_back("model.device=" + device);
  ls::TrainedRun source = ls::open_trained_run(run_dir, adapter, base_model, overrides);
  const ls::Placement placement = ls::resolve_placement(source.config, 0, 1);
  httplib::Server server;
  ls::Predictor predictor(std::move(source), placement);
  const bool token_task = predictor.task() == ls::TaskType::kToken;
  const json info = model_info(predictor);
  Metrics metrics;
  Batcher batcher(predictor, metrics, max_batch, std::chrono::milliseconds(max_wait_ms), max_queue);

  server.new_task_queue = [threads] { return new BoundedThreadPool(threads, threads); };
  server.set_payload_max_length(max_body);
  server.set_keep_alive_timeout(2);  // idle keep-alive connections delay a shutdown this long
  server.set_keep_alive_max_count(100);
  // cpp-httplib listens with a backlog of 5: a burst of clients connecting at once overflows it
  // and some see their connection reset. Keep the listening socket to listen again with more.
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second server bind a
  // port already served and take half its connections.
  int listen_fd = -1;
  // TCP_NODELAY (inherited by accepted sockets): httplib writes a response's headers and body
  // separately, and with Nagle's algorithm the body then waits for the client's delayed ACK of
  // the headers, about 40 ms per request on Linux loopback.
  server.set_socket_options([&listen_fd](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    listen_fd = sock;
  });
  server.set_tcp_nodelay(true);
  // Paths and their methods: anything else is 404 (unknown path) or 405 (known path).
  const std::map<std::string, std::string> routes = {
      {"/v1/predict", "POST"}, {"/health", "GET"}, {"/v1/model", "GET"}, {"/metrics", "GET"}};
  thread_local Clock::time_point started;
  server.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    started = Clock::now();
    const auto route = routes.find(req.path);
    if (route == routes.end()) {
      reply_error(res, 404, fmt::format("no such path: {}", req.path));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method != route->second && !(route->second == "GET" && req.method == "HEAD")) {
      res.set_header("Allow", route->second);
      reply_error(res, 405,
                  fmt::format("{} takes {}, not {}", req.path, route->second, req.method));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413)
      reply_error(res, 413, "request body too large (--max-body-bytes)");
    else
      reply_error(res, res.status, fmt::format("HTTP status {}", res.status));
  });
  server.set_logger([&](const httplib::Request&, const httplib::Response& res) {
    metrics.request(res.status, std::chrono::duration<double>(Clock::now() - started).count());
  });

  server.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, json{{"status", "ok"}});
  });
  server.Get("/v1/model",
             [&](const httplib::Request&, httplib::Response& res) { reply(res, 200, info); });
  server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.text(batcher.depth()), "text/plain; version=0.0.4");
  });
  server.Post("/v1/predict", [&](const httplib::Request& req, httplib::Response& res) {
    Batcher::Arrival arrival(batcher);
    auto job = std::make_shared<Job>();
    try {
      const std::vector<ls::PredictInput> inputs = parse_inputs(req.body, token_task);
      if (inputs.size() > max_inputs)
        return reply_error(res, 413,
                           fmt::format("{} inputs; at most {} per request (--max-inputs)",
                                       inputs.size(), max_inputs));
      job->inputs = predictor.prepare(inputs);
    } catch (const ls::UserError& e) {
      return reply_error(res, 400, e.what());
    }
    std::future<void> done = job->done.get_future();
    const bool queued = batcher.submit(job);
    arrival.done();
    if (!queued) {
      res.set_header("Retry-After", "1");
      return reply_error(res, 503, "overloaded: the input queue is full, retry later");
    }
    done.wait();
    if (!job->error.empty()) return reply_error(res, 500, "prediction failed: " + job->error);
    reply(res, 200, json{{"predictions", std::move(job->predictions)}});
  });

  publish_server(&server, false);
  if (g_stop_requested) {  // a signal while loading
    publish_server(nullptr, true);
    return 0;
  }
  const int bound =
      port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound < 0 || ::listen(listen_fd, SOMAXCONN) != 0) {
    publish_server(nullptr, true);
    ls::fail("--host {} --port {}: cannot listen there (in use, or not an address of this machine)",
             host, port);
  }
  std::printf("ls_serve: %s on http://%s:%d (max batch %zu, max wait %d ms)\n",
              info["task"].get<std::string>().c_str(), host.c_str(), bound, max_batch, max_wait_ms);
  std::fflush(stdout);
  server.listen_after_bind();  // returns after stop(), once every accepted request is answered
  publish_server(nullptr, true);
  std::fprintf(stderr, "ls_serve: stopped after answering %llu requests\n",
               static_cast<unsigned long long>(metrics.answered()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::run_main("ls_serve", serve_main, argc, argv);
}
