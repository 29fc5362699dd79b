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

// One input to predict: a text, or for token tasks a list of words (a text is split at
// whitespace into words there).
struct PredictInput {
  std::string text;
  std::optional<std::string> text_pair;  // a pair run's second text: joined as training joins it
  std::vector<std::string> words;
  bool is_words = false;
};

// Inputs tokenized and truncated as training does: the examples the model reads and the records
// whose words the token-task objects show.
struct PreparedInputs {
  data::RawDataset raw;
  data::Dataset dataset;
};

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

  // Tokenizes `inputs` (thread-safe: request threads call it while the model runs). UserError
  // naming inputs[i] for an empty input or a word list given to a sequence task.
  PreparedInputs prepare(const std::vector<PredictInput>& inputs) const;

  // The model over prepared inputs, `batch_size` at a time; one object per input, in input order
  // (prediction_objects without gold). Not thread-safe: one caller at a time.
  std::vector<nlohmann::json> predict(const PreparedInputs& inputs, int64_t batch_size);
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
