// Config schema, parsing, overrides and validation (see config.h).
#include "core/run/config.h"

#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <type_traits>

#include "core/base/error.h"
#include "core/eval/metric_table.h"
#include "core/model/llama_config.h"

namespace ls {
namespace {

// --- value codecs: YAML node <-> typed member, with errors that say what was expected -----------

std::string scalar_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

template <class T>
struct Codec;

template <>
struct Codec<int> {
  static constexpr const char* kind = "integer";
  static int read(const YAML::Node& n) { return n.as<int>(); }
  static std::string show(int v) { return std::to_string(v); }
  static nlohmann::json json(int v) { return v; }
};
template <>
struct Codec<double> {
  static constexpr const char* kind = "number";
  static double read(const YAML::Node& n) { return n.as<double>(); }
  static std::string show(double v) { return fmt::format("{}", v); }
  static nlohmann::json json(double v) { return v; }
};
template <>
struct Codec<bool> {
  static constexpr const char* kind = "true/false";
  static bool read(const YAML::Node& n) { return n.as<bool>(); }
  static std::string show(bool v) { return v ? "true" : "false"; }
  static nlohmann::json json(bool v) { return v; }
};
template <>
struct Codec<std::string> {
  static constexpr const char* kind = "string";
  static std::string read(const YAML::Node& n) {
    if (n.IsNull()) return "";
    if (!n.IsScalar()) throw YAML::BadConversion(n.Mark());
    return n.Scalar();
  }
  static std::string show(const std::string& v) {
    YAML::Emitter out;
    out << v;
    return out.c_str();
  }
  static nlohmann::json json(const std::string& v) { return v; }
};
template <>
struct Codec<std::vector<std::string>> {
  static constexpr const char* kind = "list of strings";
  static std::vector<std::string> read(const YAML::Node& n) {
    if (n.IsNull()) return {};
    if (!n.IsSequence()) throw YAML::BadConversion(n.Mark());
    std::vector<std::string> out;
    for (const auto& item : n) {
      if (!item.IsScalar()) throw YAML::BadConversion(item.Mark());
      out.push_back(item.Scalar());
    }
    return out;
  }
  static std::string show(const std::vector<std::string>& v) {
    YAML::Emitter out;
    out << YAML::Flow << v;
    return out.c_str();
  }
  static nlohmann::json json(const std::vector<std::string>& v) { return v; }
};

// data.pad_id: an integer or `auto` (kAutoPadId in memory).
struct PadIdCodec {
  static constexpr const char* kind = "integer or auto";
  static int read(const YAML::Node& n) {
    if (n.IsScalar() && n.Scalar() == "auto") return kAutoPadId;
    const int id = n.as<int>();
    if (id < 0) throw YAML::BadConversion(n.Mark());
    return id;
  }
  static std::string show(int v) { return v == kAutoPadId ? "auto" : std::to_string(v); }
  static nlohmann::json json(int v) {
    return v == kAutoPadId ? nlohmann::json("auto") : nlohmann::json(v);
  }
};

// A choice: a string that must be one of the enum's names (aliases are not config spellings).
struct NotAChoice {
  std::string shown;  // the value as the saved config would write it
};
template <NamedEnum E>
struct Codec<E> {
  static constexpr const char* kind = "string";
  static E read(const YAML::Node& n) {
    const std::string text = Codec<std::string>::read(n);
    if (auto value = try_parse_enum<E>(text, Aliases::kReject)) return *value;
    throw NotAChoice{Codec<std::string>::show(text)};
  }
  static std::string show(E v) { return Codec<std::string>::show(std::string(enum_name(v))); }
  static nlohmann::json json(E v) { return std::string(enum_name(v)); }
};

template <>
struct Codec<ClassWeights> {
  static constexpr const char* kind = "none, auto or a list of numbers";
  static ClassWeights read(const YAML::Node& n) {
    ClassWeights w;
    if (n.IsNull()) return w;
    if (n.IsScalar()) {
      const auto mode = try_parse_enum<ClassWeightsMode>(n.Scalar());
      if (!mode || *mode == ClassWeightsMode::kList) throw YAML::BadConversion(n.Mark());
      w.mode = *mode;
      return w;
    }
    if (!n.IsSequence()) throw YAML::BadConversion(n.Mark());
    w.mode = ClassWeightsMode::kList;
    for (const auto& item : n) w.values.push_back(item.as<double>());
    return w;
  }
  static std::string show(const ClassWeights& w) {
    if (w.mode != ClassWeightsMode::kList) return std::string(enum_name(w.mode));
    YAML::Emitter out;
    out << YAML::Flow << w.values;
    return out.c_str();
  }
  static nlohmann::json json(const ClassWeights& w) {
    if (w.mode != ClassWeightsMode::kList) return std::string(enum_name(w.mode));
    return w.values;
  }
};

// --- the schema --------------------------------------------------------------------------------

// One config key: its path, value kind, doc line and allowed values, how to read, show and write
// it, and the records it belongs to (config.h). `.in(...)` names the records, `.flat_as(...)` the
// key's name in flat records when that is not its last part.
struct KeySpec {
  std::string path;
  std::string kind;
  std::string doc;
  std::vector<std::string> choices;
  std::function<void(Config&, const YAML::Node&)> assign;  // throws YAML::BadConversion
  std::function<std::string(const Config&)> show;
  std::function<nlohmann::json(const Config&)> json;
  Records records;
  std::string flat_name;

  KeySpec in(Records r) && {
    records = r;
    return std::move(*this);
  }
  KeySpec flat_as(std::string name) && {
    flat_name = std::move(name);
    return std::move(*this);
  }
  std::string section() const { return path.substr(0, path.find('.')); }
  std::string leaf() const { return path.substr(path.find('.') + 1); }
};

// `choices`: the allowed values of a string key; an enum key takes its enum's names. `With`: the
// codec, when the member's type alone does not say how the key reads (data.pad_id).
template <class With = void, class Section, class T>
KeySpec key(std::string path, Section Config::*section, T Section::*member, std::string doc,
            std::vector<std::string> choices = {}) {
  using C = std::conditional_t<std::is_void_v<With>, Codec<T>, With>;
  if constexpr (NamedEnum<T>) choices = enum_choices<T>();
  std::string flat_name = path.substr(path.find('.') + 1);
  return KeySpec{std::move(path),
                 C::kind,
                 std::move(doc),
                 std::move(choices),
                 [=](Config& c, const YAML::Node& n) { (c.*section).*member = C::read(n); },
                 [=](const Config& c) { return C::show((c.*section).*member); },
                 [=](const Config& c) { return C::json((c.*section).*member); },
                 Records{},
                 std::move(flat_name)};
}

// train.metric's choices: auto, then every metric of the metric table.
std::vector<std::string> metric_choices() {
  std::vector<std::string> choices = {"auto"};
  for (const auto& rule : metric_rules()) choices.emplace_back(rule.name);
  return choices;
}

const std::vector<KeySpec>& schema() {
  using C = Config;
  static const std::vector<KeySpec> keys = {
      key("model.path", &C::model, &ModelSection::path,
          "HF model directory (llama, mistral, qwen2, qwen3): config.json, *.safetensors "
          "(required)")
          .in(kModelInfo)
          .flat_as("base_model"),
      key("model.tokenizer", &C::model, &ModelSection::tokenizer,
          "tokenizer.model (sentencepiece) or tokenizer.json (HF BPE); empty = "
          "<model.path>/tokenizer.json if there, else <model.path>/tokenizer.model")
          .in(kPrediction),
      key("model.dtype", &C::model, &ModelSection::dtype,
          "frozen base weights; auto = bf16 on GPU, f32 on CPU; f16 only for inference "
          "(ls_predict, "
          "ls_forward: training would need loss scaling). LoRA, head and optimizer state are "
          "always f32")
          .in(kIdentity),
      key("model.device", &C::model, &ModelSection::device,
          "auto = the rank's GPU when there is one"),
      key("model.attention", &C::model, &ModelSection::attention,
          "causal = LS-LLaMA, bidirectional = LS-unLLaMA")
          .in(kPrediction | kIdentity | kModelInfo),
      key("model.bidirectional_from_layer", &C::model, &ModelSection::bidirectional_from_layer,
          "with bidirectional attention, only layers >= this index are unmasked (0 = all)")
          .in(kPrediction | kIdentity | kModelInfo),
      key("model.attend_to_padding", &C::model, &ModelSection::attend_to_padding,
          "reproduce the original LS-unLLaMA code, which also unmasks padding keys in "
          "bidirectional "
          "layers (results then depend on batch composition)")
          .in(kPrediction | kIdentity | kModelInfo),
      key("model.activation_checkpointing", &C::model, &ModelSection::activation_checkpointing,
          "recompute activations in backward to save memory"),
      key("task.type", &C::task, &TaskSection::type,
          "sequence = one label per example, token = one tag per word (NER)")
          .in(kPrediction | kIdentity | kModelInfo)
          .flat_as("task"),
      key("task.problem_type", &C::task, &TaskSection::problem_type,
          "single_label = one class per example (cross-entropy), multi_label = a set of labels per "
          "example (one logit per label, BCE with logits), regression = one number (MSE); as HF's "
          "problem_type. Token tasks are single_label")
          .in(kPrediction | kIdentity | kModelInfo),
      key("task.labels", &C::task, &TaskSection::labels,
          "label names in id order; [] = inferred from the training split (integer labels "
          "ascending; otherwise O first, then byte order; multi_label: the union of every "
          "example's labels)")
          .in(kIdentity),
      key("task.pooling", &C::task, &TaskSection::pooling,
          "sequence head: last real token (HF), or mean/max over real tokens of the per-token "
          "logits (original LS-unLLaMA)")
          .in(kPrediction | kIdentity | kModelInfo),
      key("task.head_dropout", &C::task, &TaskSection::head_dropout,
          "dropout before the token head (HF LlamaForTokenClassification default)")
          .in(kPrediction | kIdentity),
      key("task.class_weights", &C::task, &TaskSection::class_weights,
          "single_label (sequence and token): cross-entropy weight per class; multi_label: BCE "
          "pos_weight per label. none, auto (single_label: n / (C * count_c), sklearn's "
          "'balanced', counted over the training split's labelled examples or tokens; multi_label: "
          "negatives_c / positives_c) or a list in label order")
          .in(kIdentity),
      key("task.label_smoothing", &C::task, &TaskSection::label_smoothing,
          "single_label cross-entropy label smoothing in [0, 1), torch semantics")
          .in(kIdentity),
      key("task.threshold", &C::task, &TaskSection::threshold,
          "multi_label: a label is predicted when its sigmoid probability is >= this")
          .in(kPrediction | kIdentity | kModelInfo),
      key("task.normalize_targets", &C::task, &TaskSection::normalize_targets,
          "regression: the head learns (y - mean) / std of the training targets; predictions and "
          "metrics are mapped back")
          .in(kPrediction | kIdentity),
      key("lora.r", &C::lora, &LoraSection::r, "LoRA rank").in(kIdentity),
      key("lora.alpha", &C::lora, &LoraSection::alpha,
          "LoRA alpha; the update is scaled by alpha/r")
          .in(kIdentity),
      key("lora.dropout", &C::lora, &LoraSection::dropout, "dropout on the LoRA input")
          .in(kIdentity),
      key("lora.targets", &C::lora, &LoraSection::targets,
          fmt::format("modules that get adapters: {}", fmt::join(llama_projection_names(), " ")))
          .in(kIdentity),
      key("lora.rslora", &C::lora, &LoraSection::rslora, "rank-stabilised scaling alpha/sqrt(r)")
          .in(kIdentity),
      key("lora.init_from", &C::lora, &LoraSection::init_from,
          "PEFT adapter directory to start from (adapter and head); its r, alpha, dropout, "
          "targets, "
          "rslora and threshold are used, and setting one of them to another value is an error")
          .in(kIdentity),
      key("data.train", &C::data, &DataSection::train, "training file (required)").in(kPrediction),
      key("data.validation", &C::data, &DataSection::validation,
          "validation file: evaluated every eval_every, selects the best checkpoint"),
      key("data.test", &C::data, &DataSection::test,
          "test file: evaluated once, with the selected checkpoint, at the end"),
      key("data.format", &C::data, &DataSection::format,
          "file format; auto = by extension (.jsonl .csv .tsv .conll/.txt)")
          .in(kPrediction),
      key("data.text_field", &C::data, &DataSection::text_field, "JSONL/CSV field with the text")
          .in(kPrediction),
      key("data.text_pair_field", &C::data, &DataSection::text_pair_field,
          "second text of a pair (e.g. hypothesis); empty = none")
          .in(kPrediction | kModelInfo),
      key("data.pair_separator", &C::data, &DataSection::pair_separator,
          "joins a text pair into one text (text + separator + pair), as ls_predict, ls_serve "
          "({\"text\", \"text_pair\"} items) and an export's callers must too (docs/EXPORT.md)")
          .in(kPrediction | kModelInfo),
      key("data.csv_quoting", &C::data, &DataSection::csv_quoting,
          "CSV/TSV fields may be quoted (RFC 4180); false treats quotes as text (GLUE TSVs)")
          .in(kPrediction),
      key("data.label_field", &C::data, &DataSection::label_field,
          "JSONL/CSV field with the label (string or integer; multi_label: a JSON list, or a cell "
          "split at label_separator; regression: a number)")
          .in(kPrediction),
      key("data.label_separator", &C::data, &DataSection::label_separator,
          "multi_label: separates the labels of a CSV/TSV cell or JSON string (\"toxic|insult\"); "
          "an empty cell is no label")
          .in(kPrediction),
      key("data.tokens_field", &C::data, &DataSection::tokens_field,
          "word-list JSONL (HF datasets NER export): the words")
          .in(kPrediction),
      key("data.tags_field", &C::data, &DataSection::tags_field,
          "word-list JSONL: the tags (strings, or integers indexing task.labels)")
          .in(kPrediction),
      key("data.conll_tag_column", &C::data, &DataSection::conll_tag_column,
          "CoNLL column with the tag; -1 = last")
          .in(kPrediction),
      key("data.max_length", &C::data, &DataSection::max_length,
          "tokens per example, BOS included; longer examples are truncated (and counted)")
          .in(kPrediction | kIdentity | kModelInfo),
      key("data.padding_side", &C::data, &DataSection::padding_side, "where padding goes")
          .in(kPrediction | kIdentity | kModelInfo),
      key<PadIdCodec>(
          "data.pad_id", &C::data, &DataSection::pad_id,
          "token id that pads batches; auto = the tokenizer's pad token (tokenizer_config.json "
          "pad_token, LLaMA-3's <|finetune_right_pad_id|>, <pad>), else a token no text encodes to "
          "(sentencepiece <unk> with byte fallback, BOS); never EOS with data.add_eos. An exported "
          "HF model pools at the last token that is not this one (docs/EXPORT.md)")
          .in(kPrediction | kIdentity),
      key("data.add_eos", &C::data, &DataSection::add_eos, "append EOS to every example")
          .in(kPrediction | kIdentity | kModelInfo),
      key("data.label_all_subwords", &C::data, &DataSection::label_all_subwords,
          "NER: every sub-word carries its word's tag, not only the first")
          .in(kPrediction | kIdentity),
      key("data.group_by_length", &C::data, &DataSection::group_by_length,
          "batch examples of similar length (shuffled mega-batches, sorted inside)")
          .in(kIdentity),
      key("train.epochs", &C::train, &TrainSection::epochs, "passes over the training split"),
      key("train.max_steps", &C::train, &TrainSection::max_steps,
          "stop after this many optimizer steps (0 = run all epochs)"),
      key("train.batch_size", &C::train, &TrainSection::batch_size,
          "global batch per optimizer step (all ranks, all accumulation steps)")
          .in(kPrediction | kIdentity),
      key("train.micro_batch_size", &C::train, &TrainSection::micro_batch_size,
          "examples per rank per forward pass; 0 = batch_size / dp. Accumulation = batch_size / "
          "(micro * dp)")
          .in(kPrediction),
      key("train.lr", &C::train, &TrainSection::lr, "peak learning rate (AdamW)").in(kIdentity),
      key("train.weight_decay", &C::train, &TrainSection::weight_decay, "decoupled weight decay")
          .in(kIdentity),
      key("train.decay_biases_and_norms", &C::train, &TrainSection::decay_biases_and_norms,
          "also decay 1-D tensors (biases); off by default")
          .in(kIdentity),
      key("train.adam_beta1", &C::train, &TrainSection::adam_beta1, "AdamW beta1").in(kIdentity),
      key("train.adam_beta2", &C::train, &TrainSection::adam_beta2, "AdamW beta2").in(kIdentity),
      key("train.adam_eps", &C::train, &TrainSection::adam_eps, "AdamW epsilon").in(kIdentity),
      key("train.fused_optimizer", &C::train, &TrainSection::fused_optimizer,
          "AdamW as one fused kernel (at::_fused_adamw_); false: the per-tensor reference loop, "
          "same numerics"),
      key("train.schedule", &C::train, &TrainSection::schedule,
          "learning-rate schedule after warmup")
          .in(kIdentity),
      key("train.warmup_ratio", &C::train, &TrainSection::warmup_ratio,
          "fraction of all steps spent warming up linearly from 0")
          .in(kIdentity),
      key("train.warmup_steps", &C::train, &TrainSection::warmup_steps,
          "warmup steps; overrides warmup_ratio when > 0")
          .in(kIdentity),
      key("train.max_grad_norm", &C::train, &TrainSection::max_grad_norm,
          "clip the global gradient norm; 0 = no clipping")
          .in(kIdentity),
      key("train.seed", &C::train, &TrainSection::seed,
          "seeds LoRA init, dropout and shuffling: equal seeds give equal runs")
          .in(kIdentity),
      key("train.shuffle", &C::train, &TrainSection::shuffle,
          "shuffle the training split every epoch")
          .in(kIdentity),
      key("train.eval_every", &C::train, &TrainSection::eval_every,
          "evaluate on validation every epoch, or every N optimizer steps"),
      key("train.metric", &C::train, &TrainSection::metric,
          "selection metric (best checkpoint, early stopping): auto = the task's default; each "
          "task's metrics and which way each is better: docs/CONFIG.md, Selection metrics",
          metric_choices())
          .in(kPrediction | kIdentity),
      key("train.ner_mode", &C::train, &TrainSection::ner_mode,
          "entity matching as seqeval: default (conlleval) or strict IOB2")
          .in(kPrediction | kIdentity),
      key("train.early_stopping_patience", &C::train, &TrainSection::early_stopping_patience,
          "stop after this many evaluations without improvement; 0 = never"),
      key("train.log_every", &C::train, &TrainSection::log_every,
          "optimizer steps between progress lines (non-terminal output) and metrics.jsonl records"),
      key("parallel.tp", &C::parallel, &ParallelSection::tp,
          "tensor-parallel width; data-parallel width = world size / tp")
          .in(kIdentity),
      key("output.dir", &C::output, &OutputSection::dir,
          "run directory (config, labels, metrics, adapters, state, predictions)"),
      key("output.save", &C::output, &OutputSection::save,
          "which adapters to keep: best (validation), last, or both"),
      key("output.tensorboard", &C::output, &OutputSection::tensorboard,
          "write TensorBoard scalar events"),
      key("output.plot", &C::output, &OutputSection::plot,
          "write curves.png (loss and validation metric) at the end"),
      key("output.overwrite", &C::output, &OutputSection::overwrite,
          "allow starting a new run in a non-empty directory"),
      key("output.state_every", &C::output, &OutputSection::state_every,
          "also save the resumable state (state/) every N optimizer steps; it is always saved at "
          "evaluations, at the end and on SIGINT/SIGTERM"),
  };
  return keys;
}

const KeySpec* find_key(const std::string& path) {
  for (const auto& k : schema())
    if (k.path == path) return &k;
  return nullptr;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// Names users bring from HF Trainer / PEFT / torchtune configs, mapped to ours.
const std::map<std::string, std::string>& known_aliases() {
  static const std::map<std::string, std::string> aliases = {
      {"learning_rate", "train.lr"},
      {"num_train_epochs", "train.epochs"},
      {"num_epochs", "train.epochs"},
      {"per_device_train_batch_size", "train.micro_batch_size"},
      {"gradient_accumulation_steps", "train.batch_size"},
      {"lr_scheduler_type", "train.schedule"},
      {"max_grad_norm", "train.max_grad_norm"},
      {"rank", "lora.r"},
      {"lora_r", "lora.r"},
      {"lora_alpha", "lora.alpha"},
      {"lora_dropout", "lora.dropout"},
      {"target_modules", "lora.targets"},
      {"max_seq_length", "data.max_length"},
      {"max_len", "data.max_length"},
      {"model_name_or_path", "model.path"},
      {"torch_dtype", "model.dtype"},
      {"output_dir", "output.dir"},
      {"num_labels", "task.labels"},
      {"gradient_checkpointing", "model.activation_checkpointing"},
  };
  return aliases;
}

// The valid key closest to `path`: a known alias of its last part, else the smallest edit
// distance over whole paths and, across sections, over last parts.
std::string nearest_key(const std::string& path) {
  auto leaf = [](const std::string& p) { return p.substr(p.find('.') + 1); };
  if (auto it = known_aliases().find(leaf(path)); it != known_aliases().end()) return it->second;
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const auto& k : schema()) {
    size_t d = std::min(edit_distance(path, k.path), edit_distance(leaf(path), leaf(k.path)) + 1);
    if (d < best_distance) best_distance = d, best = k.path;
  }
  return best;
}

[[noreturn]] void unknown_key(const std::string& where, const std::string& path) {
  fail("{}: unknown key '{}' (did you mean '{}'? `ls_train --config-docs` lists every key)", where,
       path, nearest_key(path));
}

std::string location(const std::string& origin, const YAML::Mark& mark) {
  if (mark.is_null()) return origin;
  return fmt::format("{}:{}", origin, mark.line + 1);
}

void validate(const Config& c, const std::map<std::string, std::string>& where) {
  auto at = [&](const std::string& path) {
    auto it = where.find(path);
    return it == where.end() ? std::string("config") : it->second;
  };
  auto require = [&](bool ok, const std::string& path, const std::string& what) {
    if (ok) return;
    const std::string location = at(path);  // "file.yaml:12", or "--set key" naming it already
    if (location.ends_with(path)) fail("{}: {}", location, what);
    fail("{}: {}: {}", location, path, what);
  };
  require(!c.model.path.empty(), "model.path", "required: the HF model directory to fine-tune");
  require(!c.data.train.empty(), "data.train", "required: the training file");
  require(c.model.bidirectional_from_layer >= 0, "model.bidirectional_from_layer", "must be >= 0");
  require(c.task.head_dropout >= 0 && c.task.head_dropout < 1, "task.head_dropout",
          "must be in [0, 1)");
  require(c.lora.r >= 1, "lora.r", "must be >= 1");
  require(c.lora.alpha > 0, "lora.alpha", "must be > 0");
  require(c.lora.dropout >= 0 && c.lora.dropout < 1, "lora.dropout", "must be in [0, 1)");
  const auto& projections = llama_projection_names();
  for (const auto& t : c.lora.targets)
    require(std::find(projections.begin(), projections.end(), t) != projections.end(),
            "lora.targets",
            fmt::format("'{}' is not a LLaMA linear ({})", t, fmt::join(projections, " ")));
  require(!c.lora.targets.empty(), "lora.targets", "at least one module");
  require(c.data.max_length >= 2, "data.max_length", "must be >= 2");
  require(c.data.pad_id >= 0 || c.data.pad_id == kAutoPadId, "data.pad_id", "must be >= 0 or auto");
  require(c.data.conll_tag_column >= -1, "data.conll_tag_column", "must be >= -1");
  require(c.train.epochs >= 1, "train.epochs", "must be >= 1");
  require(c.train.max_steps >= 0, "train.max_steps", "must be >= 0");
  require(c.train.batch_size >= 1, "train.batch_size", "must be >= 1");
  require(c.train.micro_batch_size >= 0, "train.micro_batch_size",
          "must be >= 0 (0 = batch_size / dp)");
  require(c.train.micro_batch_size == 0 || c.train.batch_size % c.train.micro_batch_size == 0,
          "train.micro_batch_size",
          fmt::format("must divide train.batch_size ({})", c.train.batch_size));
  require(c.train.lr > 0, "train.lr", "must be > 0");
  require(c.train.weight_decay >= 0, "train.weight_decay", "must be >= 0");
  require(c.train.adam_beta1 >= 0 && c.train.adam_beta1 < 1, "train.adam_beta1",
          "must be in [0, 1)");
  require(c.train.adam_beta2 >= 0 && c.train.adam_beta2 < 1, "train.adam_beta2",
          "must be in [0, 1)");
  require(c.train.adam_eps > 0, "train.adam_eps", "must be > 0");
  require(c.train.warmup_ratio >= 0 && c.train.warmup_ratio < 1, "train.warmup_ratio",
          "must be in [0, 1)");
  require(c.train.warmup_steps >= 0, "train.warmup_steps", "must be >= 0");
  require(c.train.max_grad_norm >= 0, "train.max_grad_norm", "must be >= 0");
  require(c.train.early_stopping_patience >= 0, "train.early_stopping_patience", "must be >= 0");
  require(c.train.log_every >= 1, "train.log_every", "must be >= 1");
  if (c.train.eval_every != "epoch") {
    bool digits = !c.train.eval_every.empty() &&
                  std::all_of(c.train.eval_every.begin(), c.train.eval_every.end(), ::isdigit);
    require(
        digits && std::stol(c.train.eval_every) > 0, "train.eval_every",
        fmt::format("'{}' is neither 'epoch' nor a positive number of steps", c.train.eval_every));
  }
  require(c.train.metric != "entity_f1" || c.task.type == TaskType::kToken, "train.metric",
          "entity_f1 needs task.type: token");
  const ProblemType problem = c.task.problem_type;
  require(problem == ProblemType::kSingleLabel || c.task.type == TaskType::kSequence,
          "task.problem_type",
          fmt::format("{} needs task.type: sequence (token tasks are single_label)",
                      enum_name(problem)));
  // The selectable metrics of the task's kind: the metric table (core/eval/metric_table.h).
  const bool token = c.task.type == TaskType::kToken;
  const TaskMetrics& metrics = task_metrics(c.task.type, problem);
  require(is_selectable(c.train.metric, c.task.type, problem), "train.metric",
          fmt::format("'{}' is not a {} metric (choose from: auto, {})", c.train.metric,
                      token ? std::string("token") : std::string(enum_name(problem)),
                      fmt::join(metrics.selectable, ", ")));
  require(c.task.label_smoothing >= 0 && c.task.label_smoothing < 1, "task.label_smoothing",
          "must be in [0, 1)");
  require(c.task.label_smoothing == 0 || problem == ProblemType::kSingleLabel,
          "task.label_smoothing", "only single_label cross-entropy is smoothed");
  require(c.task.threshold > 0 && c.task.threshold < 1, "task.threshold", "must be in (0, 1)");
  require(
      c.task.class_weights.mode == ClassWeightsMode::kNone || problem != ProblemType::kRegression,
      "task.class_weights", "regression has no classes to weight");
  for (double w : c.task.class_weights.values)
    require(w >= 0 && std::isfinite(w), "task.class_weights",
            fmt::format("weight {} must be a finite number >= 0", w));
  require(
      c.task.class_weights.mode != ClassWeightsMode::kList || !c.task.class_weights.values.empty(),
      "task.class_weights", "an empty list; use none");
  require(!c.task.normalize_targets || problem == ProblemType::kRegression,
          "task.normalize_targets", "needs task.problem_type: regression");
  require(problem != ProblemType::kRegression || c.task.labels.size() <= 1, "task.labels",
          "regression has one output: give at most one name");
  require(c.parallel.tp >= 1, "parallel.tp", "must be >= 1");
  require(c.output.state_every >= 0, "output.state_every", "must be >= 0");
  require(!c.output.dir.empty(), "output.dir", "must name a directory");
}

// Keys that hold file system paths: relative ones are resolved against the config file's directory
// (values from --set: against the working directory), so a run does not depend on where it starts.
const std::vector<std::string> kPathKeys = {"model.path", "model.tokenizer", "lora.init_from",
                                            "data.train", "data.validation", "data.test",
                                            "output.dir"};

std::string* path_field(Config& c, const std::string& key) {
  if (key == "model.path") return &c.model.path;
  if (key == "model.tokenizer") return &c.model.tokenizer;
  if (key == "lora.init_from") return &c.lora.init_from;
  if (key == "data.train") return &c.data.train;
  if (key == "data.validation") return &c.data.validation;
  if (key == "data.test") return &c.data.test;
  if (key == "output.dir") return &c.output.dir;
  return nullptr;
}

void make_absolute(std::string& path, const std::filesystem::path& base) {
  if (!path.empty() && std::filesystem::path(path).is_relative())
    path = (base / path).lexically_normal().string();
}

YAML::Node load_yaml(const std::string& text, const std::string& origin) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    fail("{}: YAML syntax error: {}", location(origin, e.mark), e.msg);
  }
}

}  // namespace

Config Config::parse(const std::string& yaml, const std::string& origin,
                     const std::vector<std::string>& overrides,
                     const std::filesystem::path& base_dir) {
  YAML::Node root = load_yaml(yaml, origin);
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap())
    fail("{}: a config is a mapping of sections (model:, task:, lora:, ...)", origin);

  Config config;
  std::map<std::string, std::string> where;  // key path -> "file:line" of its value
  auto assign = [&](const KeySpec& spec, const YAML::Node& value, const std::string& at) {
    try {
      spec.assign(config, value);
    } catch (const YAML::BadConversion&) {
      fail("{}: {}: expected {}, found '{}'", at, spec.path, spec.kind, scalar_text(value));
    } catch (const NotAChoice& e) {
      fail("{}: {}: '{}' is not one of: {}", at, spec.path, e.shown, fmt::join(spec.choices, ", "));
    }
    if (!spec.choices.empty()) {
      std::string v = spec.show(config);
      if (std::find(spec.choices.begin(), spec.choices.end(), v) == spec.choices.end())
        fail("{}: {}: '{}' is not one of: {}", at, spec.path, v, fmt::join(spec.choices, ", "));
    }
    where[spec.path] = at;
  };

  for (const auto& section : root) {
    const std::string name = section.first.as<std::string>();
    const std::string at = location(origin, section.first.Mark());
    bool known_section = std::any_of(schema().begin(), schema().end(), [&](const KeySpec& k) {
      return k.path.rfind(name + ".", 0) == 0;
    });
    if (!known_section) {
      static const std::vector<std::string> kSections = {"model", "task",     "lora",  "data",
                                                         "train", "parallel", "output"};
      std::string nearest =
          *std::min_element(kSections.begin(), kSections.end(), [&](const auto& a, const auto& b) {
            return edit_distance(name, a) < edit_distance(name, b);
          });
      fail("{}: unknown section '{}' (did you mean '{}'? sections: {})", at, name, nearest,
           fmt::join(kSections, ", "));
    }
    if (!section.second.IsMap()) {
      if (section.second.IsNull()) continue;
      fail("{}: section '{}' must be a mapping of keys", at, name);
    }
    for (const auto& entry : section.second) {
      const std::string path = name + "." + entry.first.as<std::string>();
      const KeySpec* spec = find_key(path);
      const std::string key_at = location(origin, entry.first.Mark());
      if (!spec) unknown_key(key_at, path);
      assign(*spec, entry.second, key_at);
    }
  }
  if (!base_dir.empty())
    for (const auto& key : kPathKeys) make_absolute(*path_field(config, key), base_dir);
  for (const auto& item : overrides) {
    auto eq = item.find('=');
    if (eq == std::string::npos) fail("--set {}: expected KEY=VALUE (e.g. train.lr=2e-4)", item);
    const std::string path = item.substr(0, eq);
    const KeySpec* spec = find_key(path);
    if (!spec) unknown_key("--set", path);
    assign(*spec, load_yaml(item.substr(eq + 1), "--set " + path), "--set " + path);
    // A path given on the command line is relative to the working directory.
    if (std::string* field = path_field(config, path))
      make_absolute(*field, std::filesystem::current_path());
  }
  validate(config, where);
  config.set_at = std::move(where);
  return config;
}

Config Config::load(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read config file", path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse(text, path, overrides, std::filesystem::absolute(path).parent_path());
}

std::string Config::to_yaml() const {
  std::string out = "# ls-train resolved config: every key with the value this run used.\n";
  std::string section;
  for (const auto& k : schema()) {
    std::string name = k.path.substr(0, k.path.find('.'));
    if (name != section) out += name + ":\n", section = name;
    out += fmt::format("  {}: {}\n", k.path.substr(k.path.find('.') + 1), k.show(*this));
  }
  return out;
}

std::string config_docs_markdown() {
  Config defaults;
  std::string out = "| key | default | meaning |\n|---|---|---|\n";
  for (const auto& k : schema()) {
    std::string doc = k.doc;
    if (!k.choices.empty()) doc += fmt::format(" ({})", fmt::join(k.choices, " \\| "));
    std::string value = k.show(defaults);
    if (value.empty() || value == "\"\"") value = "\"\"";
    // A '|' in a value or its doc would split the Markdown cell.
    auto escape_pipes = [](const std::string& text) {
      std::string out;
      for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '|' && (i == 0 || text[i - 1] != '\\')) out += '\\';
        out += text[i];
      }
      return out;
    };
    out += fmt::format("| `{}` | `{}` | {} |\n", k.path, escape_pipes(value), escape_pipes(doc));
  }
  return out;
}

std::vector<std::string> config_key_paths(Records which) {
  std::vector<std::string> paths;
  for (const auto& k : schema())
    if (k.records.has(which)) paths.push_back(k.path);
  return paths;
}

nlohmann::json config_record(const Config& config, Records which) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& k : schema())
    if (k.records.has(which)) out[k.section()][k.leaf()] = k.json(config);
  return out;
}

nlohmann::json config_record_flat(const Config& config, Records which) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& k : schema())
    if (k.records.has(which)) out[k.flat_name] = k.json(config);
  return out;
}

std::vector<std::pair<std::string, std::string>> config_values(const Config& config,
                                                               Records which) {
  std::vector<std::pair<std::string, std::string>> values;
  for (const auto& k : schema())
    if (k.records.has(which)) values.emplace_back(k.path, k.show(config));
  return values;
}

std::string selection_metric(const Config& config) {
  return resolve_metric(config.train.metric, config.task.type, config.task.problem_type);
}

}  // namespace ls
