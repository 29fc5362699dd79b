// Evaluation (see evaluator.h): one ProblemKind per problem type (single-label, multi-label,
// regression, token) turns logits into predictions, scores them and writes them as JSON lines.
#include "core/eval/evaluator.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/shape_string.h"
#include "core/eval/metric_table.h"
#include "parallel/communicator.h"

namespace ls {
namespace {

// Per word, the first position whose word id is new: where NER predictions are read.
std::vector<int64_t> first_subword_positions(const data::Example& example) {
  std::vector<int64_t> positions;
  int32_t last_word = -1;
  for (size_t t = 0; t < example.word_ids.size(); ++t) {
    int32_t w = example.word_ids[t];
    if (w >= 0 && w != last_word) positions.push_back(static_cast<int64_t>(t));
    if (w >= 0) last_word = w;
  }
  return positions;
}

// Flattens this rank's predictions into one int64 tensor so ranks can exchange them: per
// prediction [example, label, n_probs, probs as float bits..., n_tags, tags..., n_scores,
// scores as float bits...].
void pack_floats(const std::vector<float>& values, std::vector<int64_t>& flat) {
  flat.push_back(static_cast<int64_t>(values.size()));
  for (float f : values) {
    int32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    flat.push_back(bits);
  }
}

at::Tensor pack(const std::vector<Prediction>& predictions) {
  std::vector<int64_t> flat;
  for (const auto& p : predictions) {
    flat.push_back(p.example);
    flat.push_back(p.label);
    pack_floats(p.probabilities, flat);
    flat.push_back(static_cast<int64_t>(p.tags.size()));
    for (int t : p.tags) flat.push_back(t);
    pack_floats(p.scores, flat);
  }
  return at::tensor(flat, at::kLong);
}

// Reads what pack_floats wrote at data[i], advancing i.
std::vector<float> unpack_floats(const int64_t* data, int64_t& i) {
  const int64_t n = data[i++];
  std::vector<float> values;
  values.reserve(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    int32_t bits = static_cast<int32_t>(data[i++]);
    float f;
    std::memcpy(&f, &bits, sizeof f);
    values.push_back(f);
  }
  return values;
}

void unpack(const int64_t* data, int64_t n, std::vector<Prediction>* out) {
  int64_t i = 0;
  while (i < n) {
    Prediction p;
    p.example = data[i++];
    p.label = static_cast<int>(data[i++]);
    p.probabilities = unpack_floats(data, i);
    int64_t n_tags = data[i++];
    for (int64_t k = 0; k < n_tags; ++k) p.tags.push_back(static_cast<int>(data[i++]));
    p.scores = unpack_floats(data, i);
    out->push_back(std::move(p));
  }
}

// Every rank's predictions on every rank, sorted by example.
std::vector<Prediction> gather(const std::vector<Prediction>& mine, parallel::Communicator* dp) {
  if (!dp || dp->size() == 1) return mine;
  at::Tensor local = pack(mine).to(dp->device());
  int64_t longest = static_cast<int64_t>(parallel::all_reduce_value(
      *dp, static_cast<double>(local.numel()), parallel::ReduceOp::kMax));
  at::Tensor padded = at::zeros({longest + 1}, local.options());
  padded[0] = local.numel();
  padded.narrow(0, 1, local.numel()).copy_(local);
  at::Tensor all = parallel::all_gather_along(*dp, padded, 0).cpu().contiguous();
  std::vector<Prediction> out;
  for (int r = 0; r < dp->size(); ++r) {
    const int64_t* row = all.data_ptr<int64_t>() + r * (longest + 1);
    unpack(row + 1, row[0], &out);
  }
  std::sort(out.begin(), out.end(),
            [](const Prediction& a, const Prediction& b) { return a.example < b.example; });
  return out;
}

// --- what differs between problem kinds ----------------------------------------------------------

// Settings the kinds read: from the head (threshold, target normalisation) and the eval options.
struct KindSettings {
  double threshold = 0.5;
  double target_mean = 0.0, target_std = 1.0;
  NerMode ner_mode = NerMode::kDefault;
  const data::RawDataset* raw = nullptr;  // token tasks' words, for the JSON lines
};

// One problem kind: how a batch's logits become predictions, how predictions score against the
// gold labels, and how one prediction is written as a JSON line.
class ProblemKind {
 public:
  ProblemKind(const data::Dataset& dataset, const data::LabelMap& labels, KindSettings settings)
      : dataset_(dataset), labels_(labels), settings_(settings) {}
  virtual ~ProblemKind() = default;
  virtual void collect(const at::Tensor& logits, const data::Batch& batch,
                       std::vector<Prediction>& out) const = 0;
  virtual void score(const std::vector<Prediction>& predictions,
                     std::map<std::string, double>& metrics) const = 0;
  // Writes what the model says about p into `line`; the gold label(s) too when `gold` is set and
  // the example has them.
  virtual void describe(const Prediction& p, nlohmann::json& line, bool gold) const = 0;

 protected:
  const data::Example& example(const Prediction& p) const { return dataset_.examples[p.example]; }
  const data::Dataset& dataset_;
  const data::LabelMap& labels_;
  KindSettings settings_;
};

// Single-label sequence classification: argmax class, softmax probabilities.
class SingleLabel : public ProblemKind {
 public:
  using ProblemKind::ProblemKind;
  void collect(const at::Tensor& logits, const data::Batch& batch,
               std::vector<Prediction>& out) const override {
    const at::Tensor raw = logits.to(at::kFloat).contiguous();
    auto probs = raw.softmax(-1).contiguous();
    auto argmax = raw.argmax(-1);
    for (int64_t row = 0; row < batch.size(); ++row) {
      Prediction p;
      p.example = batch.example_indices[row];
      p.label = static_cast<int>(argmax[row].item<int64_t>());
      const float* pr = probs[row].data_ptr<float>();
      p.probabilities.assign(pr, pr + probs.size(1));
      const float* r = raw[row].data_ptr<float>();
      p.scores.assign(r, r + raw.size(1));
      out.push_back(std::move(p));
    }
  }
  void score(const std::vector<Prediction>& predictions,
             std::map<std::string, double>& metrics) const override {
    std::vector<int> predicted, gold;
    for (const auto& p : predictions) {
      int g = example(p).label;
      if (g == kIgnoreIndex) continue;
      predicted.push_back(p.label);
      gold.push_back(g);
    }
    metrics["accuracy"] = accuracy(predicted, gold);
    metrics["macro_f1"] = macro_f1(predicted, gold);
  }
  void describe(const Prediction& p, nlohmann::json& line, bool gold) const override {
    line["label"] = labels_.name(p.label);
    nlohmann::json probs = nlohmann::json::object();
    for (size_t c = 0; c < p.probabilities.size(); ++c)
      probs[labels_.name(static_cast<int>(c))] = p.probabilities[c];
    line["probabilities"] = probs;
    if (gold && example(p).label != kIgnoreIndex) line["gold"] = labels_.name(example(p).label);
  }
};

// Per-row values: sigmoid of each label (multi-label), or the one regression output mapped back
// from normalised targets; `raw` ([B, C]) is what they were computed from (Prediction::scores).
void collect_values(const at::Tensor& values_in, const at::Tensor& raw_in, const data::Batch& batch,
                    std::vector<Prediction>& out) {
  at::Tensor values = values_in.to(at::kFloat).contiguous();
  at::Tensor raw = raw_in.to(at::kFloat).contiguous();
  for (int64_t row = 0; row < batch.size(); ++row) {
    Prediction p;
    p.example = batch.example_indices[row];
    const float* v = values[row].data_ptr<float>();
    p.probabilities.assign(v, v + values.size(1));
    const float* r = raw[row].data_ptr<float>();
    p.scores.assign(r, r + raw.size(1));
    out.push_back(std::move(p));
  }
}

// Multi-label: a label is predicted when its sigmoid probability reaches the threshold.
class MultiLabel : public ProblemKind {
 public:
  using ProblemKind::ProblemKind;
  void collect(const at::Tensor& logits, const data::Batch& batch,
               std::vector<Prediction>& out) const override {
    collect_values(logits.sigmoid(), logits, batch, out);
  }
  void score(const std::vector<Prediction>& predictions,
             std::map<std::string, double>& metrics) const override {
    std::vector<std::vector<int>> predicted, gold;
    for (const auto& p : predictions) {
      if (!example(p).labeled) continue;
      std::vector<int> g(static_cast<size_t>(labels_.size()), 0), q(g.size(), 0);
      for (int32_t id : example(p).label_ids) g[static_cast<size_t>(id)] = 1;
      for (size_t c = 0; c < q.size() && c < p.probabilities.size(); ++c)
        q[c] = p.probabilities[c] >= settings_.threshold;
      gold.push_back(std::move(g));
      predicted.push_back(std::move(q));
    }
    const MultiLabelScores scores = multilabel_scores(predicted, gold);
    metrics["micro_f1"] = scores.micro_f1;
    metrics["macro_f1"] = scores.macro_f1;
    metrics["subset_accuracy"] = scores.subset_accuracy;
    for (size_t c = 0; c < scores.per_label_f1.size(); ++c)
      metrics["f1/" + labels_.name(static_cast<int>(c))] = scores.per_label_f1[c];
  }
  void describe(const Prediction& p, nlohmann::json& line, bool gold) const override {
    nlohmann::json predicted = nlohmann::json::array(), probs = nlohmann::json::object();
    for (size_t c = 0; c < p.probabilities.size(); ++c) {
      const auto& name = labels_.name(static_cast<int>(c));
      probs[name] = p.probabilities[c];
      if (p.probabilities[c] >= settings_.threshold) predicted.push_back(name);
    }
    line["labels"] = predicted;
    line["probabilities"] = probs;
    if (gold && example(p).labeled) {
      nlohmann::json names = nlohmann::json::array();
      for (int32_t id : example(p).label_ids) names.push_back(labels_.name(id));
      line["gold"] = names;
    }
  }
};

// Regression: one number per example, in the targets' original scale.
class Regression : public ProblemKind {
 public:
  using ProblemKind::ProblemKind;
  void collect(const at::Tensor& logits, const data::Batch& batch,
               std::vector<Prediction>& out) const override {
    const at::Tensor raw = logits.reshape({-1, 1});
    collect_values(raw * settings_.target_std + settings_.target_mean, raw, batch, out);
  }
  void score(const std::vector<Prediction>& predictions,
             std::map<std::string, double>& metrics) const override {
    std::vector<double> predicted, gold;
    for (const auto& p : predictions) {
      if (!example(p).labeled) continue;
      predicted.push_back(p.probabilities.at(0));
      gold.push_back(example(p).target);
    }
    const RegressionScores scores = regression_scores(predicted, gold);
    metrics["mse"] = scores.mse;
    metrics["mae"] = scores.mae;
    metrics["pearson"] = scores.pearson;
    metrics["spearman"] = scores.spearman;
  }
  void describe(const Prediction& p, nlohmann::json& line, bool gold) const override {
    line["prediction"] = p.probabilities.empty() ? 0.0f : p.probabilities[0];
    if (gold && example(p).labeled) line["gold"] = example(p).target;
  }
};

// Token tagging (NER): the argmax tag at each word's first sub-word; seqeval entity scores.
class Token : public ProblemKind {
 public:
  using ProblemKind::ProblemKind;
  void collect(const at::Tensor& logits, const data::Batch& batch,
               std::vector<Prediction>& out) const override {
    auto argmax = logits.argmax(-1).contiguous();
    // The argmax tag's probability is the largest one.
    const at::Tensor tag_probs = logits.to(at::kFloat).softmax(-1).amax(-1).contiguous();
    const int64_t width = argmax.size(1);
    const at::Tensor mask = batch.attention_mask.to(at::kCPU, at::kLong).contiguous();
    LS_ASSERT(mask.dim() == 2 && mask.size(0) == batch.size() && mask.size(1) == width,
              "token logits {} for a batch whose attention mask is {}",
              shape_string(logits.sizes()), shape_string(mask.sizes()));
    for (int64_t row = 0; row < batch.size(); ++row) {
      Prediction p;
      p.example = batch.example_indices[row];
      // The example's first token is the row's first real one: after the padding when it is on
      // the left. Read off the batch itself, so no setting can disagree with how it was padded.
      const int64_t* m = mask[row].data_ptr<int64_t>();
      const int64_t offset = std::find_if(m, m + width, [](int64_t v) { return v != 0; }) - m;
      const int64_t* a = argmax[row].data_ptr<int64_t>();
      const float* probs = tag_probs[row].data_ptr<float>();
      const data::Example& words = example(p);
      for (int64_t t : first_subword_positions(words)) {
        p.tags.push_back(static_cast<int>(a[offset + t]));
        p.scores.push_back(probs[offset + t]);
      }
      out.push_back(std::move(p));
    }
  }
  // Every labelled word of the source sentence is scored, as seqeval on the full data would: a
  // word cut by data.max_length has no prediction and counts as predicted O.
  void score(const std::vector<Prediction>& predictions,
             std::map<std::string, double>& metrics) const override {
    std::vector<std::vector<std::string>> predicted, gold;
    int64_t cut = 0;
    for (const auto& p : predictions) {
      const data::Example& e = example(p);
      const std::vector<int> tags = tags_by_word(e, p);
      std::vector<std::string> gs, ps;
      for (size_t w = 0; w < e.word_labels.size(); ++w) {
        if (e.word_labels[w] == kIgnoreIndex) continue;  // an unlabeled word
        gs.push_back(labels_.name(e.word_labels[w]));
        ps.push_back(tags[w] == kIgnoreIndex ? "O" : labels_.name(tags[w]));
        cut += tags[w] == kIgnoreIndex;
      }
      gold.push_back(std::move(gs));
      predicted.push_back(std::move(ps));
    }
    auto scores = entity_scores(predicted, gold, settings_.ner_mode);
    metrics["entity_precision"] = scores.precision;
    metrics["entity_recall"] = scores.recall;
    metrics["entity_f1"] = scores.f1;
    int64_t correct = 0, total = 0;
    for (size_t s = 0; s < gold.size(); ++s)
      for (size_t w = 0; w < gold[s].size(); ++w) correct += gold[s][w] == predicted[s][w], ++total;
    metrics["tag_accuracy"] = total ? double(correct) / total : 0.0;
    metrics["truncated_words"] = static_cast<double>(cut);
  }
  void describe(const Prediction& p, nlohmann::json& line, bool gold) const override {
    const auto& words = settings_.raw->records[p.example].words;
    const size_t kept = std::min(words.size(), p.tags.size());
    std::vector<std::string> tags;
    for (int t : p.tags) tags.push_back(labels_.name(t));
    line["words"] = std::vector<std::string>(words.begin(), words.begin() + kept);
    line["tags"] = tags;
    // Entity spans over the kept words: [start, end) word indices, the words, the type.
    nlohmann::json entities = nlohmann::json::array();
    for (const Entity& e : extract_entities(tags, settings_.ner_mode)) {
      std::string text;
      for (long w = e.begin; w <= e.end && w < static_cast<long>(kept); ++w)
        text += (w > e.begin ? " " : "") + words[static_cast<size_t>(w)];
      entities.push_back(
          {{"type", e.type}, {"start", e.begin}, {"end", e.end + 1}, {"text", text}});
    }
    line["entities"] = entities;
    if (gold) {
      nlohmann::json names = nlohmann::json::array();
      bool labeled = false;
      for (int g : gold_word_tags(example(p)))
        labeled |= g != kIgnoreIndex, names.push_back(g == kIgnoreIndex ? "" : labels_.name(g));
      if (labeled) line["gold"] = names;
    }
    if (kept < words.size()) line["truncated_words"] = words.size() - kept;
  }

 private:
  // The predicted tag of every word of the source sentence (kIgnoreIndex for a word with no
  // position left after truncation), aligned with Example::word_labels.
  static std::vector<int> tags_by_word(const data::Example& e, const Prediction& p) {
    std::vector<int> tags(e.word_labels.size(), kIgnoreIndex);
    const std::vector<int64_t> positions = first_subword_positions(e);
    for (size_t i = 0; i < positions.size() && i < p.tags.size(); ++i)
      tags.at(static_cast<size_t>(e.word_ids[positions[i]])) = p.tags[i];
    return tags;
  }
};

// The one place that decides the problem kind (token tasks are single-label).
std::unique_ptr<ProblemKind> problem_kind(const data::Dataset& dataset,
                                          const data::LabelMap& labels,
                                          const KindSettings& settings) {
  if (dataset.task == TaskType::kToken) return std::make_unique<Token>(dataset, labels, settings);
  switch (dataset.problem) {
    case ProblemType::kMultiLabel:
      return std::make_unique<MultiLabel>(dataset, labels, settings);
    case ProblemType::kRegression:
      return std::make_unique<Regression>(dataset, labels, settings);
    case ProblemType::kSingleLabel:
      break;
  }
  return std::make_unique<SingleLabel>(dataset, labels, settings);
}

}  // namespace

std::vector<nlohmann::json> prediction_objects(const EvalResult& result,
                                               const data::RawDataset& raw,
                                               const data::Dataset& dataset,
                                               const data::LabelMap& labels, bool gold,
                                               NerMode ner_mode) {
  const auto kind =
      problem_kind(dataset, labels,
                   KindSettings{.threshold = result.threshold, .ner_mode = ner_mode, .raw = &raw});
  std::vector<nlohmann::json> objects;
  objects.reserve(result.predictions.size());
  for (const auto& p : result.predictions) {
    nlohmann::json object = nlohmann::json::object();
    kind->describe(p, object, gold);
    if (dataset.examples[p.example].truncated) object["truncated"] = true;
    objects.push_back(std::move(object));
  }
  return objects;
}

std::string predictions_jsonl(const EvalResult& result, const data::RawDataset& raw,
                              const data::Dataset& dataset, const data::LabelMap& labels,
                              NerMode ner_mode) {
  std::string out;
  const auto objects = prediction_objects(result, raw, dataset, labels, /*gold=*/true, ner_mode);
  for (size_t i = 0; i < objects.size(); ++i) {
    nlohmann::json line = objects[i];
    const int64_t example = result.predictions[i].example;
    line["line"] = dataset.examples[example].line;
    // A sequence example's text, so the file reads on its own (token objects carry their words).
    if (dataset.task == TaskType::kSequence && !raw.records[example].text.empty())
      line["text"] = raw.records[example].text;
    out += line.dump() + "\n";
  }
  return out;
}

namespace {

// The metric table's promise (metric_table.h): a scored split reports every metric that can select
// a checkpoint for its kind of task (the loss only where there is one).
void check_selectable_reported(const data::Dataset& dataset,
                               const std::map<std::string, double>& metrics, bool with_loss) {
  for (std::string_view name : task_metrics(dataset.task, dataset.problem).selectable)
    LS_ASSERT((!with_loss && name == "loss") || metrics.count(std::string(name)) > 0,
              "the evaluator did not report '{}', a selectable metric of this task", name);
}

}  // namespace

EvalResult evaluate_logits(const at::Tensor& logits, const data::Batch& batch,
                           const data::Dataset& dataset, const data::LabelMap& labels,
                           NerMode ner_mode) {
  const auto kind = problem_kind(dataset, labels, KindSettings{.ner_mode = ner_mode});
  EvalResult result;
  kind->collect(logits, batch, result.predictions);
  result.examples = static_cast<int64_t>(result.predictions.size());
  kind->score(result.predictions, result.metrics);
  check_selectable_reported(dataset, result.metrics, /*with_loss=*/false);
  return result;
}

std::vector<int> gold_word_tags(const data::Example& example) {
  std::vector<int> tags;
  for (int64_t t : first_subword_positions(example)) tags.push_back(example.labels[t]);
  return tags;
}

EvalResult evaluate(LsLlama& model, const data::Dataset& dataset, const data::LabelMap& labels,
                    const EvalOptions& options, const std::shared_ptr<parallel::Communicator>& dp,
                    c10::Device device) {
  at::NoGradGuard no_grad;
  model.eval();
  data::SamplerOptions sampler_options;
  sampler_options.batch_size = options.batch_size;
  sampler_options.shuffle = false;  // every example once; a rank's last share may be empty
  sampler_options.dp_rank = dp ? dp->rank() : 0;
  sampler_options.dp_size = dp ? dp->size() : 1;
  data::Sampler sampler(dataset.lengths(), sampler_options);

  const HeadOptions& head = model.head_options();
  const auto kind = problem_kind(dataset, labels,
                                 KindSettings{.threshold = head.threshold,
                                              .target_mean = head.loss.target_mean,
                                              .target_std = head.loss.target_std,
                                              .ner_mode = options.ner_mode});
  const LossFunction& loss = model.head().loss_function();
  double loss_sum = 0, label_count = 0;
  std::vector<Prediction> mine;
  for (const auto& indices : sampler.epoch_batches(0)) {
    data::Batch batch = data::collate(dataset, indices, options.collate);
    if (batch.size() == 0) continue;
    auto logits =
        model.forward(batch.input_ids.to(device), batch.attention_mask.to(device)).to(at::kCPU);
    if (options.labeled) {
      // The training loss's definition (loss.h): summed here, divided by the global normalizer.
      const double count = loss.normalizer(batch.labels).item<double>();
      if (count > 0) {
        loss_sum += loss.sum(logits, batch.labels).item<double>();
        label_count += count;
      }
    }
    kind->collect(logits, batch, mine);
  }

  EvalResult result;
  result.threshold = head.threshold;
  result.predictions = gather(mine, dp.get());
  result.examples = static_cast<int64_t>(result.predictions.size());
  if (!options.labeled) return result;

  double global_loss = loss_sum, global_count = label_count;
  if (dp && dp->size() > 1) {
    global_loss = parallel::all_reduce_value(*dp, loss_sum);
    global_count = parallel::all_reduce_value(*dp, global_count);
  }
  result.metrics["loss"] = global_count > 0 ? global_loss / global_count : 0.0;
  kind->score(result.predictions, result.metrics);
  check_selectable_reported(dataset, result.metrics, /*with_loss=*/true);
  return result;
}

}  // namespace ls
