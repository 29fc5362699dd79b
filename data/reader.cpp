// Readers for JSONL, CSV/TSV, CoNLL and pre-tokenized JSONL (see reader.h).
#include "data/reader.h"

#include <fmt/ranges.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "data/delimited.h"
#include "data/text_file.h"

namespace ls::data {

using nlohmann::json;

DataFormat resolve_format(const std::string& path, DataFormat requested) {
  if (requested != DataFormat::kAuto) return requested;
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".jsonl" || ext == ".json" || ext == ".ndjson") return DataFormat::kJsonl;
  if (ext == ".csv") return DataFormat::kCsv;
  if (ext == ".tsv") return DataFormat::kTsv;
  if (ext == ".conll" || ext == ".txt" || ext == ".bio" || ext == ".iob") return DataFormat::kConll;
  fail(
      "{}: cannot tell the data format from the extension '{}'; set data.format (jsonl, csv, "
      "tsv, conll, pretokenized or lines)",
      path, ext);
}

namespace {

// nlohmann's messages start with "[json.exception.parse_error.101] parse error at line 1, ";
// the line is ours to name, so keep what follows.
std::string json_error_detail(const json::parse_error& e) {
  std::string_view what = e.what();
  if (auto pos = what.find("column"); pos != std::string_view::npos) what.remove_prefix(pos);
  return std::string(what);
}

std::string_view json_type(const json& value) {
  return value.type_name();
}

// Integers given as text (CSV cells): optional '-' then digits.
bool parse_integer(std::string_view text, int64_t& value) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

RawLabel label_from_text(std::string_view text) {
  RawLabel label{std::string(text), false, 0};
  label.is_integer = parse_integer(text, label.value);
  return label;
}

// A finite decimal number written as text (regression targets in CSV cells or JSON strings).
bool parse_number(std::string_view text, double& value) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(value);
}

// A multi-label cell: labels separated by `separator`, spaces around each trimmed; an empty
// cell is the empty set.
std::vector<RawLabel> split_labels(std::string_view text, const std::string& separator) {
  std::vector<RawLabel> out;
  auto add = [&](std::string_view part) {
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (!part.empty()) out.push_back(label_from_text(part));
  };
  if (separator.empty()) {
    add(text);
    return out;
  }
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    add(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + separator.size();
  }
  return out;
}

// Reads records out of a TextFile; `where(line)` prefixes every error.
class Parser {
 public:
  Parser(const TextFile& file, TaskType task, const ReaderOptions& options)
      : file_(file), task_(task), options_(options) {}

  std::vector<RawRecord> jsonl(bool pretokenized) {
    std::vector<RawRecord> records;
    auto lines = file_.lines();
    std::string_view line;
    int64_t line_number = 0;
    while (lines.next_line(line, line_number)) {
      if (is_blank(line)) continue;
      json doc;
      try {
        doc = json::parse(line);
      } catch (const json::parse_error& e) {
        fail("{}: malformed JSON: {}", file_.where(line_number), json_error_detail(e));
      }
      if (!doc.is_object())
        fail("{}: expected a JSON object per line, found {}", file_.where(line_number),
             json_type(doc));
      RawRecord record;
      record.line = line_number;
      if (pretokenized) {
        record.input_ids = input_ids(doc, line_number);
        if (task_ == TaskType::kSequence) {
          sequence_label(doc, record);
        } else {
          token_labels(doc, record, record.input_ids.size(), options_.input_ids_field);
        }
      } else if (task_ == TaskType::kSequence) {
        record.text = joined_text(doc, line_number);
        sequence_label(doc, record);
      } else {
        record.words = words(doc, line_number);
        token_labels(doc, record, record.words.size(), options_.tokens_field);
      }
      records.push_back(std::move(record));
    }
    return records;
  }

  std::vector<RawRecord> delimited(char delimiter) {
    if (task_ != TaskType::kSequence)
      fail(
          "{}: CSV/TSV files hold sequence examples; token tasks read CoNLL or JSONL word "
          "lists",
          file_.path());
    std::vector<DelimitedRow> rows = parse_delimited(file_, delimiter, options_.csv_quoting);
    if (rows.empty()) fail("{}: no header row", file_.path());
    const DelimitedRow& header = rows[0];
    auto column = [&](const std::string& name, bool required, std::string_view key) -> int {
      for (size_t i = 0; i < header.fields.size(); ++i)
        if (header.fields[i] == name) return static_cast<int>(i);
      if (required)
        fail("{}: no column \"{}\" in the header (columns: {}; set {} to one of them)",
             file_.where(header.line), name, fmt::join(header.fields, ", "), key);
      return -1;
    };
    std::vector<int> text_columns;
    for (size_t k = 0; k < options_.text_fields.size(); ++k)
      text_columns.push_back(
          column(options_.text_fields[k], true, k ? "data.text_pair_field" : "data.text_field"));
    const int label_column = column(options_.label_field, options_.labeled, "data.label_field");

    std::vector<RawRecord> records;
    records.reserve(rows.size() - 1);
    for (size_t r = 1; r < rows.size(); ++r) {
      DelimitedRow& row = rows[r];
      if (row.fields.size() != header.fields.size())
        fail("{}: expected {} fields as in the header, found {}", file_.where(row.line),
             header.fields.size(), row.fields.size());
      RawRecord record;
      record.line = row.line;
      for (size_t k = 0; k < text_columns.size(); ++k) {
        if (k) record.text += options_.pair_separator;
        record.text += row.fields[text_columns[k]];
      }
      if (label_column >= 0) {
        const std::string& cell = row.fields[label_column];
        record.has_label = true;
        if (options_.problem == ProblemType::kMultiLabel) {
          record.label_set = split_labels(cell, options_.label_separator);
        } else if (options_.problem == ProblemType::kRegression) {
          if (!parse_number(cell, record.target))
            fail("{}: regression target \"{}\" in column \"{}\" is not a number",
                 file_.where(row.line), cell, options_.label_field);
        } else {
          record.label = label_from_text(cell);
          if (record.label.name.empty())
            fail("{}: empty label in column \"{}\"", file_.where(row.line), options_.label_field);
        }
      }
      records.push_back(std::move(record));
    }
    if (records.empty()) fail("{}: no examples after the header", file_.path());
    return records;
  }

  // Plain text: every non-empty line one unlabeled example.
  std::vector<RawRecord> lines() {
    if (options_.labeled)
      fail(
          "{}: a plain text file holds no labels; training and evaluation read JSONL, CSV/TSV or "
          "CoNLL (data.format)",
          file_.path());
    std::vector<RawRecord> records;
    auto lines = file_.lines();
    std::string_view line;
    int64_t line_number = 0;
    std::vector<std::string_view> words;
    while (lines.next_line(line, line_number)) {
      if (is_blank(line)) continue;
      RawRecord record;
      record.line = line_number;
      if (task_ == TaskType::kSequence) {
        record.text = std::string(line);
      } else {
        split_whitespace(line, words);
        record.words.assign(words.begin(), words.end());
      }
      records.push_back(std::move(record));
    }
    return records;
  }

  std::vector<RawRecord> conll() {
    if (task_ != TaskType::kToken)
      fail("{}: CoNLL files hold token tags; a sequence task reads JSONL, CSV or TSV",
           file_.path());
    std::vector<RawRecord> records;
    RawRecord sentence;
    size_t columns = 0;  // fixed by the first token line
    int64_t columns_line = 0;
    size_t tag_column = 0;
    auto finish_sentence = [&] {
      if (!sentence.words.empty()) records.push_back(std::move(sentence));
      sentence = RawRecord{};
    };
    std::vector<std::string_view> fields;
    auto lines = file_.lines();
    std::string_view line;
    int64_t line_number = 0;
    while (lines.next_line(line, line_number)) {
      if (is_blank(line)) {
        finish_sentence();
        continue;
      }
      split_whitespace(line, fields);
      if (fields[0] == "-DOCSTART-") {
        finish_sentence();
        continue;
      }
      if (columns == 0) {
        columns = fields.size();
        columns_line = line_number;
        const int tag = options_.conll_tag_column;
        const int resolved = tag < 0 ? static_cast<int>(columns) + tag : tag;
        if (options_.labeled && (columns < 2 || resolved <= 0 || resolved >= int(columns)))
          fail(
              "{}: the tag column {} does not exist in a line of {} column(s) (the word is "
              "column 0; set data.conll_tag_column)",
              file_.where(line_number), tag, columns);
        tag_column = columns >= 2 && resolved > 0 && resolved < int(columns) ? resolved : 0;
      } else if (fields.size() != columns) {
        fail("{}: expected {} columns as on line {}, found {}", file_.where(line_number), columns,
             columns_line, fields.size());
      }
      if (sentence.words.empty()) sentence.line = line_number;
      sentence.words.emplace_back(fields[0]);
      if (tag_column > 0) {
        sentence.tags.push_back(RawLabel{std::string(fields[tag_column]), false, 0});
        sentence.has_label = true;
      }
    }
    finish_sentence();
    return records;
  }

 private:
  static void split_whitespace(std::string_view line, std::vector<std::string_view>& out) {
    out.clear();
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      const size_t start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
      if (i > start) out.push_back(line.substr(start, i - start));
    }
  }

  // `key`: the config key that names the field, which the error says how to set.
  const json& field(const json& doc, const std::string& name, int64_t line,
                    std::string_view key) const {
    auto it = doc.find(name);
    if (it == doc.end())
      fail("{}: missing field \"{}\" (set {} to the field that holds it)", file_.where(line), name,
           key);
    return *it;
  }

  std::string joined_text(const json& doc, int64_t line) const {
    std::string text;
    for (size_t k = 0; k < options_.text_fields.size(); ++k) {
      const json& value =
          field(doc, options_.text_fields[k], line, k ? "data.text_pair_field" : "data.text_field");
      if (!value.is_string())
        fail("{}: field \"{}\" must be a string, found {}", file_.where(line),
             options_.text_fields[k], json_type(value));
      if (k) text += options_.pair_separator;
      text += value.get_ref<const std::string&>();
    }
    return text;
  }

  RawLabel label_value(const json& value, const std::string& name, int64_t line) const {
    if (value.is_string()) return RawLabel{value.get<std::string>(), false, 0};
    if (value.is_number_integer()) {
      const int64_t v = value.get<int64_t>();
      return RawLabel{std::to_string(v), true, v};
    }
    fail("{}: field \"{}\" must hold a string or an integer label, found {}", file_.where(line),
         name, json_type(value));
  }

  void sequence_label(const json& doc, RawRecord& record) const {
    auto it = doc.find(options_.label_field);
    if (it == doc.end()) {
      if (options_.labeled)
        fail("{}: missing field \"{}\" (set data.label_field to the field that holds the label)",
             file_.where(record.line), options_.label_field);
      return;
    }
    record.has_label = true;
    const json& value = *it;
    if (options_.problem == ProblemType::kMultiLabel) {
      if (value.is_string()) {
        record.label_set =
            split_labels(value.get_ref<const std::string&>(), options_.label_separator);
      } else if (value.is_array()) {
        for (const json& item : value)
          record.label_set.push_back(label_value(item, options_.label_field, record.line));
      } else {
        fail("{}: field \"{}\" must hold a list of labels (multi-label), found {}",
             file_.where(record.line), options_.label_field, json_type(value));
      }
    } else if (options_.problem == ProblemType::kRegression) {
      if (value.is_number()) {
        record.target = value.get<double>();
      } else if (!value.is_string() ||
                 !parse_number(value.get_ref<const std::string&>(), record.target)) {
        fail("{}: field \"{}\" must hold a number (regression target), found {}",
             file_.where(record.line), options_.label_field,
             value.is_string() ? "\"" + value.get<std::string>() + "\""
                               : std::string(json_type(value)));
      }
    } else {
      record.label = label_value(value, options_.label_field, record.line);
    }
  }

  std::vector<std::string> words(const json& doc, int64_t line) const {
    // Unlabeled text for a token task (as ls_serve takes it): its words split at spaces and tabs.
    if (!options_.labeled && !doc.contains(options_.tokens_field) &&
        !options_.text_fields.empty()) {
      const auto text = doc.find(options_.text_fields[0]);
      if (text != doc.end() && text->is_string()) {
        std::vector<std::string_view> split;
        split_whitespace(text->get_ref<const std::string&>(), split);
        if (split.empty())
          fail("{}: field \"{}\" holds no words", file_.where(line), options_.text_fields[0]);
        return {split.begin(), split.end()};
      }
    }
    const json& list = field(doc, options_.tokens_field, line, "data.tokens_field");
    if (!list.is_array())
      fail("{}: field \"{}\" must be a list of words, found {}", file_.where(line),
           options_.tokens_field, json_type(list));
    std::vector<std::string> out;
    out.reserve(list.size());
    for (const json& word : list) {
      if (!word.is_string())
        fail("{}: field \"{}\" must hold strings, found {}", file_.where(line),
             options_.tokens_field, json_type(word));
      out.push_back(word.get<std::string>());
    }
    if (out.empty())
      fail("{}: field \"{}\" is an empty list", file_.where(line), options_.tokens_field);
    return out;
  }

  void token_labels(const json& doc, RawRecord& record, size_t expected,
                    std::string_view counted) const {
    auto it = doc.find(options_.tags_field);
    if (it == doc.end()) {
      if (options_.labeled)
        fail("{}: missing field \"{}\" (set data.tags_field to the field that holds the tags)",
             file_.where(record.line), options_.tags_field);
      return;
    }
    if (!it->is_array())
      fail("{}: field \"{}\" must be a list of tags, found {}", file_.where(record.line),
           options_.tags_field, json_type(*it));
    if (it->size() != expected)
      fail("{}: {} entries in \"{}\" but {} tags in \"{}\"", file_.where(record.line), expected,
           counted, it->size(), options_.tags_field);
    record.tags.reserve(expected);
    for (const json& tag : *it)
      record.tags.push_back(label_value(tag, options_.tags_field, record.line));
    record.has_label = true;
  }

  std::vector<int32_t> input_ids(const json& doc, int64_t line) const {
    const json& list = field(doc, options_.input_ids_field, line, "the input_ids field");
    if (!list.is_array() || list.empty())
      fail("{}: field \"{}\" must be a non-empty list of token ids", file_.where(line),
           options_.input_ids_field);
    std::vector<int32_t> ids;
    ids.reserve(list.size());
    for (const json& id : list) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
        fail("{}: field \"{}\" holds {}, not a token id", file_.where(line),
             options_.input_ids_field, id.dump());
      ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
    return ids;
  }

  const TextFile& file_;
  TaskType task_;
  const ReaderOptions& options_;
};

// Auto-detected JSONL is pre-tokenized when its first record carries the ids field.
bool first_record_has(const TextFile& file, const std::string& key) {
  auto lines = file.lines();
  std::string_view line;
  int64_t line_number = 0;
  while (lines.next_line(line, line_number)) {
    if (is_blank(line)) continue;
    json doc = json::parse(line, nullptr, /*allow_exceptions=*/false);
    return doc.is_object() && doc.contains(key);  // malformed lines are reported by the parser
  }
  return false;
}

DataFormat detect_format(const TextFile& file, const ReaderOptions& options) {
  const DataFormat format = resolve_format(file.path(), options.format);
  if (options.format == DataFormat::kAuto && format == DataFormat::kJsonl &&
      first_record_has(file, options.input_ids_field))
    return DataFormat::kPretokenized;
  return format;
}

RawDataset parse(TextFile file, TaskType task, const ReaderOptions& options) {
  if (task == TaskType::kSequence && options.text_fields.empty())
    fail("{}: no text field configured", file.path());
  if (task == TaskType::kToken && options.problem != ProblemType::kSingleLabel)
    fail("{}: task.problem_type {} is for sequence tasks; token tasks are single_label",
         file.path(), enum_name(options.problem));
  RawDataset dataset;
  dataset.path = file.path();
  dataset.task = task;
  dataset.format = detect_format(file, options);
  // A .txt file is CoNLL for a token task, and for a sequence task (which CoNLL cannot hold)
  // plain text, one example per line.
  std::string ext = std::filesystem::path(file.path()).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (options.format == DataFormat::kAuto && dataset.format == DataFormat::kConll &&
      task == TaskType::kSequence && ext == ".txt")
    dataset.format = DataFormat::kLines;
  Parser parser(file, task, options);
  switch (dataset.format) {
    case DataFormat::kJsonl:
      dataset.records = parser.jsonl(false);
      break;
    case DataFormat::kPretokenized:
      dataset.records = parser.jsonl(true);
      break;
    case DataFormat::kCsv:
      dataset.records = parser.delimited(',');
      break;
    case DataFormat::kTsv:
      dataset.records = parser.delimited('\t');
      break;
    case DataFormat::kConll:
      dataset.records = parser.conll();
      break;
    case DataFormat::kLines:
      dataset.records = parser.lines();
      break;
    case DataFormat::kAuto:
      LS_ASSERT(false, "format resolved to auto");
  }
  if (dataset.records.empty()) fail("{}: no examples in the file", file.path());
  return dataset;
}

}  // namespace

DataFormat detect_format(const std::string& path, const ReaderOptions& options) {
  return detect_format(TextFile::read(path), options);
}

RawDataset read_raw_dataset(const std::string& path, TaskType task, const ReaderOptions& options) {
  return parse(TextFile::read(path), task, options);
}

RawDataset parse_raw_dataset(const std::string& name, std::string contents, TaskType task,
                             const ReaderOptions& options) {
  return parse(TextFile::from_string(name, std::move(contents)), task, options);
}

}  // namespace ls::data
