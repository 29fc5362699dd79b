// What each route of ls_serve does, without a socket: POST /v1/predict from its body to its answer
// (parse, the --max-inputs limit, tokenize on the request thread, queue in the batcher, wait),
// GET /health, /v1/model and /metrics. The batcher's backend is the ls::Predictor; the HTTP layer
// (http_server.h) only routes to these.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "core/serve/api.h"
#include "core/serve/batcher.h"

namespace ls {
class Predictor;
}

namespace ls::serve {

class Metrics;

class PredictService {
 public:
  // `predictor` and `metrics` outlive the service; requests of more than `max_inputs` inputs get
  // 413. Starts the batcher thread, which owns the predictor's model from then on.
  PredictService(Predictor& predictor, Metrics& metrics, size_t max_inputs,
                 const BatcherOptions& batching);

  Answer predict(const std::string& body);  // POST /v1/predict
  Answer health() const;                    // GET /health
  Answer model() const;                     // GET /v1/model
  Answer metrics() const;                   // GET /metrics
  const nlohmann::json& info() const { return info_; }

 private:
  Predictor& predictor_;
  Metrics& metrics_;
  const size_t max_inputs_;
  const bool token_task_;
  const nlohmann::json info_;
  Batcher batcher_;  // last: its thread starts once the rest is built
};

}  // namespace ls::serve
