// Predictor (see predictor.h): a run's files -> tokenizer + model, inputs -> prediction objects.
#include "core/infer/predictor.h"

#include <algorithm>
#include <sstream>

#include "core/adapter/peft_adapter.h"
#include "core/base/error.h"

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

PreparedInputs Predictor::prepare(const std::vector<PredictInput>& inputs) const {
  PreparedInputs prepared;
  prepared.raw.path = "inputs";
  prepared.raw.task = options_.task;
  prepared.raw.format = data::DataFormat::kJsonl;
  prepared.raw.records.reserve(inputs.size());
  const bool token_task = options_.task == TaskType::kToken;
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
        if (run_.config.data.text_pair_field.empty())
          fail("inputs[{}]: a text pair, but this run reads single texts (data.text_pair_field)",
               i);
        record.text += run_.config.data.pair_separator + *input.text_pair;
      }
    }
    prepared.raw.records.push_back(std::move(record));
  }
  data::DatasetOptions options = options_;
  options.num_threads = 1;  // callers run in parallel already
  if (!tokenizer_)
    fail(
        "model.path: '{}' has no tokenizer (the run read pre-tokenized data): text inputs need "
        "one; set model.tokenizer",
        run_.config.model.path);
  prepared.dataset = data::build_dataset(prepared.raw, *tokenizer_, run_.labels, options);
  return prepared;
}

std::vector<nlohmann::json> Predictor::predict(const PreparedInputs& inputs, int64_t batch_size) {
  EvalOptions eval = eval_options(run_.config, std::max<int64_t>(1, batch_size));
  eval.labeled = false;
  EvalResult result =
      evaluate(*model_, inputs.dataset, run_.labels, eval, nullptr, placement_.device);
  std::sort(result.predictions.begin(), result.predictions.end(),
            [](const Prediction& a, const Prediction& b) { return a.example < b.example; });
  return prediction_objects(result, inputs.raw, inputs.dataset, run_.labels, /*gold=*/false,
                            run_.config.train.ner_mode);
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
