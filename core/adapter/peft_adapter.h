// PEFT adapter files, and reading and writing a model's adapter through them:
// `adapter_config.json` (LoRA hyper-parameters, task type), `adapter_model.safetensors` (tensors
// under `base_model.model.<HF name>`, the head saved as a module to save:
// `base_model.model.score.weight`/`.bias`) and `head_config.json`. Keys PEFT has and ls-train does
// not need are ignored on load.
#pragma once

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/model/head.h"
#include "core/model/lora.h"
#include "core/model/ls_llama.h"

namespace ls {

// A JSON file's root object. UserError naming the file when it cannot be read or holds something
// else (the adapter files, config.json and tokenizer_config.json are all read this way).
nlohmann::json read_json_object(const std::filesystem::path& file);

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";
// What the head is, beside PEFT's files (PEFT warns about unknown keys in adapter_config.json, so
// they go here): HF config keys `num_labels`, `problem_type` and, from a described run,
// `id2label`, `label2id` and `pad_token_id` (pass them to <Family>ForSequenceClassification
// .from_pretrained), and an `ls_train` object with the multi-label threshold, the regression
// target normalisation, the loss settings and, from a described run, the attention mode,
// pooling, max_length, tokenizer file and data options (`run`, see AdapterDescription).
inline constexpr const char* kHeadConfigFile = "head_config.json";

// What makes an adapter directory usable without its run directory (trained_run.h fills it from
// a run's config): the base model it was trained on, the label names in id order, the pad id the
// batches used, and `run`, a JSON object of the config keys prediction needs (model attention
// and tokenizer, task, data options), saved as head_config.json's `ls_train.run`.
struct AdapterDescription {
  std::string base_model;  // adapter_config.json `base_model_name_or_path`
  std::vector<std::string> labels;
  std::optional<int64_t> pad_token_id;
  std::string run_json;               // a JSON object, or empty
  std::string tokenizer_fingerprint;  // of the tokenizer file the run read (file_fingerprint)
};

struct PeftAdapterConfig {
  LoraOptions lora;
  std::optional<TaskType> task;  // SEQ_CLS / TOKEN_CLS; absent for other PEFT task types
  std::vector<std::string> modules_to_save;
};

// Parses and validates `adapter_config.json`; features ls-train cannot reproduce exactly (DoRA,
// LoRA bias, rank/alpha patterns) are refused with the key that asks for them.
PeftAdapterConfig read_peft_adapter_config(const std::filesystem::path& config_json);
std::string peft_adapter_config_json(const LoraOptions& lora, TaskType task,
                                     const std::string& base_model = "");

std::string head_config_json(const HeadOptions& head,
                             const AdapterDescription* description = nullptr);
// Reads head_config.json into `head`: what the outputs mean (threshold, target normalisation) and,
// with `objective`, the training loss settings too (class weights, label smoothing: ls_predict's
// loss then equals the trainer's). A problem type other than the one `head` was built for is an
// error naming the file.
void read_head_config(const std::filesystem::path& file, HeadOptions& head, bool objective = false);

// LoRA and head from a PEFT adapter directory into `model` (adapter_config.json +
// adapter_model.safetensors, and head_config.json when there: problem type, threshold, target
// normalisation); the head takes the adapter's label count. Errors name the file and tensor.
void load_adapter(LsLlama& model, const std::filesystem::path& adapter_dir);
// Writes `model`'s adapter PEFT-loadable (LoRA + head as modules_to_save), atomically per file,
// always in the unsharded layout. Tensor-parallel: every rank of the tp group calls it (the shards
// are gathered) and only the one with `write` set writes. With `description`, the adapter names
// its base model and head_config.json describes the run (see AdapterDescription).
void save_adapter(const LsLlama& model, const std::filesystem::path& adapter_dir, bool write = true,
                  const AdapterDescription* description = nullptr);

}  // namespace ls
