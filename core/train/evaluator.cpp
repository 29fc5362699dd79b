// Evaluation (see evaluator.h).
#include "core/train/evaluator.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <nlohmann/json.hpp>

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

// Flattens this rank's predictions into one int64 tensor so ranks can exchange them:
// per prediction [example, label, n_probs, probs as float bits..., n_tags, tags...].
at::Tensor pack(const std::vector<Prediction>& predictions) {
  std::vector<int64_t> flat;
  for (const auto& p : predictions) {
    flat.push_back(p.example);
    flat.push_back(p.label);
    flat.push_back(static_cast<int64_t>(p.probabilities.size()));
    for (float f : p.probabilities) {
      int32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      flat.push_back(bits);
    }
    flat.push_back(static_cast<int64_t>(p.tags.size()));
    for (int t : p.tags) flat.push_back(t);
  }
  return at::tensor(flat, at::kLong);
}

void unpack(const int64_t* data, int64_t n, std::vector<Prediction>* out) {
  int64_t i = 0;
  while (i < n) {
    Prediction p;
    p.example = data[i++];
    p.label = static_cast<int>(data[i++]);
    int64_t n_probs = data[i++];
    for (int64_t k = 0; k < n_probs; ++k) {
      int32_t bits = static_cast<int32_t>(data[i++]);
      float f;
      std::memcpy(&f, &bits, sizeof f);
      p.probabilities.push_back(f);
    }
    int64_t n_tags = data[i++];
    for (int64_t k = 0; k < n_tags; ++k) p.tags.push_back(static_cast<int>(data[i++]));
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

}  // namespace

std::string predictions_jsonl(const EvalResult& result, const data::RawDataset& raw,
                              const data::Dataset& dataset, const data::LabelMap& labels) {
  std::string out;
  for (const auto& p : result.predictions) {
    const auto& example = dataset.examples[p.example];
    nlohmann::json line = {{"line", example.line}};
    if (dataset.problem == data::ProblemType::kMultiLabel) {
      nlohmann::json predicted = nlohmann::json::array(), probs = nlohmann::json::object();
      for (size_t c = 0; c < p.probabilities.size(); ++c) {
        const auto& name = labels.name(static_cast<int>(c));
        probs[name] = p.probabilities[c];
        if (p.probabilities[c] >= result.threshold) predicted.push_back(name);
      }
      line["labels"] = predicted;
      line["probabilities"] = probs;
      if (example.labeled) {
        nlohmann::json gold = nlohmann::json::array();
        for (int32_t id : example.label_ids) gold.push_back(labels.name(id));
        line["gold"] = gold;
      }
    } else if (dataset.problem == data::ProblemType::kRegression) {
      line["prediction"] = p.probabilities.empty() ? 0.0f : p.probabilities[0];
      if (example.labeled) line["gold"] = example.target;
    } else if (dataset.task == data::TaskType::kSequence) {
      line["label"] = labels.name(p.label);
      nlohmann::json probs = nlohmann::json::object();
      for (size_t c = 0; c < p.probabilities.size(); ++c)
        probs[labels.name(static_cast<int>(c))] = p.probabilities[c];
      line["probabilities"] = probs;
      if (example.label != kIgnoreIndex) line["gold"] = labels.name(example.label);
    } else {
      const auto& words = raw.records[p.example].words;
      const size_t kept = std::min(words.size(), p.tags.size());
      nlohmann::json tags = nlohmann::json::array(), gold = nlohmann::json::array();
      for (int t : p.tags) tags.push_back(labels.name(t));
      line["words"] = std::vector<std::string>(words.begin(), words.begin() + kept);
      line["tags"] = tags;
      auto gold_ids = gold_word_tags(example);
      bool labeled = false;
      for (int g : gold_ids)
        labeled |= g != kIgnoreIndex, gold.push_back(g == kIgnoreIndex ? "" : labels.name(g));
      if (labeled) line["gold"] = gold;
      if (kept < words.size()) line["truncated_words"] = words.size() - kept;
    }
    out += line.dump() + "\n";
  }
  return out;
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
  sampler_options.shuffle = false;
  sampler_options.equal_shares = false;
  sampler_options.dp_rank = dp ? dp->rank() : 0;
  sampler_options.dp_size = dp ? dp->size() : 1;
  data::Sampler sampler(dataset.lengths(), sampler_options);

  const bool token_task = dataset.task == data::TaskType::kToken;
  const data::ProblemType problem = dataset.problem;
  const HeadOptions& head = model.head_options();
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
    if (problem != data::ProblemType::kSingleLabel) {
      at::Tensor values =
          problem == data::ProblemType::kMultiLabel
              ? logits.sigmoid()
              : logits.reshape({-1, 1}) * head.loss.target_std + head.loss.target_mean;
      values = values.to(at::kFloat).contiguous();
      for (int64_t row = 0; row < batch.size(); ++row) {
        Prediction p;
        p.example = batch.example_indices[row];
        const float* v = values[row].data_ptr<float>();
        p.probabilities.assign(v, v + values.size(1));
        mine.push_back(std::move(p));
      }
    } else if (!token_task) {
      auto probs = logits.softmax(-1).contiguous();
      auto argmax = logits.argmax(-1);
      for (int64_t row = 0; row < batch.size(); ++row) {
        Prediction p;
        p.example = batch.example_indices[row];
        p.label = static_cast<int>(argmax[row].item<int64_t>());
        const float* pr = probs[row].data_ptr<float>();
        p.probabilities.assign(pr, pr + probs.size(1));
        mine.push_back(std::move(p));
      }
    } else {
      auto argmax = logits.argmax(-1).contiguous();
      const int64_t width = argmax.size(1);
      const bool left_padded = options.collate.padding_side == data::PaddingSide::kLeft;
      for (int64_t row = 0; row < batch.size(); ++row) {
        const auto& example = dataset.examples[batch.example_indices[row]];
        const int64_t offset =
            left_padded ? width - static_cast<int64_t>(example.input_ids.size()) : 0;
        Prediction p;
        p.example = batch.example_indices[row];
        const int64_t* a = argmax[row].data_ptr<int64_t>();
        for (int64_t t : first_subword_positions(example))
          p.tags.push_back(static_cast<int>(a[offset + t]));
        mine.push_back(std::move(p));
      }
    }
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
  if (problem == data::ProblemType::kMultiLabel) {
    std::vector<std::vector<int>> predicted, gold;
    for (const auto& p : result.predictions) {
      const auto& example = dataset.examples[p.example];
      if (!example.labeled) continue;
      std::vector<int> g(static_cast<size_t>(labels.size()), 0), q(g.size(), 0);
      for (int32_t id : example.label_ids) g[static_cast<size_t>(id)] = 1;
      for (size_t c = 0; c < q.size() && c < p.probabilities.size(); ++c)
        q[c] = p.probabilities[c] >= head.threshold;
      gold.push_back(std::move(g));
      predicted.push_back(std::move(q));
    }
    const MultiLabelScores scores = multilabel_scores(predicted, gold);
    result.metrics["micro_f1"] = scores.micro_f1;
    result.metrics["macro_f1"] = scores.macro_f1;
    result.metrics["subset_accuracy"] = scores.subset_accuracy;
    for (size_t c = 0; c < scores.per_label_f1.size(); ++c)
      result.metrics["f1/" + labels.name(static_cast<int>(c))] = scores.per_label_f1[c];
  } else if (problem == data::ProblemType::kRegression) {
    std::vector<double> predicted, gold;
    for (const auto& p : result.predictions) {
      const auto& example = dataset.examples[p.example];
      if (!example.labeled) continue;
      predicted.push_back(p.probabilities.at(0));
      gold.push_back(example.target);
    }
    const RegressionScores scores = regression_scores(predicted, gold);
    result.metrics["mse"] = scores.mse;
    result.metrics["mae"] = scores.mae;
    result.metrics["pearson"] = scores.pearson;
    result.metrics["spearman"] = scores.spearman;
  } else if (!token_task) {
    std::vector<int> predicted, gold;
    for (const auto& p : result.predictions) {
      int g = dataset.examples[p.example].label;
      if (g == kIgnoreIndex) continue;
      predicted.push_back(p.label);
      gold.push_back(g);
    }
    result.metrics["accuracy"] = accuracy(predicted, gold);
    result.metrics["macro_f1"] = macro_f1(predicted, gold);
  } else {
    std::vector<std::vector<std::string>> predicted, gold;
    for (const auto& p : result.predictions) {
      auto g = gold_word_tags(dataset.examples[p.example]);
      std::vector<std::string> gs, ps;
      for (size_t w = 0; w < g.size(); ++w) {
        if (g[w] == kIgnoreIndex) continue;  // an unlabeled word
        gs.push_back(labels.name(g[w]));
        ps.push_back(labels.name(p.tags[w]));
      }
      gold.push_back(std::move(gs));
      predicted.push_back(std::move(ps));
    }
    auto scores = entity_scores(predicted, gold, options.ner_mode);
    result.metrics["entity_precision"] = scores.precision;
    result.metrics["entity_recall"] = scores.recall;
    result.metrics["entity_f1"] = scores.f1;
    int64_t correct = 0, total = 0;
    for (size_t s = 0; s < gold.size(); ++s)
      for (size_t w = 0; w < gold[s].size(); ++w) correct += gold[s][w] == predicted[s][w], ++total;
    result.metrics["tag_accuracy"] = total ? double(correct) / total : 0.0;
  }
  return result;
}

}  // namespace ls
