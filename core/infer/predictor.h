// Predictor: a trained run loaded once for inference (config, label map, tokenizer, adapter + head
// on one device), then predictions for raw inputs or a data file. ls_predict runs it over a file,
// ls_serve over the inputs of HTTP requests; both describe a prediction with prediction_objects
// (evaluator.h), so a served prediction is an ls_predict line without "line" and "gold".
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/eval/evaluator.h"
#include "core/infer/predict_input.h"
#include "core/model/ls_llama.h"
#include "core/run/config.h"
#include "core/run/run_setup.h"
#include "core/run/trained_run.h"
#include "data/dataset.h"
#include "data/label_map.h"
#include "data/reader.h"
#include "data/tokenizer/tokenizer.h"

namespace ls::parallel {
class Communicator;
}

namespace ls {

// Inputs tokenized and truncated as training does: the examples the model reads and the records
// whose words the token-task objects show (an input cut by InputLimits keeps its whole text or
// word list here, so "truncated_words" counts every word that lost its tag).
struct PreparedInputs {
  data::RawDataset raw;
  data::Dataset dataset;
};

// Predictor::prepare without a model (tests drive it with a tokenizer alone): `pair_separator` is
// the run's data.pair_separator when it reads text pairs, nullopt when it reads single texts.
//
// An input over limits.max_chars is refused (InputTooLong) or, with limits.truncate, cut before
// tokenizing so that the ids the model reads are exactly those of the whole input cut at
// options.max_length: the text is cut at the last whitespace at or before max_chars (a word list:
// after the last whole word that fits) and tokenized; pre-tokenizers split at whitespace, so only
// the cut's last word (and the whitespace before it) can tokenize differently from the whole
// text, in at most one id per byte. When the ids before that word still reach past max_length the
// cut is used; otherwise (a cut too short, or no whitespace to cut at) the whole input is.
PreparedInputs prepare_inputs(const std::vector<PredictInput>& inputs,
                              const data::Tokenizer& tokenizer, const data::LabelMap& labels,
                              const data::DatasetOptions& options,
                              const std::optional<std::string>& pair_separator,
                              const InputLimits& limits = {});

// A data file predicted: evaluate()'s result with the records and examples it describes.
struct FilePredictions {
  EvalResult result;
  data::RawDataset raw;
  data::Dataset dataset;
  bool labeled = false;  // some record had a label: result has the loss and the metrics
};

class Predictor {
 public:
  // Loads the tokenizer and the model with the adapter's head settings (head_config.json). `run`
  // comes from open_trained_run (a run directory, or an adapter directory and a base model).
  Predictor(TrainedRun run, const Placement& placement);

  const Config& config() const { return run_.config; }
  const data::LabelMap& labels() const { return run_.labels; }
  const TrainedRun& run() const { return run_; }
  c10::Device device() const { return placement_.device; }
  TaskType task() const { return options_.task; }
  int max_length() const { return options_.max_length; }
  c10::ScalarType dtype() const { return placement_.dtype; }  // of the frozen base
  // Multi-label: the probability at which a label is predicted (the head's).
  double threshold() const;
  // The default cap on an input's characters: max_length x 250, text-embeddings-inference's rule
  // (no token is longer than 250 characters in practice, so the cap never cuts what max_length
  // keeps).
  size_t default_max_input_chars() const;

  // Tokenizes `inputs` (thread-safe: request threads call it while the model runs). UserError
  // naming inputs[i] for an empty input or a word list given to a sequence task; InputTooLong for
  // one over `limits` (see prepare_inputs).
  PreparedInputs prepare(const std::vector<PredictInput>& inputs,
                         const InputLimits& limits = {}) const;

  // The model over prepared inputs, `batch_size` at a time; one object per input, in input order
  // (prediction_objects without gold). With `scores`, also each input's Prediction::scores, in
  // input order. Not thread-safe: one caller at a time.
  std::vector<nlohmann::json> predict(const PreparedInputs& inputs, int64_t batch_size,
                                      std::vector<std::vector<float>>* scores = nullptr);
  std::vector<nlohmann::json> predict(const std::vector<PredictInput>& inputs);

  // A data file (same format options as training; labels optional), split over the ranks of
  // `world` (null: this process alone) as evaluate() does.
  FilePredictions predict_file(const std::string& path, int64_t batch_size,
                               const std::shared_ptr<parallel::Communicator>& world);

  // One object per prediction of a file, as its JSONL lines.
  std::string jsonl(const FilePredictions& predictions) const;

 private:
  TrainedRun run_;
  Placement placement_;
  data::DatasetOptions options_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::shared_ptr<LsLlama> model_;
};

}  // namespace ls
