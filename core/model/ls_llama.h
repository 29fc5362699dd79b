// LsLlama: the label-supervised LLaMA of the paper, as the trainer uses it.
//   base (frozen, any dtype) + LoRA (float32) -> final hidden states -> head `score` -> logits
// LS-LLaMA is the causal policy, LS-unLLaMA the bidirectional one. Parameters are registered
// under HF names (`model.layers.0.self_attn.q_proj.lora_A.weight`, `score.weight`), so
// named_parameters() is the checkpoint map; PEFT's names are these with `base_model.model.`.
#pragma once

#include <torch/nn/module.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/model/attention_mask.h"
#include "core/model/head.h"
#include "core/model/llama.h"
#include "core/model/lora.h"

namespace ls {

// How PEFT prefixes the names of the model it wraps.
inline constexpr const char* kPeftPrefix = "base_model.model.";

struct ModelOptions {
  c10::ScalarType dtype = c10::kFloat;  // of the frozen base; LoRA and head stay float32
  c10::Device device = c10::kCPU;
  AttentionPolicy attention;  // causal unless asked
  ActivationCheckpointing activation_checkpointing = ActivationCheckpointing::kNone;
  ProjectionFactory projection_factory = lora_linear_factory();
};

struct LoadStats {
  int64_t tensors = 0;
  int64_t bytes = 0;  // of the model's base weights, in their loaded dtype
  double seconds = 0;
};

class LsLlama : public torch::nn::Module {
 public:
  // Reads `hf_dir/config.json` and the safetensors weights (lm_head is never loaded). The head
  // is made fresh from `head` (a PEFT adapter loaded later replaces it). Errors are UserErrors
  // naming the file and tensor or key.
  static std::shared_ptr<LsLlama> from_pretrained(const std::filesystem::path& hf_dir,
                                                  const ModelOptions& options,
                                                  const HeadOptions& head,
                                                  LoadStats* stats = nullptr);

  LsLlama(LlamaConfig config, const ModelOptions& options, const HeadOptions& head);

  // A fresh adapter on every projection `lora` targets (A kaiming-uniform, B zero).
  void add_lora(const LoraOptions& lora);
  // input_ids, attention_mask [B, T] -> final hidden states [B, T, H] in the base dtype.
  at::Tensor hidden_states(const at::Tensor& input_ids, const at::Tensor& attention_mask);
  // hidden -> float32 logits ([B, C] sequence, [B, T, C] token).
  at::Tensor logits(const at::Tensor& hidden, const at::Tensor& attention_mask);
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
    return logits(hidden_states(input_ids, attention_mask), attention_mask);
  }
  // The head's mean loss for its problem type (loss.h): cross-entropy over labels != -100, BCE
  // with logits (multi-label) or MSE (regression).
  at::Tensor loss(const at::Tensor& logits, const at::Tensor& labels) const {
    return head_->loss(logits, labels);
  }

  // The trained tensors (LoRA A/B, head) under their HF names, in registration order; with
  // tensor-parallel projections, this rank's shards (what its optimizer updates).
  std::vector<std::pair<std::string, at::Tensor>> trainable_parameters() const;
  // The same in the unsharded (tp = 1) layout, detached: what an adapter saves. Collective over
  // the tp group when the projections are tensor-parallel.
  std::vector<std::pair<std::string, at::Tensor>> unsharded_trainable_parameters() const;
  // "base_model.model." + name: how PEFT saves a parameter.
  static std::string peft_name(const std::string& name);

  // Folds LoRA into the base weights for inference, and back.
  void merge_lora();
  void unmerge_lora();

  void set_head(std::shared_ptr<Head> head);
  // A fresh head built from `options`, which become head_options().
  void set_head(const HeadOptions& options);
  Head& head() { return *head_; }
  const HeadOptions& head_options() const { return head_options_; }
  LlamaModel& model() { return *model_; }
  const LlamaConfig& config() const { return model_->config(); }
  const std::optional<LoraOptions>& lora() const { return lora_; }
  void set_attention(const AttentionPolicy& policy) { model_->set_policy(policy); }
  void set_activation_checkpointing(ActivationCheckpointing mode) {
    model_->set_activation_checkpointing(mode);
  }
  // Keys the dropout masks (LoRA, token head) of the training forwards that follow on the batch:
  // row_keys [B, T] from dropout_row_keys (keyed_dropout.h), moved to the model's device. Keep
  // them until the batch's backward is done; without keys, dropout draws from torch's generator.
  void set_dropout_keys(const at::Tensor& row_keys);
  void clear_dropout_keys() { dropout_->clear(); }

 private:
  std::shared_ptr<LlamaModel> model_;
  std::shared_ptr<Head> head_;
  HeadOptions head_options_;
  std::optional<LoraOptions> lora_;
  c10::Device device_;
  std::shared_ptr<DropoutContext> dropout_ = std::make_shared<DropoutContext>();
};

}  // namespace ls
