// Evaluation of a split: loss, the task's metrics and per-example predictions, gathered over the
// data-parallel ranks (each rank predicts its share; rank 0 gets everything in dataset order).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/ls_llama.h"
#include "core/metrics.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/label_map.h"
#include "data/reader.h"

namespace ls::parallel {
class Communicator;
}

namespace ls {

struct Prediction {
  int64_t example = 0;               // index in the dataset
  int label = -1;                    // sequence: predicted class
  std::vector<float> probabilities;  // sequence: softmax over classes
  std::vector<int> tags;             // token: predicted class of each word kept after truncation
};

struct EvalResult {
  std::map<std::string, double> metrics;  // loss, accuracy, macro_f1 | entity_{precision,recall,f1}
  std::vector<Prediction> predictions;    // dataset order (complete on dp rank 0)
  int64_t examples = 0;
};

struct EvalOptions {
  int64_t batch_size = 8;  // per rank
  data::CollateOptions collate;
  NerMode ner_mode = NerMode::kDefault;
  bool labeled = true;     // compute loss and metrics
};

// Runs the model in eval mode (no dropout, no gradients) over `dataset`.
EvalResult evaluate(LsLlama& model, const data::Dataset& dataset, const data::LabelMap& labels,
                    const EvalOptions& options, const std::shared_ptr<parallel::Communicator>& dp,
                    c10::Device device);

// Predictions as JSONL, one line per example in dataset order: {"line", "label", "probabilities",
// "gold"} for sequence tasks, {"line", "words", "tags", "gold"} for token tasks.
std::string predictions_jsonl(const EvalResult& result, const data::RawDataset& raw,
                              const data::Dataset& dataset, const data::LabelMap& labels);

// Word-level gold tags of a token-task example (first label of each word), as class ids.
std::vector<int> gold_word_tags(const data::Example& example);

}  // namespace ls
