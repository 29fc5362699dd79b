// PEFT adapter files, and reading and writing a model's adapter through them:
// `adapter_config.json` (LoRA hyper-parameters, task type), `adapter_model.safetensors` (tensors
// under `base_model.model.<HF name>`, the head saved as a module to save:
// `base_model.model.score.weight`/`.bias`) and `head_config.json`. Keys PEFT has and ls-train does
// not need are ignored on load.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/model/head.h"
#include "core/model/lora.h"
#include "core/model/ls_llama.h"

namespace ls {

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";
// What the head is, beside PEFT's files (PEFT warns about unknown keys in adapter_config.json, so
// they go here): HF config keys `num_labels` and `problem_type` (pass them to
// LlamaForSequenceClassification.from_pretrained) and an `ls_train` object with the multi-label
// threshold and the regression target normalisation.
inline constexpr const char* kHeadConfigFile = "head_config.json";

struct PeftAdapterConfig {
  LoraOptions lora;
  std::optional<TaskType> task;  // SEQ_CLS / TOKEN_CLS; absent for other PEFT task types
  std::vector<std::string> modules_to_save;
};

// Parses and validates `adapter_config.json`; features ls-train cannot reproduce exactly (DoRA,
// LoRA bias, rank/alpha patterns) are refused with the key that asks for them.
PeftAdapterConfig read_peft_adapter_config(const std::filesystem::path& config_json);
std::string peft_adapter_config_json(const LoraOptions& lora, TaskType task);

std::string head_config_json(const HeadOptions& head);
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
// are gathered) and only the one with `write` set writes.
void save_adapter(const LsLlama& model, const std::filesystem::path& adapter_dir,
                  bool write = true);

}  // namespace ls
