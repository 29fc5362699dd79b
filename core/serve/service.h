// What each route of ls_serve does, and on which thread: GET routes answer on the HTTP loop at
// once (health, model, info, metrics); a prediction is parsed and tokenized on a request worker,
// queued in the batcher, run on the batcher's model thread, and its answer formatted on a worker
// again. The batcher's backend is the ls::Predictor; the HTTP layer (http_server.h) only routes.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/serve/api.h"
#include "core/serve/batcher.h"
#include "core/serve/http_server.h"
#include "core/serve/worker_pool.h"

namespace ls {
class Predictor;
}

namespace ls::serve {

class Metrics;

struct ServiceOptions {
  size_t max_inputs = 256;               // per request: beyond, 413
  size_t max_concurrent_requests = 512;  // predictions in flight: beyond, 429 + Retry-After
  size_t max_input_chars = 0;            // per input, before tokenizing (0: max_length x 250)
  size_t workers = 0;                    // request workers (0: the cores, at most 8)
  BatcherOptions batching;
};

class PredictService {
 public:
  // `predictor` and `metrics` outlive the service. Starts the workers and the batcher thread,
  // which owns the predictor's model from then on, and the memory trimmer.
  PredictService(Predictor& predictor, Metrics& metrics, ServiceOptions options);
  // Answers every queued prediction, then stops the threads.
  ~PredictService();
  PredictService(const PredictService&) = delete;
  PredictService& operator=(const PredictService&) = delete;

  // Every path the service answers, for the HttpServer.
  std::vector<Route> routes();
  // Where GET /metrics reads the connection counts (the HttpServer's stats).
  void count_connections(std::function<HttpStats()> stats) { connection_stats_ = std::move(stats); }
  const nlohmann::json& info() const { return info_; }
  size_t max_input_chars() const { return max_input_chars_; }
  size_t workers() const { return workers_.size(); }

 private:
  // A prediction in any API (POST /v1/predict, /, /predict, /classify), on a worker.
  // `arrival` marks it on its way in until its inputs are queued (or it is answered).
  void predict(Api api, Request request, Respond respond, Batcher::Arrival& arrival);
  Answer health() const;          // GET /health
  Answer metrics_answer() const;  // GET /metrics
  void trim_memory();

  Predictor& predictor_;
  Metrics& metrics_;
  const ServiceOptions options_;
  const size_t max_input_chars_;
  const nlohmann::json info_;   // GET /v1/model
  const ModelSummary summary_;  // what the client APIs say about the model
  std::function<HttpStats()> connection_stats_;
  std::atomic<size_t> in_flight_{0};
  std::atomic<bool> stopping_{false};
  std::thread trimmer_;
  WorkerPool workers_;
  const nlohmann::json tei_info_;  // GET /info (after workers_: it reports their number)
  Batcher batcher_;  // last: its thread starts once the rest is built, and stops first
};

}  // namespace ls::serve
