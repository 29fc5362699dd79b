// Building a Dataset: tokenize, map labels, align NER tags to sub-words, truncate (see dataset.h).
#include "data/dataset.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <thread>
#include <unordered_set>

#include "core/base/error.h"

namespace ls::data {

std::vector<int64_t> Dataset::lengths() const {
  std::vector<int64_t> out;
  out.reserve(examples.size());
  for (const Example& e : examples) out.push_back(static_cast<int64_t>(e.input_ids.size()));
  return out;
}

std::string Dataset::summary() const {
  std::string text =
      fmt::format("{}: {} examples, {} ids, longest {} ids, {} truncated to {}", path,
                  stats.examples, stats.tokens, stats.longest, stats.truncated, max_length);
  if (task == TaskType::kToken) {
    text += fmt::format(", {} words ({} labelled words cut)", stats.words, stats.words_cut);
    if (stats.bio_warnings)
      text += fmt::format("; {} I- tags do not continue an entity (first: {})", stats.bio_warnings,
                          stats.first_bio_warning);
  }
  return text;
}

LabelMap infer_label_map(const RawDataset& train, ProblemType problem) {
  if (problem == ProblemType::kRegression) return LabelMap({"target"});
  std::unordered_set<std::string> seen;
  std::vector<RawLabel> distinct;
  auto add = [&](const RawLabel& label) {
    if (label.is_integer && label.value == kIgnoreIndex) return;  // pre-tokenized "no label"
    if (seen.insert(label.name).second) distinct.push_back(label);
  };
  for (const RawRecord& record : train.records) {
    if (!record.has_label) continue;
    if (problem == ProblemType::kMultiLabel) {
      for (const RawLabel& label : record.label_set) add(label);
    } else if (train.task == TaskType::kSequence) {
      add(record.label);
    } else {
      for (const RawLabel& tag : record.tags) add(tag);
    }
  }
  if (distinct.empty()) fail("{}: no labels to infer the label map from", train.path);
  return LabelMap::infer(distinct);
}

namespace {

class ExampleBuilder {
 public:
  // `tokenizer` is null only for pre-tokenized data.
  ExampleBuilder(const RawDataset& raw, const Tokenizer* tokenizer, const LabelMap& labels,
                 const DatasetOptions& options)
      : raw_(raw),
        tokenizer_(tokenizer),
        labels_(labels),
        options_(options),
        vocab_size_(options.vocab_size > 0 ? options.vocab_size : tokenizer->vocab_size()),
        vocab_owner_(options.vocab_size > 0 ? "model's" : "tokenizer's") {}

  Example build(const RawRecord& record) const {
    Example example;
    example.line = record.line;
    if (raw_.task == TaskType::kSequence) {
      if (raw_.format == DataFormat::kPretokenized) {
        example.input_ids = checked_ids(record);
      } else {
        const std::vector<int> ids = tokenizer_->encode(record.text);
        example.input_ids.assign(ids.begin(), ids.end());
      }
      example.labeled = record.has_label;
      if (record.has_label) {
        const ProblemType problem = options_.reader.problem;
        if (problem == ProblemType::kMultiLabel) {
          for (const RawLabel& label : record.label_set) {
            const int32_t id = label_id(label, record.line);
            if (std::find(example.label_ids.begin(), example.label_ids.end(), id) ==
                example.label_ids.end())
              example.label_ids.push_back(id);
          }
          std::sort(example.label_ids.begin(), example.label_ids.end());
        } else if (problem == ProblemType::kRegression) {
          example.target = static_cast<float>(record.target);
        } else {
          example.label = label_id(record.label, record.line);
        }
      }
    } else if (raw_.format == DataFormat::kPretokenized) {
      example.input_ids = checked_ids(record);
      example.num_words = static_cast<int32_t>(example.input_ids.size());
      example.labels.assign(example.input_ids.size(), kIgnoreIndex);
      example.word_ids.resize(example.input_ids.size());
      for (size_t i = 0; i < example.input_ids.size(); ++i) {
        example.word_ids[i] = static_cast<int32_t>(i);
        if (record.has_label) example.labels[i] = label_id(record.tags[i], record.line);
      }
      example.word_labels = example.labels;
      example.labeled = record.has_label;
    } else {
      align(record, example);
      example.labeled = record.has_label;
    }
    truncate(example);
    return example;
  }

 private:
  // The first sub-word of each word carries the word's label; the others carry it too with
  // label_all_subwords, else kIgnoreIndex, as do BOS and EOS.
  void align(const RawRecord& record, Example& example) const {
    const WordEncoding encoding = tokenizer_->encode_words(record.words);
    example.num_words = static_cast<int32_t>(record.words.size());
    example.input_ids.assign(encoding.ids.begin(), encoding.ids.end());
    example.word_ids.assign(encoding.word_ids.begin(), encoding.word_ids.end());
    example.labels.assign(encoding.ids.size(), kIgnoreIndex);
    std::vector<int32_t>& word_labels = example.word_labels;
    word_labels.assign(record.words.size(), kIgnoreIndex);
    if (!record.has_label) return;
    for (size_t w = 0; w < record.words.size(); ++w)
      word_labels[w] = label_id(record.tags[w], record.line);
    int previous_word = -1;
    for (size_t i = 0; i < example.word_ids.size(); ++i) {
      const int word = example.word_ids[i];
      if (word < 0) continue;
      if (word != previous_word || options_.label_all_subwords)
        example.labels[i] = word_labels[word];
      previous_word = word;
    }
  }

  void truncate(Example& example) const {
    const size_t limit = static_cast<size_t>(options_.max_length);
    example.full_length = static_cast<int32_t>(example.input_ids.size());
    if (options_.max_length <= 0 || example.input_ids.size() <= limit) return;
    example.truncated = true;
    const bool keep_eos = raw_.format != DataFormat::kPretokenized && tokenizer_->options().add_eos;
    auto cut = [&](std::vector<int32_t>& v) {
      if (v.empty()) return;
      const int32_t last = v.back();
      v.resize(limit);
      if (keep_eos) v.back() = last;
    };
    cut(example.input_ids);
    cut(example.labels);
    cut(example.word_ids);
  }

  int32_t label_id(const RawLabel& label, int64_t line) const {
    if (label.is_integer && label.value == kIgnoreIndex &&
        raw_.format == DataFormat::kPretokenized && raw_.task == TaskType::kToken)
      return kIgnoreIndex;
    const int id = labels_.id(label);
    if (id < 0) {
      const auto& names = labels_.names();
      const size_t shown = std::min<size_t>(names.size(), 12);
      fail("{}:{}: unknown label \"{}\" (the label map has {}: {}{})", raw_.path, line, label.name,
           names.size(),
           fmt::join(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(shown), ", "),
           shown < names.size() ? ", ..." : "");
    }
    return id;
  }

  std::vector<int32_t> checked_ids(const RawRecord& record) const {
    for (int32_t id : record.input_ids)
      if (id >= vocab_size_)
        fail("{}:{}: token id {} is outside the {} vocabulary of {}", raw_.path, record.line, id,
             vocab_owner_, vocab_size_);
    return record.input_ids;
  }

  const RawDataset& raw_;
  const Tokenizer* tokenizer_;
  const LabelMap& labels_;
  const DatasetOptions& options_;
  int64_t vocab_size_;
  const char* vocab_owner_;
};

// Counts I- tags that do not continue an entity of their type (after O, at the start of a
// sentence, or after another type): IOB2 allows none, so each one is a data problem to report.
void check_bio(const RawDataset& raw, const LabelMap& labels, DatasetStats& stats) {
  const std::vector<BioTag> tags = labels.bio_tags();
  if (tags.empty() || raw.format == DataFormat::kPretokenized) return;
  for (const RawRecord& record : raw.records) {
    if (!record.has_label) continue;
    int previous = -1;
    for (size_t w = 0; w < record.tags.size(); ++w) {
      const int id = labels.id(record.tags[w]);
      const BioTag& tag = tags[id];
      if (tag.prefix == 'I') {
        const bool continues =
            previous >= 0 && tags[previous].prefix != 'O' && tags[previous].type == tag.type;
        if (!continues) {
          if (stats.bio_warnings++ == 0)
            stats.first_bio_warning = fmt::format(
                "{}:{}: word {} '{}' tagged {} after {}", raw.path, record.line, w + 1,
                record.words.empty() ? std::string() : record.words[w], labels.name(id),
                previous < 0 ? std::string("the sentence start") : labels.name(previous));
        }
      }
      previous = id;
    }
  }
}

}  // namespace

Dataset build_dataset(const RawDataset& raw, const Tokenizer& tokenizer, const LabelMap& labels,
                      const DatasetOptions& options) {
  return build_dataset(raw, &tokenizer, labels, options);
}

Dataset build_dataset(const RawDataset& raw, const Tokenizer* tokenizer, const LabelMap& labels,
                      const DatasetOptions& options) {
  LS_ASSERT(raw.task == options.task, "dataset read for another task");
  LS_ASSERT(tokenizer || (raw.format == DataFormat::kPretokenized && options.vocab_size > 0),
            "text data needs a tokenizer; pre-tokenized data without one needs the vocab_size");
  // The config validates data.max_length (>= 2); 0 is "no limit" for callers that cut nothing.
  LS_ASSERT(options.max_length == 0 || options.max_length >= 2,
            "max_length must be 0 (no limit) or at least 2, got {}", options.max_length);
  Dataset dataset;
  dataset.path = raw.path;
  dataset.task = raw.task;
  dataset.problem = options.reader.problem;
  dataset.num_labels = labels.size();
  dataset.max_length = options.max_length;
  const size_t n = raw.records.size();
  dataset.examples.resize(n);

  // Tokenization dominates: split the records into contiguous chunks, one per thread. The first
  // error in file order wins, so messages do not depend on scheduling.
  ExampleBuilder builder(raw, tokenizer, labels, options);
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = std::clamp<size_t>(
      options.num_threads > 0 ? options.num_threads : hardware, 1, std::max<size_t>(1, n / 256));
  std::vector<std::exception_ptr> errors(threads);
  auto work = [&](size_t t) {
    const size_t begin = n * t / threads, end = n * (t + 1) / threads;
    try {
      for (size_t i = begin; i < end; ++i) dataset.examples[i] = builder.build(raw.records[i]);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (std::thread& thread : pool) thread.join();
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);

  DatasetStats& stats = dataset.stats;
  stats.examples = static_cast<int64_t>(n);
  for (size_t i = 0; i < n; ++i) {
    const Example& example = dataset.examples[i];
    const RawRecord& record = raw.records[i];
    stats.tokens += static_cast<int64_t>(example.input_ids.size());
    stats.truncated += example.truncated;
    stats.longest = std::max<int64_t>(stats.longest, example.full_length);
    if (raw.task == TaskType::kToken) {
      stats.words += example.num_words;
      if (example.truncated && record.has_label) {
        const int32_t last_word =
            *std::max_element(example.word_ids.begin(), example.word_ids.end());
        stats.words_cut += example.num_words - 1 - std::max(last_word, -1);
      }
    }
  }
  if (raw.task == TaskType::kToken) check_bio(raw, labels, stats);
  return dataset;
}

LabelCounts count_labels(const Dataset& dataset) {
  LabelCounts counts;
  counts.per_class.assign(static_cast<size_t>(std::max(dataset.num_labels, 0)), 0);
  auto add = [&](int32_t id) {
    if (id < 0 || id >= dataset.num_labels) return;
    ++counts.per_class[static_cast<size_t>(id)];
  };
  for (const Example& example : dataset.examples) {
    if (dataset.task == TaskType::kToken) {
      for (int32_t id : example.labels)
        if (id != kIgnoreIndex) add(id), ++counts.total;
    } else if (!example.labeled) {
      continue;
    } else if (dataset.problem == ProblemType::kMultiLabel) {
      for (int32_t id : example.label_ids) add(id);
      ++counts.total;
    } else if (dataset.problem == ProblemType::kSingleLabel) {
      add(example.label);
      ++counts.total;
    }
  }
  return counts;
}

TargetStats target_stats(const Dataset& dataset) {
  TargetStats stats;
  double sum = 0, squares = 0;
  for (const Example& example : dataset.examples)
    if (example.labeled) sum += example.target, ++stats.count;
  if (stats.count == 0) return stats;
  stats.mean = sum / static_cast<double>(stats.count);
  for (const Example& example : dataset.examples)
    if (example.labeled) squares += (example.target - stats.mean) * (example.target - stats.mean);
  stats.std = std::sqrt(squares / static_cast<double>(stats.count));
  return stats;
}

Dataset load_dataset(const std::string& path, const Tokenizer& tokenizer, const LabelMap& labels,
                     const DatasetOptions& options) {
  return build_dataset(read_raw_dataset(path, options.task, options.reader), tokenizer, labels,
                       options);
}

}  // namespace ls::data
