// LoRA with PEFT's numerics, and the projection seam every linear layer of the model goes through.
//
//   y = W x + b + s * B(A(dropout(x))),   s = alpha / r   (rsLoRA: alpha / sqrt(r))
//
// A [r, in] starts kaiming-uniform(a = sqrt 5), B [out, r] at zero, so a fresh adapter leaves the
// model unchanged. W and b are frozen; A and B are trained in float32 whatever the base dtype, and
// their output is added in float32 before casting back, as PEFT does. This file holds the whole of
// LoRA's math (init_lora, add_lora_delta, merge_lora_delta): the single-device LoraLinear below and
// the tensor-parallel projection (tp_projection.h, which says how the adapter is sharded) both call
// it, the latter with its shards and the tp region functions around them.
#pragma once

#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model/keyed_dropout.h"
#include "core/model/llama_config.h"

namespace ls {

class Checkpoint;

struct LoraOptions {
  int64_t r = 8;
  double alpha = 8.0;
  double dropout = 0.0;
  bool use_rslora = false;
  // Module names (of llama_projection_names()), or PEFT's "all-linear". `target_regex`, when set,
  // replaces the list: PEFT's string form, matched in full against the module path
  // ("model.layers.3.self_attn.q_proj").
  std::vector<std::string> targets = {"q_proj", "v_proj"};
  std::optional<std::string> target_regex;
  std::vector<int64_t> layers;  // PEFT's layers_to_transform; empty = every layer

  double scaling() const;
  bool applies_to(int64_t layer, const std::string& module, const std::string& path) const;
  void validate(const std::string& where) const;  // UserError naming `where`
};

// A fresh adapter's full tensors, float32: A [r, in] kaiming-uniform(a = sqrt 5) drawn on
// `device`'s generator, B [out, r] zeros. Before A it makes the two CPU draws that PEFT's (and
// torch::nn::Linear's) constructors of lora_A and lora_B make, so that the sequence of random
// draws, and hence the adapter, is the one HF + PEFT gets with the same seed. A tensor-parallel
// projection draws the full tensors on its device, as tp = 1 does, and keeps its slices, so every
// tp gets the same.
struct LoraWeights {
  at::Tensor a, b;
};
LoraWeights init_lora(int64_t r, int64_t in_features, int64_t out_features, c10::Device device);

// Registers `a` and `b` as parameter `weight` of child modules `lora_A` and `lora_B` of `owner`
// (replacing any), PEFT's names, in `owner`'s train/eval mode. Returns the registered tensors.
LoraWeights register_lora(torch::nn::Module& owner, const at::Tensor& a, const at::Tensor& b);

// y + s * B(A(dropout(x))), LoRA's update added to the base output y: computed in A's dtype
// (float32) from x cast to it, added to y in float32 (one add with alpha, where PEFT multiplies,
// then adds) and cast back to y's dtype. Dropout applies when `training`, with `site`'s masks
// (keyed_dropout.h: keyed by the batch when the trainer set keys, else torch's generator).
// `on_rank_output`, when given, maps A's [..., r] output before B (a row-parallel projection sums
// it over the tp group). `recompute` (selective activation checkpointing; with grad mode on, and no
// `on_rank_output`) saves x (which the base linear keeps anyway), the dropout mask as booleans and
// A's output, instead of two float32 copies of x, and draws the same dropout masks.
at::Tensor add_lora_delta(const at::Tensor& y, const at::Tensor& x, const at::Tensor& a,
                          const at::Tensor& b, double scaling, double dropout,
                          const DropoutSite& site, bool training, bool recompute = false,
                          const std::function<at::Tensor(const at::Tensor&)>& on_rank_output = {});

// W += sign * s B A, in float32 and rounded back to W's dtype, without autograd: merges (sign +1)
// or unmerges (-1) an adapter. The result is new memory that W's tensor takes over (set_data:
// every holder of W sees it), so a W mapped from the checkpoint is never written. With a shard of A
// or B, `weight` is the matching shard of W (column-parallel: B_i A; row-parallel: B A_i).
void merge_lora_delta(const at::Tensor& weight, const at::Tensor& a, const at::Tensor& b,
                      double scaling, int sign);

// A linear map of the model that may carry a LoRA adapter. Tensor parallelism replaces the
// default (LoraLinear) with column/row-parallel versions through ProjectionFactory, so the model
// never knows how its weights are split. Parameters are registered under the checkpoint names:
// `weight`, `bias`, `lora_A.weight`, `lora_B.weight`.
class Projection : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& x) = 0;
  // Reads the frozen `<prefix>.weight` (and `.bias`) from a base checkpoint: on the CPU, without a
  // dtype conversion, a view of the mapped file (Checkpoint::share_into), never written.
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
  // float32 copies of the input (add_lora_delta's `recompute`). A projection may ignore it.
  virtual void set_recompute(bool /*on*/) {}
  // Where the adapter's dropout masks come from (keyed_dropout.h). The model sets it with the
  // adapter; a projection holding a slice of its input's columns adds its column offset.
  virtual void set_dropout_site(DropoutSite site) { dropout_site_ = std::move(site); }

 protected:
  DropoutSite dropout_site_;
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
  bool has_lora() const override { return lora_a_.defined(); }
  void merge_lora() override;
  void unmerge_lora() override;
  void set_recompute(bool on) override { recompute_ = on; }

  const at::Tensor& weight() const { return weight_; }
  bool merged() const { return merged_; }

 private:
  at::Tensor weight_;
  at::Tensor bias_;
  at::Tensor lora_a_;  // lora_A.weight [r, in]
  at::Tensor lora_b_;  // lora_B.weight [out, r]
  double scaling_ = 0.0;
  double dropout_ = 0.0;
  bool merged_ = false;
  bool recompute_ = false;
};

ProjectionFactory lora_linear_factory();

}  // namespace ls
