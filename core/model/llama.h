// The LLaMA decoder, in HF's structure and parameter names, without the lm_head:
//   embed_tokens -> N x [x + attn(norm(x)), x + mlp(norm(x))] -> norm  = final hidden states.
// Attention is GQA through at::scaled_dot_product_attention; the mask of each layer comes from
// the AttentionPolicy (causal, bidirectional, or bidirectional from layer k). Every linear layer
// is built by a ProjectionFactory, so tensor parallelism swaps them without touching this file.
// Activation checkpointing (none, selective, full) trades backward recomputation for memory; see
// core/model/activation_checkpoint.h.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/model/attention_mask.h"
#include "core/model/choices.h"
#include "core/model/llama_config.h"
#include "core/model/lora.h"
#include "core/model/rope.h"

namespace ls {

class Checkpoint;

// The SDPA backend libtorch would pick for these inputs ("flash_attention",
// "efficient_attention", "math", "cudnn_attention", ...), from at::_fused_sdp_choice.
std::string sdpa_backend_name(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const std::optional<at::Tensor>& mask, bool is_causal);

// y = w * x / sqrt(mean(x^2) + eps), normalised in float32 and cast back before the weight.
class RMSNorm : public torch::nn::Module {
 public:
  RMSNorm(int64_t dim, double eps, const at::TensorOptions& options);
  // One autograd node (fused_rms_norm), which saves only x and the per-row rsqrt, so
  // selective checkpointing needs nothing more from it.
  at::Tensor forward(const at::Tensor& x);

 private:
  at::Tensor weight_;
  double eps_;
};

class TokenEmbedding : public torch::nn::Module {
 public:
  TokenEmbedding(int64_t vocab_size, int64_t dim, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& input_ids);  // ids outside the vocabulary: UserError

 private:
  at::Tensor weight_;
};

class LlamaAttention : public torch::nn::Module {
 public:
  LlamaAttention(const LlamaConfig& config, int64_t layer, const ProjectionFactory& factory,
                 const at::TensorOptions& options);
  // `is_causal` with no mask: SDPA's own causal masking (flash-eligible).
  at::Tensor forward(const at::Tensor& x, const RopeTables& rope,
                     const std::optional<at::Tensor>& mask, bool is_causal);
  void set_recompute(bool on);

 private:
  int64_t heads_, kv_heads_, head_dim_;
  double dropout_;
  std::shared_ptr<Projection> q_proj_, k_proj_, v_proj_, o_proj_;
  // Qwen3 only: one [head_dim] weight shared by every head, so replicated on every tp rank.
  std::shared_ptr<RMSNorm> q_norm_, k_norm_;
};

// SwiGLU: down(silu(gate(x)) * up(x)).
class LlamaMLP : public torch::nn::Module {
 public:
  LlamaMLP(const LlamaConfig& config, int64_t layer, const ProjectionFactory& factory,
           const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);
  void set_recompute(bool on);

 private:
  std::shared_ptr<Projection> gate_proj_, up_proj_, down_proj_;
  bool recompute_ = false;
};

class LlamaDecoderLayer : public torch::nn::Module {
 public:
  LlamaDecoderLayer(const LlamaConfig& config, int64_t layer, const ProjectionFactory& factory,
                    const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x, const RopeTables& rope,
                     const std::optional<at::Tensor>& mask, bool is_causal);
  // Selective checkpointing: norms, RoPE and SwiGLU save only their inputs.
  void set_recompute(bool on);

 private:
  std::shared_ptr<RMSNorm> input_layernorm_, post_attention_layernorm_;
  std::shared_ptr<LlamaAttention> self_attn_;
  std::shared_ptr<LlamaMLP> mlp_;
};

// HF's LlamaModel: registered as `model` by the classifier, so parameter names read
// `model.layers.0.self_attn.q_proj.weight` exactly as in the checkpoint. Weights are allocated
// uninitialised; load() fills them.
class LlamaModel : public torch::nn::Module {
 public:
  LlamaModel(LlamaConfig config, AttentionPolicy policy, const ProjectionFactory& factory,
             const at::TensorOptions& options);

  // input_ids, attention_mask [B, T] (mask: 1 real, 0 padding) -> final-norm hidden [B, T, H].
  // T beyond config().sliding_window: UserError (full attention would differ from the window's).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask);

  // Reads every base weight from `checkpoint`, whose names carry `prefix` ("model."). Projections
  // read their own (possibly sharded) weights; the rest are read whole.
  void load(const Checkpoint& checkpoint, const std::string& prefix);

  const LlamaConfig& config() const { return config_; }
  const AttentionPolicy& policy() const { return policy_; }
  void set_policy(const AttentionPolicy& policy) { policy_ = policy; }
  // Applies to training forwards with grad enabled; eval and no-grad forwards never recompute.
  void set_activation_checkpointing(ActivationCheckpointing mode);
  ActivationCheckpointing activation_checkpointing() const { return checkpointing_; }
  // One line per attention kind this model's policy uses, naming the SDPA backend libtorch picks
  // on this device and dtype for a [batch, length] input with and without padding.
  std::string describe_attention_backends(int64_t batch, int64_t length) const;
  // Every projection of the model, in order.
  struct ProjectionRef {
    int64_t layer;
    std::string name;  // "q_proj"
    std::string path;  // "layers.0.self_attn.q_proj", relative to this module
    std::shared_ptr<Projection> projection;
  };
  std::vector<ProjectionRef> projections();

 private:
  LlamaConfig config_;
  AttentionPolicy policy_;
  ActivationCheckpointing checkpointing_ = ActivationCheckpointing::kNone;
  at::Tensor inv_freq_;  // a buffer of the model, not a checkpoint tensor
  std::shared_ptr<TokenEmbedding> embed_tokens_;
  torch::nn::ModuleList layers_;
  std::shared_ptr<RMSNorm> norm_;
};

}  // namespace ls
