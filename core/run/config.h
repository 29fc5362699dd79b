// Config: the typed, validated form of a run's YAML file (configs/*.yaml), with --set overrides.
//
// The struct defaults below ARE the documented defaults: the schema in config.cpp binds every key
// path ("train.lr") to a member, a doc line and its allowed values, and both the key table of
// docs/CONFIG.md (`ls_train --config-docs`) and the resolved config a run saves are produced from
// it. An unknown key is an error that suggests the nearest valid one; every error names the file,
// line and key.
// A key whose value is a choice holds an enum; its allowed values are the enum's name table
// (core/base/enum_names.h).
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/base/enum_names.h"
#include "core/base/task.h"
#include "core/eval/metrics.h"
#include "core/model/choices.h"
#include "core/model/dtype.h"
#include "core/run/choices.h"
#include "data/batch.h"
#include "data/reader.h"

namespace ls {

// The records a config key is written into besides config.yaml (which holds every key). Each
// key's schema row (config.cpp) names its records, so a key added to a record is one row:
//   kPrediction  an adapter's head_config.json `ls_train.run`: what prediction needs without the
//                run directory (describe_run, open_trained_run read it back)
//   kIdentity    the resume identity (state/trainer.json): what changes the computation, so a
//                resume that changes one is refused; what may change is every other key
//   kModelInfo   what a served or exported model says of itself, flat: ls_serve's /v1/model and
//                ls_export's config.json `ls_train`
struct Records {
  unsigned bits = 0;
  constexpr Records operator|(Records other) const { return {bits | other.bits}; }
  // Whether this set holds all of `other` (an empty `other`: always).
  constexpr bool has(Records other) const { return (bits & other.bits) == other.bits; }
};
inline constexpr Records kPrediction{1u << 0}, kIdentity{1u << 1}, kModelInfo{1u << 2};

struct ModelSection {
  std::string path;                           // HF LLaMA directory (config.json + *.safetensors)
  std::string tokenizer;                      // "" = <path>/tokenizer.model
  DtypeChoice dtype = DtypeChoice::kAuto;     // auto: bf16 on GPU, f32 on CPU
  DeviceChoice device = DeviceChoice::kAuto;  // auto: the rank's GPU when there is one
  AttentionMode attention = AttentionMode::kCausal;
  int bidirectional_from_layer = 0;  // with bidirectional: layers >= this one are unmasked
  bool attend_to_padding = false;    // original LS-unLLaMA: also unmask padding keys
  ActivationCheckpointing activation_checkpointing = ActivationCheckpointing::kNone;
};

// task.class_weights: none, auto (from the training split's label counts) or one number per
// label in label-map order.
struct ClassWeights {
  ClassWeightsMode mode = ClassWeightsMode::kNone;
  std::vector<double> values;  // mode list
  bool operator==(const ClassWeights&) const = default;
};

struct TaskSection {
  TaskType type = TaskType::kSequence;
  ProblemType problem_type = ProblemType::kSingleLabel;
  std::vector<std::string> labels;   // [] = inferred from the training split
  Pooling pooling = Pooling::kLast;  // sequence head
  double head_dropout = 0.1;         // token head dropout (HF's classifier default)
  ClassWeights class_weights;        // CE weights (single-label), pos_weight (multi-label)
  double label_smoothing = 0.0;      // single-label cross-entropy, torch semantics
  double threshold = 0.5;            // multi-label decision threshold on sigmoid outputs
  bool normalize_targets = false;    // regression: train on (y - mean) / std of the train split
};

struct LoraSection {
  int r = 12;
  double alpha = 32;
  double dropout = 0.1;
  std::vector<std::string> targets = {"q_proj", "v_proj"};
  bool rslora = false;    // scale alpha/sqrt(r) instead of alpha/r
  std::string init_from;  // PEFT adapter directory to start from
};

// data.pad_id: auto, resolved against the tokenizer before a run writes anything (run_setup.h).
inline constexpr int kAutoPadId = -1;

struct DataSection {
  std::string train;
  std::string validation;
  std::string test;
  data::DataFormat format = data::DataFormat::kAuto;
  std::string text_field = "text";
  std::string text_pair_field;  // second text of a pair (premise/hypothesis)
  std::string pair_separator = " ";
  bool csv_quoting = true;  // RFC 4180 quotes in CSV/TSV; false: quotes are literal
  std::string label_field = "label";
  std::string label_separator = "|";    // multi-label CSV/TSV cells (and JSON strings): "a|b"
  std::string tokens_field = "tokens";  // word-list JSONL (HF NER export)
  std::string tags_field = "ner_tags";
  int conll_tag_column = -1;  // -1 = last column
  int max_length = 64;
  data::PaddingSide padding_side = data::PaddingSide::kRight;
  int pad_id = kAutoPadId;  // kAutoPadId: the tokenizer's (data::Tokenizer::default_pad_id)
  bool add_eos = false;
  bool label_all_subwords = false;  // NER: label every sub-word, not only the first
  bool group_by_length = false;
};

struct TrainSection {
  int epochs = 10;
  int max_steps = 0;         // > 0 stops after this many optimizer steps
  int batch_size = 8;        // global batch per optimizer step
  int micro_batch_size = 0;  // per rank and forward pass; 0 = batch_size / dp
  double lr = 1e-4;
  double weight_decay = 0.01;
  bool decay_biases_and_norms = false;  // apply weight decay to 1-D tensors too
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  bool fused_optimizer = true;  // one fused AdamW kernel; false: the per-tensor reference
  ScheduleKind schedule = ScheduleKind::kLinear;
  double warmup_ratio = 0.0;
  int warmup_steps = 0;        // overrides warmup_ratio when > 0
  double max_grad_norm = 1.0;  // 0 disables clipping
  int seed = 42;
  bool shuffle = true;
  std::string eval_every = "epoch";      // epoch | N (optimizer steps)
  std::string metric = "auto";           // auto or a metric of core/eval/metric_table.h
  NerMode ner_mode = NerMode::kDefault;  // seqeval mode: default | strict (IOB2)
  int early_stopping_patience = 0;       // evaluations without improvement; 0 = off
  int log_every = 10;                    // optimizer steps between log lines
};

struct ParallelSection {
  int tp = 1;  // tensor-parallel width; dp = world size / tp
};

struct OutputSection {
  std::string dir = "runs/default";
  SaveMode save = SaveMode::kBoth;
  bool tensorboard = true;
  bool plot = true;
  bool overwrite = false;  // reuse a non-empty run directory
  int state_every = 0;     // save resumable state every N steps; 0 = at evaluations
};

struct Config {
  ModelSection model;
  TaskSection task;
  LoraSection lora;
  DataSection data;
  TrainSection train;
  ParallelSection parallel;
  OutputSection output;
  // Where each key given explicitly was set ("file.yaml:12", "--set key"); the others have their
  // defaults. Not a key itself: to_yaml does not save it.
  std::map<std::string, std::string> set_at;

  // Loads a YAML file, applies "a.b=value" overrides, validates. Throws UserError. Relative
  // paths in the file are relative to the file's directory; in overrides, to the working
  // directory. The result holds absolute paths.
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {});
  // Same, from YAML text (`origin` names it in errors); relative paths of the text are resolved
  // against `base_dir` when it is given, else kept as written.
  static Config parse(const std::string& yaml, const std::string& origin,
                      const std::vector<std::string>& overrides = {},
                      const std::filesystem::path& base_dir = {});

  // Every key with its value, in schema order: what a run saves as config.yaml.
  std::string to_yaml() const;
};

// The selection metric a config asks for: train.metric, or for auto the task's default in the
// metric table (core/eval/metric_table.h), which also says which way it is better.
std::string selection_metric(const Config& config);

// The keys as a Markdown table (key, default, meaning): docs/CONFIG.md's config reference.
std::string config_docs_markdown();
// The valid key paths of a record (every key by default), in schema order.
std::vector<std::string> config_key_paths(Records which = {});

// A record of the config: the keys whose schema row names `which`, typed as JSON (numbers,
// booleans, strings, lists). Nested by section ({"model": {"attention": "causal"}, ...}):
// Config::parse reads it back, JSON being YAML.
nlohmann::json config_record(const Config& config, Records which);
// The same keys flat, each under its flat name (its last part, except task.type: "task" and
// model.path: "base_model"), as ls_serve's /v1/model and ls_export's config.json `ls_train` show.
nlohmann::json config_record_flat(const Config& config, Records which);
// The same keys as (path, value as config.yaml writes it): the resume identity's pairs.
std::vector<std::pair<std::string, std::string>> config_values(const Config& config, Records which);

}  // namespace ls
