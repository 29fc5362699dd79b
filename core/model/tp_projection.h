// The tensor-parallel projection: the model's Projection seam backed by parallel's column/row
// parallel linears (parallel/tp_linear.h), cut as core/model/llama_sharding.h says. LsLlama gets it
// through ModelOptions::projection_factory and never learns that its weights are split.
//
// Parameter names stay those of a single-device LoraLinear (`weight`, `bias`, `lora_A.weight`,
// `lora_B.weight`): the parallel layer is held, not registered as a child, and its tensors are
// registered here under their own names. The module is a parallel::ShardedModule, so
// parallel::unsharded_parameters() and parallel::total_grad_norm() see through it.
#pragma once

#include <memory>
#include <string>

#include "core/model/llama_config.h"
#include "core/model/lora.h"
#include "parallel/communicator.h"
#include "parallel/topology.h"
#include "parallel/tp_linear.h"

namespace ls {

class TensorParallelProjection : public Projection, public parallel::ShardedModule {
 public:
  explicit TensorParallelProjection(std::shared_ptr<parallel::TensorParallelLinear> linear);

  // [..., in] -> [..., out]; column-parallel: this rank's output rows, row-parallel: reads this
  // rank's input columns and returns the full output.
  at::Tensor forward(const at::Tensor& x) override;
  // Reads only this rank's slice of `<prefix>.weight` / `.bias` from the mapped checkpoint.
  void load_base(const Checkpoint& checkpoint, const std::string& prefix) override;
  void add_lora(const LoraOptions& options) override;
  // Reads this rank's slices of PEFT's full `<prefix>.lora_A.weight` / `.lora_B.weight`.
  void load_lora(const Checkpoint& checkpoint, const std::string& prefix) override;
  bool has_lora() const override { return linear_->has_lora(); }
  void merge_lora() override;
  void unmerge_lora() override;
  // The parallel layer is not a child module, so train/eval mode is passed on here.
  void train(bool on = true) override;

  at::Tensor unshard(const std::string& name, const at::Tensor& local) const override;
  at::Tensor owned_part(const std::string& name, const at::Tensor& local) const override;

  const parallel::TensorParallelLinear& linear() const { return *linear_; }

 private:
  void register_adapter();  // the layer's lora_A / lora_B holders, as children of this module

  std::shared_ptr<parallel::TensorParallelLinear> linear_;
  bool merged_ = false;
};

// The LLaMA layer shapes tensor parallelism cuts, from an HF config.
parallel::LayerShape layer_shape(const LlamaConfig& config);

// Builds every projection tensor-parallel over `tp` (column-parallel q/k/v/gate/up, row-parallel
// o/down). Throws UserError naming the config key when `config`'s heads or FFN size do not fit
// the tp width.
ProjectionFactory tensor_parallel_factory(const LlamaConfig& config,
                                          std::shared_ptr<parallel::Communicator> tp);

}  // namespace ls
