// What each route of ls_serve does (service.h), and the batcher's backend over ls::Predictor.
#include "core/serve/service.h"

#include <fmt/format.h>

#include "core/base/error.h"
#include "core/infer/predictor.h"
#include "core/serve/metrics.h"

using nlohmann::json;

namespace ls::serve {
namespace {

// A request's inputs, tokenized, through the batcher.
struct PreparedJob : Job {
  PreparedInputs inputs;
};

// One forward pass over a batch: the items' prepared inputs merged into one padded batch.
std::vector<Output> predict_batch(Predictor& predictor, const std::vector<BatchItem>& batch) {
  PreparedInputs merged;
  const data::Dataset& first = static_cast<const PreparedJob*>(batch.front().job)->inputs.dataset;
  merged.raw.path = "inputs";
  merged.raw.task = first.task;
  merged.dataset.task = first.task;
  merged.dataset.problem = first.problem;
  merged.dataset.num_labels = first.num_labels;
  merged.dataset.max_length = first.max_length;
  for (const BatchItem& item : batch) {
    const PreparedInputs& inputs = static_cast<const PreparedJob*>(item.job)->inputs;
    merged.raw.records.push_back(inputs.raw.records[item.index]);
    merged.dataset.examples.push_back(inputs.dataset.examples[item.index]);
  }
  std::vector<Output> outputs;
  for (json& object : predictor.predict(merged, static_cast<int64_t>(batch.size())))
    outputs.push_back(Output{std::move(object), {}});
  return outputs;
}

}  // namespace

PredictService::PredictService(Predictor& predictor, Metrics& metrics, size_t max_inputs,
                               const BatcherOptions& batching)
    : predictor_(predictor),
      metrics_(metrics),
      max_inputs_(max_inputs),
      token_task_(predictor.task() == TaskType::kToken),
      info_(model_info(predictor)),
      batcher_([&predictor](
                   const std::vector<BatchItem>& batch) { return predict_batch(predictor, batch); },
               batching, &metrics) {}

Answer PredictService::predict(const std::string& body) {
  Batcher::Arrival arrival(batcher_);
  auto job = std::make_shared<PreparedJob>();
  try {
    const std::vector<PredictInput> inputs = parse_predict_body(body, token_task_);
    if (inputs.size() > max_inputs_)
      return error_answer(413, fmt::format("{} inputs; at most {} per request (--max-inputs)",
                                           inputs.size(), max_inputs_));
    job->inputs = predictor_.prepare(inputs);
  } catch (const UserError& e) {
    return error_answer(400, e.what());
  }
  for (const auto& example : job->inputs.dataset.examples)
    job->lengths.push_back(static_cast<int64_t>(example.input_ids.size()));
  std::future<void> done = job->done.get_future();
  const bool queued = batcher_.submit(job);
  arrival.done();
  if (!queued) {
    Answer answer = error_answer(503, "overloaded: the input queue is full, retry later");
    answer.headers.emplace_back("Retry-After", "1");
    return answer;
  }
  done.wait();
  if (!job->error.empty()) return error_answer(500, "prediction failed: " + job->error);
  std::vector<json> predictions;
  for (Output& output : job->outputs) predictions.push_back(std::move(output.object));
  return predictions_answer(std::move(predictions));
}

Answer PredictService::health() const {
  return json_answer(200, json{{"status", "ok"}});
}

Answer PredictService::model() const {
  return json_answer(200, info_);
}

Answer PredictService::metrics() const {
  Answer answer;
  answer.body = metrics_.text(batcher_.depth());
  answer.content_type = "text/plain; version=0.0.4";
  return answer;
}

}  // namespace ls::serve
