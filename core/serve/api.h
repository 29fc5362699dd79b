// The service's JSON schemas, without a socket: a POST /v1/predict body parsed into inputs, the
// answers (predictions, the model's description) and the error body `{"error": "..."}` that every
// non-200 answer carries. An Answer is what a route returns; http_server.cpp writes it out.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace ls {
class Predictor;
struct PredictInput;
}  // namespace ls

namespace ls::serve {

// One HTTP answer, independent of the HTTP library.
struct Answer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  bool ran = false;  // a prediction the model ran: the only answers the latency histograms count
};

// `body` as compact JSON plus a newline (invalid UTF-8 in strings replaced, never thrown).
Answer json_answer(int status, const nlohmann::json& body);
// `{"error": message}` with `status`.
Answer error_answer(int status, const std::string& message);
// `{"predictions": [...]}`, 200.
Answer predictions_answer(std::vector<nlohmann::json> predictions);

// The body of POST /v1/predict, `{"inputs": [text | word list, ...]}`, as inputs (word lists only
// for token tasks). UserError (the caller answers 400) naming what is wrong: malformed JSON
// (invalid UTF-8 included), no "inputs", not an array, empty, `inputs[i]: ...` for a bad item.
std::vector<PredictInput> parse_predict_body(const std::string& body, bool token_task);

// GET /v1/model: task, problem type, labels, attention, base model, adapter, run, max length,
// device.
nlohmann::json model_info(const Predictor& predictor);

}  // namespace ls::serve
