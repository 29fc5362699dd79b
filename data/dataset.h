// Dataset: one split tokenized, labels mapped to ids, NER labels aligned to sub-words, truncated
// to max_length. Built once before training (every data error surfaces before step one), so the
// sampler can group by length and the batch loader only pads and copies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/label_map.h"
#include "data/reader.h"
#include "data/tokenizer/tokenizer.h"

namespace ls::data {

struct Example {
  std::vector<int32_t> input_ids;
  // Token task: one label per id (kIgnoreIndex on BOS/EOS, on sub-words after a word's first
  // unless label_all_subwords, and everywhere when unlabeled). Empty for sequence tasks.
  std::vector<int32_t> labels;
  // Token task: the word index of every id (-1 for BOS/EOS), to map predictions back to words.
  // Pre-tokenized input has no words: each id is its own "word".
  std::vector<int32_t> word_ids;
  // Token task: the gold class id of every word of the source sentence, truncated words too
  // (kIgnoreIndex when unlabeled): what word-level metrics (seqeval) compare against.
  std::vector<int32_t> word_labels;
  int32_t label = kIgnoreIndex;    // sequence task: the class id (kIgnoreIndex when unlabeled)
  std::vector<int32_t> label_ids;  // multi-label: the class ids of the example's label set
  float target = 0;                // regression: the number
  bool labeled = false;            // the record had a label (any problem type)
  int32_t num_words = 0;           // token task: words in the source sentence (before truncation)
  int64_t line = 0;                // where the example starts in its file
  int32_t full_length = 0;         // ids before truncation
  bool truncated = false;
};

struct DatasetOptions {
  TaskType task = TaskType::kSequence;
  ReaderOptions reader;  // reader.problem: single-label, multi-label or regression
  // Ids per example including BOS/EOS; longer examples are cut at the end (EOS, when enabled,
  // stays last). 0: no limit.
  int max_length = 64;
  bool label_all_subwords = false;  // NER: every sub-word carries its word's label
  int num_threads = 0;              // tokenizing threads; 0: one per hardware thread
  // Embedding rows of the model (its config.json vocab_size): pre-tokenized ids must be below it.
  // 0: the tokenizer's vocabulary.
  int64_t vocab_size = 0;
};

struct DatasetStats {
  int64_t examples = 0;
  int64_t truncated = 0;          // examples longer than max_length, cut
  int64_t tokens = 0;             // ids after truncation
  int64_t longest = 0;            // ids of the longest example before truncation
  int64_t words = 0;              // token task: words read
  int64_t words_cut = 0;          // token task: labelled words lost to truncation
  int64_t bio_warnings = 0;       // token task: I- tags that do not continue an entity
  std::string first_bio_warning;  // "file:line: word 3 'Paris' tagged I-LOC after O"
};

struct Dataset {
  std::string path;
  TaskType task = TaskType::kSequence;
  ProblemType problem = ProblemType::kSingleLabel;
  int num_labels = 0;  // of the label map it was built with (multi-label batches are [B, C])
  int max_length = 0;  // as built (0: no limit)
  std::vector<Example> examples;
  DatasetStats stats;

  int64_t size() const { return static_cast<int64_t>(examples.size()); }
  // Ids per example: what length-grouped batching sorts on.
  std::vector<int64_t> lengths() const;
  // One line for the log: "train.jsonl: 67349 examples, 1089234 ids, longest 71 ids, 12
  // truncated to 64" (+ words and BIO warnings for token tasks).
  std::string summary() const;
};

// The label map a training split implies (LabelMap::infer over its distinct labels; multi-label:
// over the union of every example's labels). Regression has one output, named "target".
LabelMap infer_label_map(const RawDataset& train, ProblemType problem = ProblemType::kSingleLabel);

// Labelled positions per class of a built split (single-label: examples or tagged tokens;
// multi-label: examples carrying the label) and in all (multi-label: labelled examples): what
// class weights are computed from.
struct LabelCounts {
  std::vector<int64_t> per_class;
  int64_t total = 0;
};
LabelCounts count_labels(const Dataset& dataset);

// Mean and population standard deviation of a regression split's targets.
struct TargetStats {
  double mean = 0, std = 1;
  int64_t count = 0;
};
TargetStats target_stats(const Dataset& dataset);

// Tokenizes, maps and aligns one split. Throws UserError naming file:line for a label the map
// lacks and for pre-tokenized ids outside the vocabulary.
Dataset build_dataset(const RawDataset& raw, const Tokenizer& tokenizer, const LabelMap& labels,
                      const DatasetOptions& options);
// The same with no tokenizer at hand (null): only for pre-tokenized data, whose ids are checked
// against options.vocab_size, which must then be set.
Dataset build_dataset(const RawDataset& raw, const Tokenizer* tokenizer, const LabelMap& labels,
                      const DatasetOptions& options);

// read_raw_dataset + build_dataset.
Dataset load_dataset(const std::string& path, const Tokenizer& tokenizer, const LabelMap& labels,
                     const DatasetOptions& options);

}  // namespace ls::data
