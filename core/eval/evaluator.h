// Evaluation of a split: loss, the task's metrics and per-example predictions, gathered over the
// data-parallel ranks (each rank predicts its share; rank 0 gets everything in dataset order).
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/eval/metrics.h"
#include "core/model/ls_llama.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/label_map.h"
#include "data/reader.h"

namespace ls::parallel {
class Communicator;
}

namespace ls {

struct Prediction {
  int64_t example = 0;  // index in the dataset
  int label = -1;       // single-label sequence: predicted class
  // single-label: softmax over classes; multi-label: sigmoid of each label; regression: the one
  // predicted value (mapped back from normalised targets).
  std::vector<float> probabilities;
  std::vector<int> tags;  // token: predicted class of each word kept after truncation
  // The raw numbers other answer formats start from (ls_serve's HF and vLLM routes): the logit of
  // each class (single- and multi-label), the head's output before it is mapped back to the
  // targets' scale (regression), the softmax probability of each kept word's predicted tag at the
  // word's first sub-word, where the tag is read (token).
  std::vector<float> scores;
};

struct EvalResult {
  // loss and the problem's metrics: accuracy, macro_f1 (single-label) | entity_{precision,recall,
  // f1}, tag_accuracy (token; over every labelled word, those cut by max_length predicted O) and
  // truncated_words (how many were cut) | micro_f1, macro_f1, subset_accuracy, f1/<label>
  // (multi-label) | mse, mae, pearson, spearman (regression)
  std::map<std::string, double> metrics;
  std::vector<Prediction> predictions;  // dataset order (complete on dp rank 0)
  int64_t examples = 0;
  double threshold = 0.5;  // multi-label: the decision threshold the predictions use
};

struct EvalOptions {
  int64_t batch_size = 8;  // per rank
  data::CollateOptions collate;
  NerMode ner_mode = NerMode::kDefault;
  bool labeled = true;  // compute loss and metrics
};

// Runs the model in eval mode (no dropout, no gradients) over `dataset`.
EvalResult evaluate(LsLlama& model, const data::Dataset& dataset, const data::LabelMap& labels,
                    const EvalOptions& options, const std::shared_ptr<parallel::Communicator>& dp,
                    c10::Device device);

// What evaluate() makes of one batch's logits ([B, C], or [B, T, C] for token tasks; float, on
// the CPU), without a model or a loss: the predictions and the problem's metrics (threshold 0.5,
// regression targets as they are). Lets tests drive every problem kind with synthetic logits.
EvalResult evaluate_logits(const at::Tensor& logits, const data::Batch& batch,
                           const data::Dataset& dataset, const data::LabelMap& labels,
                           NerMode ner_mode = NerMode::kDefault);

// What a prediction says, one JSON object per prediction (in result order), as ls_predict's lines
// and ls_serve's responses show it: {"label", "probabilities"} for single-label sequence tasks,
// {"labels", "probabilities"} (the labels at or above the threshold; a probability per label) for
// multi-label, {"prediction"} for regression, {"words", "tags", "entities"} for token tasks
// (entities: {"type", "start", "end", "text"}, word indices [start, end); "truncated_words" when
// words were cut), plus "truncated": true when data.max_length cut the input. With `gold`, the
// example's gold label(s) as "gold" when it has them.
std::vector<nlohmann::json> prediction_objects(const EvalResult& result,
                                               const data::RawDataset& raw,
                                               const data::Dataset& dataset,
                                               const data::LabelMap& labels, bool gold,
                                               NerMode ner_mode = NerMode::kDefault);

// Predictions as JSONL, one line per example in dataset order: prediction_objects with gold, the
// example's "line" in its file and, for sequence tasks, its "text" (pairs joined).
std::string predictions_jsonl(const EvalResult& result, const data::RawDataset& raw,
                              const data::Dataset& dataset, const data::LabelMap& labels,
                              NerMode ner_mode = NerMode::kDefault);

// Word-level gold tags of a token-task example (first label of each word), as class ids.
std::vector<int> gold_word_tags(const data::Example& example);

}  // namespace ls
