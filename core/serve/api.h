// The service's JSON schemas, without a socket: request bodies parsed into inputs, the answers
// and the error body `{"error": "..."}` that every non-200 answer carries. An Answer is what a
// route returns; http_server.cpp writes it out. Besides its own POST /v1/predict, ls_serve speaks
// the schemas clients of other servers send (docs/SERVE.md "API"):
//   - HF Inference API / text-embeddings-inference (TEI): POST / and /predict, GET /info;
//   - vLLM: POST /classify and /v1/classify, GET /v1/models.
// The answer builders read a ModelSummary, not the model, so they are tested without one.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/base/error.h"
#include "core/base/task.h"
#include "core/infer/predict_input.h"
#include "core/serve/batcher.h"

namespace ls {
class Predictor;
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

// The body of POST /v1/predict, `{"inputs": [text | word list, ...], "truncate"?: bool}`, as
// inputs (word lists only for token tasks). UserError (the caller answers 400) naming what is
// wrong: malformed JSON (invalid UTF-8 and numbers out of range included), no "inputs", not an
// array, empty, `inputs[i]: ...` for a bad item, a "truncate" that is not a boolean.
std::vector<PredictInput> parse_predict_body(const std::string& body, bool token_task);

// GET /v1/model: task, problem type, labels, attention, base model, adapter, run, max length,
// device.
nlohmann::json model_info(const Predictor& predictor);

// What the answers say about the served model, taken from it once.
struct ModelSummary {
  TaskType task = TaskType::kSequence;
  ProblemType problem = ProblemType::kSingleLabel;  // of a sequence task
  std::vector<std::string> labels;                  // class (tag) names, in class order
  double threshold = 0.5;                           // multi-label: a label's decision threshold
  std::string name;    // "model" / "model_id": the run directory's name (an adapter's alone)
  std::string path;    // that directory, absolute (vLLM's "root")
  int max_length = 0;  // ids per input (data.max_length)
  std::string dtype;   // of the base: float32 | bfloat16 | float16 (TEI's names)
  bool pairs = false;  // the run reads text pairs (data.text_pair_field)
};
ModelSummary summarize(const Predictor& predictor);

// The schema a request speaks.
enum class Api {
  kLs,    // POST /v1/predict
  kHf,    // POST / and POST /predict: HF Inference API (huggingface_hub's InferenceClient) and TEI
  kVllm,  // POST /classify and POST /v1/classify
};

// HF's function_to_apply; kDefault: softmax (single-label), sigmoid (multi-label), none
// (regression).
enum class ScoreFunction { kDefault, kSoftmax, kSigmoid, kNone };
// HF's aggregation_strategy: "simple", "first", "average" and "max" group words into entities and
// agree on word-level predictions (kGroup); "none" answers word by word.
enum class Aggregation { kGroup, kNone };

// A request body of any schema: the inputs, in order, and how to answer.
struct ClientRequest {
  std::vector<PredictInput> inputs;
  bool single = false;    // one bare input, not a list (an HF token task answers a flat list)
  bool truncate = false;  // cut an input over --max-input-chars instead of refusing it
  // kHf (TEI's raw_scores is function_to_apply "none").
  std::optional<size_t> top_k;  // labels per input, best first; nullopt: all
  ScoreFunction function = ScoreFunction::kDefault;
  Aggregation aggregation = Aggregation::kGroup;
  std::vector<std::string> ignore_labels = {"O"};
  // kVllm: the "model" sent ("" when none). use_activation false is function kNone.
  std::string model;
};

// A vLLM request for a model this server does not serve (vLLM answers 404).
class UnknownModel : public UserError {
 public:
  using UserError::UserError;
};

// Parses `body` as `api` speaks it (docs/SERVE.md "API"). UserError (400) in one line naming the
// key or item that is wrong: malformed JSON (numbers out of range included), a missing or
// mistyped key, `inputs[i]: ...`; for kVllm, a token task (vLLM classifies sequences only) and
// UnknownModel for another model's name.
ClientRequest parse_request(Api api, const std::string& body, const ModelSummary& model);

// The 200 answer to `request`: `outputs` one per input, in input order (batcher.h: the
// /v1/predict object and Prediction::scores); `prompt_tokens` the ids the inputs were read as
// (vLLM's usage).
Answer client_answer(Api api, const ClientRequest& request, std::vector<Output> outputs,
                     const ModelSummary& model, int64_t prompt_tokens);

// The limits the service runs with, as GET /info reports them.
struct ServeLimits {
  size_t max_concurrent_requests = 0;  // predictions in flight (--max-concurrent-requests)
  size_t max_input_chars = 0;          // --max-input-chars (TEI's Info has no key for it)
  size_t max_batch_size = 0;           // inputs per forward pass (--max-batch-size)
  size_t max_inputs = 0;               // inputs per request (--max-inputs)
  size_t tokenization_workers = 0;     // threads that tokenize (--workers)
  std::string version;                 // ls-train's
};

// GET /info: TEI's Info (the model as a classifier with its id2label and label2id).
nlohmann::json tei_info(const ModelSummary& model, const ServeLimits& limits);
// GET /v1/models: vLLM's ModelList with this one model.
nlohmann::json vllm_models(const ModelSummary& model);

// A token task's text split into words as Predictor::prepare splits it (at the C locale's
// whitespace), each with its [start, end) in Unicode code points of `text` (Python str indices).
struct WordSpan {
  std::string word;
  size_t start = 0, end = 0;
};
std::vector<WordSpan> split_words(const std::string& text);

}  // namespace ls::serve
