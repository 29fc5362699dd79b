// What each route of ls_serve does (service.h), and the batcher's backend over ls::Predictor.
#include "core/serve/service.h"

#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "core/base/error.h"
#include "core/base/utf8.h"
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
  std::vector<std::vector<float>> scores;
  std::vector<json> objects =
      predictor.predict(merged, static_cast<int64_t>(batch.size()), &scores);
  std::vector<Output> outputs(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    outputs[i].object = std::move(objects[i]);
    if (i < scores.size()) outputs[i].scores = std::move(scores[i]);
  }
  return outputs;
}

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// A prediction in flight, for --max-concurrent-requests: released when its answer is sent.
class Slot {
 public:
  explicit Slot(std::atomic<size_t>& count) : count_(count) {}
  ~Slot() { --count_; }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

 private:
  std::atomic<size_t>& count_;
};

}  // namespace

PredictService::PredictService(Predictor& predictor, Metrics& metrics, ServiceOptions options)
    : predictor_(predictor),
      metrics_(metrics),
      options_(options),
      max_input_chars_(options.max_input_chars > 0
                           ? options.max_input_chars
                           : static_cast<size_t>(predictor.max_length()) * 250),
      info_(model_info(predictor)),
      summary_(summarize(predictor)),
      trimmer_([this] { trim_memory(); }),
      workers_(options.workers > 0 ? options.workers
                                   : std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8)),
      tei_info_(
          tei_info(summary_, ServeLimits{.max_concurrent_requests = options.max_concurrent_requests,
                                         .max_input_chars = max_input_chars_,
                                         .max_batch_size = options.batching.max_batch,
                                         .max_inputs = options.max_inputs,
                                         .tokenization_workers = workers_.size(),
                                         .version = LS_TRAIN_VERSION})),
      batcher_([&predictor](
                   const std::vector<BatchItem>& batch) { return predict_batch(predictor, batch); },
               options.batching, &metrics) {}

PredictService::~PredictService() {
  stopping_ = true;
  trimmer_.join();
}

std::vector<Route> PredictService::routes() {
  auto now = [](Answer (PredictService::*get)() const, const PredictService* self) {
    return [get, self](Request, Respond respond) { respond((self->*get)()); };
  };
  auto model = [this](Request, Respond respond) { respond(json_answer(200, info_)); };
  std::vector<Route> routes = {
      {"GET", "/health", now(&PredictService::health, this)},
      {"GET", "/metrics", now(&PredictService::metrics_answer, this)},
      {"GET", "/v1/model", model},
  };
  auto admit = [this](Api api) {
    return [this, api](Request request, Respond respond) {
      // Admission on the loop thread; the work on a worker.
      if (++in_flight_ > options_.max_concurrent_requests) {
        --in_flight_;
        Answer answer = error_answer(
            429, fmt::format("overloaded: {} predictions in flight (--max-concurrent-requests)",
                             options_.max_concurrent_requests));
        answer.headers.emplace_back("Retry-After", "1");
        return respond(std::move(answer));
      }
      // On its way in from here: the batcher may wait for it to fill a batch.
      auto arrival = std::make_shared<Batcher::Arrival>(batcher_);
      workers_.post([this, api, arrival, request = std::move(request),
                     respond = std::move(respond)]() mutable {
        const std::string path = request.path;
        try {
          predict(api, std::move(request), respond, *arrival);
        } catch (const std::exception& e) {
          // A failure of the service's own: said on stderr, never to the client.
          std::fprintf(stderr, "ls_serve: %s: internal error: %s\n", path.c_str(), e.what());
          respond(error_answer(500, "internal error"));
        }
      });
    };
  };
  routes.push_back({"POST", "/v1/predict", admit(Api::kLs)});
  // HF Inference API / text-embeddings-inference.
  routes.push_back({"POST", "/", admit(Api::kHf)});
  routes.push_back({"POST", "/predict", admit(Api::kHf)});
  routes.push_back(
      {"GET", "/info", [this](Request, Respond respond) { respond(json_answer(200, tei_info_)); }});
  // vLLM.
  routes.push_back({"POST", "/classify", admit(Api::kVllm)});
  routes.push_back({"POST", "/v1/classify", admit(Api::kVllm)});
  routes.push_back({"GET", "/v1/models", [this](Request, Respond respond) {
                      respond(json_answer(200, vllm_models(summary_)));
                    }});
  return routes;
}

void PredictService::predict(Api api, Request request, Respond respond, Batcher::Arrival& arrival) {
  auto slot = std::make_shared<Slot>(in_flight_);
  auto job = std::make_shared<PreparedJob>();
  auto client = std::make_shared<ClientRequest>();
  size_t characters = 0;
  try {
    *client = parse_request(api, request.body, summary_);
    request.body = std::string();
    if (client->inputs.size() > options_.max_inputs)
      return respond(
          error_answer(413, fmt::format("{} inputs; at most {} per request (--max-inputs)",
                                        client->inputs.size(), options_.max_inputs)));
    job->inputs =
        predictor_.prepare(client->inputs, InputLimits{max_input_chars_, client->truncate});
    for (const PredictInput& input : client->inputs) {
      characters +=
          utf8_code_points(input.text) + (input.text_pair ? utf8_code_points(*input.text_pair) : 0);
      for (const std::string& word : input.words) characters += utf8_code_points(word);
    }
  } catch (const InputTooLong& e) {
    return respond(error_answer(413, e.what()));
  } catch (const UnknownModel& e) {
    return respond(error_answer(404, e.what()));  // as vLLM answers a model it does not serve
  } catch (const UserError& e) {
    return respond(error_answer(400, e.what()));
  }
  const Clock::time_point tokenized = Clock::now();
  int64_t tokens = 0;
  for (const auto& example : job->inputs.dataset.examples) {
    job->lengths.push_back(static_cast<int64_t>(example.input_ids.size()));
    tokens += job->lengths.back();
  }
  // On the batcher thread once every input ran: the answer is formatted on a worker. (The job
  // holds this callback, so it holds the job weakly; the batcher holds the job until the call.)
  job->on_done = [this, api, client, weak = std::weak_ptr<PreparedJob>(job), slot, respond,
                  received = request.received, tokenized, characters, tokens]() {
    const Clock::time_point ran = Clock::now();
    workers_.post([this, api, client, job = weak.lock(), slot, respond, received, tokenized, ran,
                   characters, tokens]() {
      if (!job->error.empty())
        return respond(error_answer(500, "prediction failed: " + job->error));
      Answer answer = client_answer(api, *client, std::move(job->outputs), summary_, tokens);
      answer.ran = true;
      // As text-embeddings-inference: whole milliseconds.
      const Clock::time_point now = Clock::now();
      auto ms = [](Clock::duration d) {
        return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
      };
      answer.headers.insert(answer.headers.end(),
                            {
                                {"x-compute-type", predictor_.device().is_cuda() ? "gpu" : "cpu"},
                                {"x-compute-time", ms(now - received)},
                                {"x-compute-characters", std::to_string(characters)},
                                {"x-compute-tokens", std::to_string(tokens)},
                                {"x-total-time", ms(now - received)},
                                {"x-tokenization-time", ms(tokenized - received)},
                                {"x-queue-time", ms(job->started - job->queued)},
                                {"x-inference-time", ms(ran - job->started)},
                            });
      metrics_.prediction(seconds(tokenized - received), seconds(job->started - job->queued),
                          seconds(ran - job->started));
      respond(std::move(answer));
    });
  };
  const bool queued = batcher_.submit(job);
  arrival.done();
  if (!queued) {
    job->on_done = nullptr;
    Answer answer = error_answer(503, "overloaded: the input queue is full, retry later");
    answer.headers.emplace_back("Retry-After", "1");
    respond(std::move(answer));
  }
}

Answer PredictService::health() const {
  if (!batcher_.healthy())
    return json_answer(503,
                       json{{"status", "unhealthy"},
                            {"error", "the last forward pass failed: " + batcher_.last_error()}});
  return json_answer(200, json{{"status", "ok"}});
}

Answer PredictService::metrics_answer() const {
  if (connection_stats_) {
    const HttpStats stats = connection_stats_();
    metrics_.connections(stats.open_connections, stats.refused_connections);
  }
  Answer answer;
  answer.body = metrics_.text(batcher_.depth());
  answer.content_type = "text/plain; version=0.0.4";
  return answer;
}

// Memory freed by requests (bodies, token ids, activations) goes back to the system within
// 100 ms of the last answer, as text-embeddings-inference does, rather than staying with the
// allocator at the high-water mark.
void PredictService::trim_memory() {
  uint64_t trimmed_at = 0;
  while (!stopping_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const uint64_t answered = metrics_.answered();
    if (answered != trimmed_at) {
      malloc_trim(0);
      trimmed_at = answered;
    }
  }
}

}  // namespace ls::serve
