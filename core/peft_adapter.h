// PEFT adapter files: `adapter_config.json` (LoRA hyper-parameters, task type) and
// `adapter_model.safetensors` (tensors under `base_model.model.<HF name>`, the head saved as a
// module to save: `base_model.model.score.weight`/`.bias`). LsLlama::load_adapter/save_adapter
// use these; keys PEFT has and ls-train does not need are ignored on load.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/head.h"
#include "core/lora.h"

namespace ls {

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";
inline constexpr const char* kPeftPrefix = "base_model.model.";
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

}  // namespace ls
