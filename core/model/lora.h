// LoRA with PEFT's numerics, and the projection seam every linear layer of the model goes through.
//
//   y = W x + b + s * B(A(dropout(x))),   s = alpha / r   (rsLoRA: alpha / sqrt(r))
//
// A [r, in] starts kaiming-uniform(a = sqrt 5), B [out, r] at zero, so a fresh adapter leaves the
// model unchanged. W and b are frozen; A and B are trained in float32 whatever the base dtype, and
// their output is added in float32 before casting back, as PEFT does.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ls {

class Checkpoint;

struct LoraOptions {
  int64_t r = 8;
  double alpha = 8.0;
  double dropout = 0.0;
  bool use_rslora = false;
  // Module names (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj), or PEFT's
  // "all-linear". `target_regex`, when set, replaces the list: PEFT's string form, matched in full
  // against the module path ("model.layers.3.self_attn.q_proj").
  std::vector<std::string> targets = {"q_proj", "v_proj"};
  std::optional<std::string> target_regex;
  std::vector<int64_t> layers;  // PEFT's layers_to_transform; empty = every layer

  double scaling() const;
  bool applies_to(int64_t layer, const std::string& module, const std::string& path) const;
  void validate(const std::string& where) const;  // UserError naming `where`
};

// The names the LLaMA projections go by, in model order.
const std::vector<std::string>& llama_projection_names();

// A linear map of the model that may carry a LoRA adapter. Tensor parallelism replaces the
// default (LoraLinear) with column/row-parallel versions through ProjectionFactory, so the model
// never knows how its weights are split. Parameters are registered under the checkpoint names:
// `weight`, `bias`, `lora_A.weight`, `lora_B.weight`.
class Projection : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& x) = 0;
  // Reads the frozen `<prefix>.weight` (and `.bias`) from a base checkpoint.
  virtual void load_base(const Checkpoint& checkpoint, const std::string& prefix) = 0;
  // Adds a fresh adapter (A kaiming-uniform, B zero); replaces any existing one.
  virtual void add_lora(const LoraOptions& options) = 0;
  // Reads `<prefix>.lora_A.weight` / `.lora_B.weight` into the adapter added before.
  virtual void load_lora(const Checkpoint& checkpoint, const std::string& prefix) = 0;
  virtual bool has_lora() const = 0;
  // Folds the adapter into W for inference (W += s B A) and back out again.
  virtual void merge_lora() = 0;
  virtual void unmerge_lora() = 0;
  // Selective activation checkpointing: the adapter keeps its input's dropout mask instead of
  // float32 copies of the input (see lora_delta_recomputed). A projection may ignore it.
  virtual void set_recompute(bool /*on*/) {}
};

// What a factory is asked to build: layer `layer`'s `name` ("q_proj"), in -> out features.
struct ProjectionSpec {
  int64_t layer = 0;
  std::string name;
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = false;
  at::TensorOptions options;  // dtype and device of the frozen weight
};
using ProjectionFactory = std::function<std::shared_ptr<Projection>(const ProjectionSpec&)>;

// The single-device projection: a plain linear layer plus an optional adapter.
class LoraLinear : public Projection {
 public:
  explicit LoraLinear(const ProjectionSpec& spec);

  at::Tensor forward(const at::Tensor& x) override;
  void load_base(const Checkpoint& checkpoint, const std::string& prefix) override;
  void add_lora(const LoraOptions& options) override;
  void load_lora(const Checkpoint& checkpoint, const std::string& prefix) override;
  bool has_lora() const override { return !lora_A_.is_empty(); }
  void merge_lora() override;
  void unmerge_lora() override;
  void set_recompute(bool on) override { recompute_ = on; }

  const at::Tensor& weight() const { return weight_; }
  bool merged() const { return merged_; }

 private:
  at::Tensor delta_weight() const;  // s B A, float32

  at::Tensor weight_;
  at::Tensor bias_;
  torch::nn::Linear lora_A_{nullptr};
  torch::nn::Linear lora_B_{nullptr};
  double scaling_ = 0.0;
  double dropout_ = 0.0;
  bool merged_ = false;
  bool recompute_ = false;
};

ProjectionFactory lora_linear_factory();

}  // namespace ls
