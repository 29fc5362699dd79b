// The records a run writes from its config (config.h: kPrediction, kIdentity, kModelInfo), each
// chosen by the schema's rows: every record round-trips through Config::parse for every key it
// holds, the flat record gives each key its own name, and the records hold what their readers
// need (an adapter's run description, the resume identity, /v1/model and the export).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/run/config.h"
#include "tests/support/test_util.h"

// A named namespace, not an anonymous one: the unity build compiles the suite as one file.
namespace config_record_test {

using Values = std::vector<std::pair<std::string, std::string>>;

// Configs that between them set every key to a value other than its default (some keys exclude
// each other: label smoothing is single-label, a threshold multi-label, normalisation regression).
const std::vector<std::string> kConfigs = {
    R"(
model: {path: /models/llama, tokenizer: /models/llama/tokenizer.json, dtype: bf16, device: cpu,
        attention: bidirectional, bidirectional_from_layer: 2, attend_to_padding: true,
        activation_checkpointing: selective}
task: {labels: [neg, pos], pooling: mean, head_dropout: 0.2, class_weights: [1.0, 2.5],
       label_smoothing: 0.1}
lora: {r: 4, alpha: 16, dropout: 0.05, targets: [q_proj, k_proj], rslora: true,
       init_from: /adapters/start}
data: {train: /data/train.csv, validation: /data/val.csv, test: /data/test.csv, format: csv,
       text_field: sentence, text_pair_field: hypothesis, pair_separator: " | ", csv_quoting: false,
       label_field: y, label_separator: ";", tokens_field: words, tags_field: tags,
       conll_tag_column: 2, max_length: 32, padding_side: left, pad_id: 7, add_eos: true,
       label_all_subwords: true, group_by_length: true}
train: {epochs: 3, max_steps: 50, batch_size: 16, micro_batch_size: 4, lr: 2.0e-4,
        weight_decay: 0.1, decay_biases_and_norms: true, adam_beta1: 0.8, adam_beta2: 0.99,
        adam_eps: 1.0e-6, fused_optimizer: false, schedule: cosine, warmup_ratio: 0.1,
        warmup_steps: 5, max_grad_norm: 0.5, seed: 7, shuffle: false, eval_every: "20",
        metric: accuracy, ner_mode: strict, early_stopping_patience: 2, log_every: 5}
parallel: {tp: 2}
output: {dir: /runs/every-key, save: best, tensorboard: false, plot: false, overwrite: true,
         state_every: 10}
)",
    "model: {path: /models/llama}\ndata: {train: t.jsonl}\ntask: {type: token}\n",
    "model: {path: /models/llama}\ndata: {train: t.jsonl}\n"
    "task: {problem_type: multi_label, threshold: 0.4}\n",
    "model: {path: /models/llama}\ndata: {train: t.jsonl}\n"
    "task: {problem_type: regression, normalize_targets: true}\n",
};

const std::vector<ls::Records> kRecords = {ls::kPrediction, ls::kIdentity, ls::kModelInfo};

ls::Config parse(const std::string& yaml) {
  return ls::Config::parse(yaml, "cfg.yaml");
}

TEST(ConfigRecord, TheTestConfigsSetEveryKeyToAValueOtherThanItsDefault) {
  const Values defaults = ls::config_values(parse(kConfigs[1]), {});
  std::set<std::string> changed;
  for (const auto& yaml : kConfigs) {
    const Values values = ls::config_values(parse(yaml), {});
    ASSERT_EQ(values.size(), defaults.size());
    for (size_t i = 0; i < values.size(); ++i)
      if (values[i].second != defaults[i].second) changed.insert(values[i].first);
  }
  changed.insert({"model.path", "data.train", "task.type"});  // required, or set in kConfigs[1]
  for (const auto& path : ls::config_key_paths())
    EXPECT_TRUE(changed.count(path)) << path << ": give it a non-default value in kConfigs";
}

// A record read back as a config (model.path and data.train added where the record lacks them:
// they are required) has the same value for every key the record holds.
TEST(ConfigRecord, EveryRecordRoundTripsThroughConfigParseForEveryKeyItHolds) {
  for (const auto& yaml : kConfigs) {
    const ls::Config config = parse(yaml);
    for (ls::Records which : kRecords) {
      nlohmann::json record = ls::config_record(config, which);
      ASSERT_FALSE(record.empty());
      if (!record["model"].contains("path")) record["model"]["path"] = "/elsewhere";
      if (!record["data"].contains("train")) record["data"]["train"] = "elsewhere.jsonl";
      const ls::Config back = ls::Config::parse(record.dump(), "record.json");
      EXPECT_EQ(ls::config_values(back, which), ls::config_values(config, which))
          << "record " << which.bits << " of:" << yaml;
    }
  }
}

TEST(ConfigRecord, ARecordHoldsExactlyTheKeysWhoseRowsNameIt) {
  const ls::Config config = parse(kConfigs[0]);
  for (ls::Records which : kRecords) {
    std::vector<std::string> held;
    const nlohmann::json record = ls::config_record(config, which);
    for (const auto& [section, keys] : record.items())
      for (const auto& [key, value] : keys.items()) held.push_back(section + "." + key);
    std::vector<std::string> expected = ls::config_key_paths(which);
    std::sort(held.begin(), held.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(held, expected);
  }
}

// What open_trained_run needs from an adapter's description to predict without the run.
TEST(ConfigRecord, ThePredictionRecordHoldsWhatPredictionReads) {
  const auto keys = ls::config_key_paths(ls::kPrediction);
  for (const char* needed : {"model.attention",
                             "model.bidirectional_from_layer",
                             "model.attend_to_padding",
                             "model.tokenizer",
                             "task.type",
                             "task.problem_type",
                             "task.pooling",
                             "task.threshold",
                             "task.normalize_targets",
                             "data.format",
                             "data.text_field",
                             "data.text_pair_field",
                             "data.pair_separator",
                             "data.label_field",
                             "data.tokens_field",
                             "data.max_length",
                             "data.padding_side",
                             "data.pad_id",
                             "data.add_eos",
                             "train.ner_mode"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), needed), keys.end()) << needed;
}

// A resume that changes the computation is refused; these may change (docs/CONFIG.md).
TEST(ConfigRecord, TheIdentityHoldsWhatChangesTheComputationAndNotWhatMayChangeOnResume) {
  const auto keys = ls::config_key_paths(ls::kIdentity);
  auto held = [&](const char* key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  for (const char* fixed :
       {"train.batch_size", "train.seed", "train.shuffle", "train.lr", "data.max_length",
        "data.group_by_length", "model.attention", "model.dtype", "lora.alpha", "lora.dropout",
        "lora.rslora", "task.pooling", "task.head_dropout", "train.metric", "parallel.tp"})
    EXPECT_TRUE(held(fixed)) << fixed;
  for (const char* free : {"train.epochs", "train.max_steps", "train.log_every", "train.eval_every",
                           "train.early_stopping_patience", "output.dir", "output.state_every",
                           "output.tensorboard", "output.plot"})
    EXPECT_FALSE(held(free)) << free;
}

TEST(ConfigRecord, TheFlatModelInfoGivesEveryKeyItsOwnName) {
  const ls::Config config = parse(kConfigs[0]);
  const nlohmann::json flat = ls::config_record_flat(config, ls::kModelInfo);
  EXPECT_EQ(flat.size(), ls::config_key_paths(ls::kModelInfo).size());
  EXPECT_EQ(flat.at("task"), "sequence");
  EXPECT_EQ(flat.at("base_model"), "/models/llama");
  EXPECT_EQ(flat.at("attention"), "bidirectional");
  EXPECT_EQ(flat.at("bidirectional_from_layer"), 2);
  EXPECT_EQ(flat.at("attend_to_padding"), true);
  EXPECT_EQ(flat.at("max_length"), 32);
  EXPECT_EQ(flat.at("padding_side"), "left");
}

}  // namespace config_record_test

namespace config_record_test {

// docs/CONFIG.md's "Resuming" lists the identity keys between the resume-identity markers.
TEST(ConfigRecord, DocsConfigListsExactlyTheIdentityKeys) {
  std::string listed;
  for (const auto& path : ls::config_key_paths(ls::kIdentity))
    listed += (listed.empty() ? "`" : ", `") + path + "`";
  const auto section = ls::test::generated_doc_section("docs/CONFIG.md", "resume-identity");
  ASSERT_TRUE(section) << "docs/CONFIG.md lacks the resume-identity marker lines";
  EXPECT_EQ(*section, listed + "\n") << "paste this between the markers:\n" << listed;
}

}  // namespace config_record_test
