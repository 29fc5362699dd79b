// Readers: data files -> raw records (text or words, and labels as written), each with the line
// it came from. Formats: JSONL (text fields + label; for token tasks HF-style word lists), CSV and
// TSV with a header row, CoNLL, and pre-tokenized JSONL. Nothing here tokenizes or maps labels:
// dataset.h does, so every error about content can still name file:line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/label_map.h"

namespace ls::data {

// kLines: plain text, one unlabeled example per non-empty line (a sequence task's text; a token
// task's words, split at spaces and tabs), for prediction.
enum class DataFormat { kAuto, kJsonl, kCsv, kTsv, kConll, kPretokenized, kLines };

struct ReaderOptions {
  DataFormat format = DataFormat::kAuto;  // kAuto: by extension (see resolve_format)
  // Sequence tasks: the text field(s) (JSON keys or CSV columns). Two or more are joined with
  // `pair_separator` (premise/hypothesis).
  std::vector<std::string> text_fields = {"text"};
  std::string pair_separator = " ";
  std::string label_field = "label";
  // Sequence tasks: single-label reads one label per example; multi-label a JSON list of labels
  // (or a string) and in CSV/TSV a cell split at `label_separator` (empty cell = no label);
  // regression a number (JSON number or numeric text).
  ProblemType problem = ProblemType::kSingleLabel;
  std::string label_separator = "|";
  // Token tasks, JSONL: the word list and its tags (HF datasets' export); pre-tokenized JSONL
  // with a token task reads per-token labels from `tags_field`.
  std::string tokens_field = "tokens";
  std::string tags_field = "ner_tags";
  int conll_tag_column = -1;  // 0-based column of the tag; negative counts from the end
  std::string input_ids_field = "input_ids";
  bool csv_quoting = true;  // RFC 4180 quotes in CSV/TSV; off: quotes are literal
  bool labeled = true;      // false: labels are optional (inputs to predict)
};

struct RawRecord {
  int64_t line = 0;                // 1-based line where the record starts
  std::string text;                // sequence task from text: the (joined) text
  std::vector<std::string> words;  // token task from text: the words
  std::vector<int32_t> input_ids;  // pre-tokenized: the ids as given
  bool has_label = false;
  RawLabel label;                   // sequence task, single-label
  std::vector<RawLabel> label_set;  // sequence task, multi-label (may be empty)
  double target = 0;                // sequence task, regression
  std::vector<RawLabel> tags;       // token task: one per word (pre-tokenized: one per id)
};

struct RawDataset {
  std::string path;
  TaskType task = TaskType::kSequence;
  DataFormat format = DataFormat::kAuto;  // as resolved
  std::vector<RawRecord> records;
};

// The format of `path`: `requested` unless kAuto; then by extension (.jsonl/.json -> JSONL, .csv,
// .tsv, .conll/.txt/.bio/.iob -> CoNLL). UserError for an extension it cannot place.
DataFormat resolve_format(const std::string& path, DataFormat requested);

// The format read_raw_dataset will read `path` as: resolve_format, and auto-detected JSONL whose
// first record has `options.input_ids_field` is pre-tokenized (which needs no tokenizer).
DataFormat detect_format(const std::string& path, const ReaderOptions& options);

// Reads and checks one split. Auto-detected JSONL whose first record has `input_ids_field` is read
// as pre-tokenized. Throws UserError naming file:line for malformed JSON, a missing or mistyped
// field, an unbalanced CSV quote, a CoNLL line with the wrong column count, invalid UTF-8, an
// empty file, and a format that does not fit the task.
RawDataset read_raw_dataset(const std::string& path, TaskType task, const ReaderOptions& options);
// The same over text in memory (`name` stands for the path in errors and for the extension).
RawDataset parse_raw_dataset(const std::string& name, std::string contents, TaskType task,
                             const ReaderOptions& options);

}  // namespace ls::data

namespace ls {

template <>
struct EnumNames<data::DataFormat> {
  static constexpr std::string_view what = "data format";
  static constexpr EnumName<data::DataFormat> table[] = {
      {data::DataFormat::kAuto, "auto"},   {data::DataFormat::kJsonl, "jsonl"},
      {data::DataFormat::kCsv, "csv"},     {data::DataFormat::kTsv, "tsv"},
      {data::DataFormat::kConll, "conll"}, {data::DataFormat::kPretokenized, "pretokenized"},
      {data::DataFormat::kLines, "lines"}};
};

}  // namespace ls
