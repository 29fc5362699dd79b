// Predictor (see predictor.h): a run's files -> tokenizer + model, inputs -> prediction objects.
#include "core/infer/predictor.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>
#include <string_view>
#include <utility>

#include "core/adapter/peft_adapter.h"
#include "core/base/error.h"
#include "core/base/utf8.h"

namespace fs = std::filesystem;

namespace ls {

Predictor::Predictor(TrainedRun run, const Placement& placement)
    : run_(std::move(run)), placement_(placement), options_(dataset_options(run_.config, false)) {
  // A run on pre-tokenized data may have no tokenizer: it then predicts pre-tokenized files only.
  if (!find_tokenizer(run_.config).empty()) tokenizer_ = make_tokenizer(run_.config);
  resolve_pad_id(run_.config, tokenizer_.get());  // `--set data.pad_id=auto`; a run's is an id
  // The loss settings the run trained with (class weights resolved from its training split), so
  // a file's loss is the trainer's; the threshold and target normalisation the predictions use.
  HeadOptions head = head_options(run_.config, run_.labels.size());
  if (fs::exists(run_.adapter_dir / kHeadConfigFile))
    read_head_config(run_.adapter_dir / kHeadConfigFile, head, true);
  model_ = load_model(run_.config, placement_, run_.labels.size(), run_.adapter_dir.string(),
                      nullptr, nullptr, head.loss);
}

namespace {

// The byte offset where code point `n` begins (the size when the text is shorter).
size_t byte_offset_of_code_point(std::string_view text, size_t n) {
  for (size_t byte = 0; byte < text.size(); ++byte)
    if (!is_utf8_continuation(text[byte]) && n-- == 0) return byte;
  return text.size();
}

// An input cut before tokenizing: `tail_bytes` bounds the ids at the end of its tokenization that
// may differ from the whole input's (its last word and the whitespace before it, at most one id
// per byte, plus 3 for sentencepiece's "\u2581" standing in for that whitespace).
struct InputCut {
  size_t index = 0;  // in the inputs
  size_t tail_bytes = 0;
};

// `text` cut at the last whitespace at or before `max_chars` code points, where a word ends; the
// cut's last word in bytes. Nullopt when there is no such place.
std::optional<std::pair<std::string, size_t>> cut_text(const std::string& text, size_t max_chars) {
  size_t end = byte_offset_of_code_point(text, max_chars);
  for (; end > 0; --end)
    if (end < text.size() && is_ascii_space(text[end]) && !is_ascii_space(text[end - 1])) break;
  if (end == 0) return std::nullopt;
  size_t word = end;
  while (word > 0 && !is_ascii_space(text[word - 1])) --word;
  return std::make_pair(text.substr(0, end), end - word);
}

// The most whole words whose join by single spaces fits `max_chars` code points.
size_t words_that_fit(const std::vector<std::string>& words, size_t max_chars) {
  size_t length = 0, kept = 0;
  for (; kept < words.size(); ++kept) {
    length += utf8_code_points(words[kept]) + (kept > 0);
    if (length > max_chars) break;
  }
  return kept;
}

}  // namespace

PreparedInputs prepare_inputs(const std::vector<PredictInput>& inputs,
                              const data::Tokenizer& tokenizer, const data::LabelMap& labels,
                              const data::DatasetOptions& options,
                              const std::optional<std::string>& pair_separator,
                              const InputLimits& limits) {
  PreparedInputs prepared;
  prepared.raw.path = "inputs";
  prepared.raw.task = options.task;
  prepared.raw.format = data::DataFormat::kJsonl;
  prepared.raw.records.reserve(inputs.size());
  const bool token_task = options.task == TaskType::kToken;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const PredictInput& input = inputs[i];
    data::RawRecord record;
    record.line = static_cast<int64_t>(i);
    if (input.is_words && !token_task)
      fail("inputs[{}]: a list of words is for token tasks; this run is a sequence task", i);
    if (token_task) {
      record.words = input.words;
      if (!input.is_words) {
        std::istringstream split(input.text);
        for (std::string word; split >> word;) record.words.push_back(word);
      }
      if (record.words.empty()) fail("inputs[{}]: no words", i);
      for (const auto& word : record.words)
        if (word.empty()) fail("inputs[{}]: an empty word", i);
    } else {
      if (input.text.empty()) fail("inputs[{}]: empty text", i);
      record.text = input.text;
      if (input.text_pair) {
        if (!pair_separator)
          fail("inputs[{}]: a text pair, but this run reads single texts (data.text_pair_field)",
               i);
        record.text += *pair_separator + *input.text_pair;
      }
    }
    prepared.raw.records.push_back(std::move(record));
  }

  // Inputs over the cap: refused, or cut in the copy that is tokenized.
  data::RawDataset tokenized = prepared.raw;
  std::vector<InputCut> cuts;
  for (size_t i = 0; limits.max_chars > 0 && i < tokenized.records.size(); ++i) {
    data::RawRecord& record = tokenized.records[i];
    size_t length = 0;
    if (token_task) {
      for (const auto& word : record.words) length += utf8_code_points(word);
      length += record.words.size() - 1;
    } else {
      length = utf8_code_points(record.text);
    }
    if (length <= limits.max_chars) continue;
    if (!limits.truncate)
      throw InputTooLong(fmt::format(
          "inputs[{}]: {} characters, more than --max-input-chars {}; send \"truncate\": true to "
          "cut it",
          i, length, limits.max_chars));
    if (options.max_length <= 0) continue;  // nothing is cut after tokenizing: keep it whole
    if (token_task) {
      const size_t kept = words_that_fit(record.words, limits.max_chars);
      if (kept == 0) continue;
      record.words.resize(kept);
      cuts.push_back({i, record.words.back().size() + 4});
    } else if (auto cut = cut_text(record.text, limits.max_chars)) {
      record.text = std::move(cut->first);
      cuts.push_back({i, cut->second + 4});
    }
  }
  prepared.dataset = data::build_dataset(tokenized, tokenizer, labels, options);

  // A cut whose ids before its last word do not reach past max_length might not give the whole
  // input's ids: those inputs are tokenized whole.
  const size_t trailing = (tokenizer.options().add_eos ? 1 : 0) + tokenizer.suffix_ids().size();
  data::RawDataset whole = prepared.raw;
  whole.records.clear();
  std::vector<size_t> redone;
  for (const InputCut& cut : cuts) {
    const size_t ids = static_cast<size_t>(prepared.dataset.examples[cut.index].full_length);
    if (ids >= static_cast<size_t>(options.max_length) + trailing + cut.tail_bytes) continue;
    whole.records.push_back(prepared.raw.records[cut.index]);
    redone.push_back(cut.index);
  }
  if (!redone.empty()) {
    data::Dataset again = data::build_dataset(whole, tokenizer, labels, options);
    for (size_t k = 0; k < redone.size(); ++k)
      prepared.dataset.examples[redone[k]] = std::move(again.examples[k]);
  }
  return prepared;
}

PreparedInputs Predictor::prepare(const std::vector<PredictInput>& inputs,
                                  const InputLimits& limits) const {
  if (!tokenizer_)
    fail(
        "model.path: '{}' has no tokenizer (the run read pre-tokenized data): text inputs need "
        "one; set model.tokenizer",
        run_.config.model.path);
  data::DatasetOptions options = options_;
  options.num_threads = 1;  // callers run in parallel already
  const auto& data = run_.config.data;
  return prepare_inputs(
      inputs, *tokenizer_, run_.labels, options,
      data.text_pair_field.empty() ? std::nullopt : std::optional(data.pair_separator), limits);
}

double Predictor::threshold() const {
  return model_->head_options().threshold;
}

size_t Predictor::default_max_input_chars() const {
  return static_cast<size_t>(std::max(options_.max_length, 0)) * 250;
}

std::vector<nlohmann::json> Predictor::predict(const PreparedInputs& inputs, int64_t batch_size,
                                               std::vector<std::vector<float>>* scores) {
  EvalOptions eval = eval_options(run_.config, std::max<int64_t>(1, batch_size));
  eval.labeled = false;
  EvalResult result =
      evaluate(*model_, inputs.dataset, run_.labels, eval, nullptr, placement_.device);
  std::sort(result.predictions.begin(), result.predictions.end(),
            [](const Prediction& a, const Prediction& b) { return a.example < b.example; });
  std::vector<nlohmann::json> objects = prediction_objects(
      result, inputs.raw, inputs.dataset, run_.labels, /*gold=*/false, run_.config.train.ner_mode);
  if (scores) {
    scores->clear();
    for (Prediction& p : result.predictions) scores->push_back(std::move(p.scores));
  }
  return objects;
}

std::vector<nlohmann::json> Predictor::predict(const std::vector<PredictInput>& inputs) {
  const auto& train = run_.config.train;
  return predict(prepare(inputs),
                 train.micro_batch_size > 0 ? train.micro_batch_size : train.batch_size);
}

FilePredictions Predictor::predict_file(const std::string& path, int64_t batch_size,
                                        const std::shared_ptr<parallel::Communicator>& world) {
  FilePredictions out;
  out.raw = data::read_raw_dataset(path, options_.task, options_.reader);
  if (!tokenizer_ && out.raw.format != data::DataFormat::kPretokenized)
    fail("{}: text data, but model.path '{}' has no tokenizer (the run read pre-tokenized data)",
         path, run_.config.model.path);
  out.dataset = data::build_dataset(out.raw, tokenizer_.get(), run_.labels, options_);
  for (const auto& record : out.raw.records) out.labeled |= record.has_label;
  EvalOptions eval = eval_options(run_.config, batch_size);
  eval.labeled = out.labeled;
  out.result = evaluate(*model_, out.dataset, run_.labels, eval, world, placement_.device);
  return out;
}

std::string Predictor::jsonl(const FilePredictions& predictions) const {
  return predictions_jsonl(predictions.result, predictions.raw, predictions.dataset, run_.labels,
                           run_.config.train.ner_mode);
}

}  // namespace ls
