// The tensor-parallel projection: the model's Projection seam backed by parallel's frozen
// column/row-parallel linears (parallel/tp_linear.h), cut as core/model/llama_sharding.h says,
// with the LoRA adapter on top. LsLlama gets it through ModelOptions::projection_factory and never
// learns that its weights are split.
//
// How LoRA is sharded (notation of tp_linear.h: Y = X A, p the tp width). The adapter follows its
// base, so its update lands in the same layout as the base output, and computes with lora.h's
// add_lora_delta, the region functions of parallel/tp_ops.h around it:
//   Column-parallel base (Y_i = X A_i): A_lora replicated, its gradient summed over the group by
//   f applied to the weight; B_lora split by output rows like the base:
//   Y_i += s * (f(X) A_lora^T) B_lora,i^T. f(X) is the copy the base reads too, so dL/dX is
//   summed once. Rows held by several ranks (kv heads replicated under GQA) get the gradient of
//   every use (sum_grad_over_shared_rows on B).
//   Row-parallel base (Y = sum_i X_i A_i): A_lora split by input columns like the base, its
//   [tokens, r] partial output summed by g; B_lora replicated: Y += s * g(X_i A_lora,i^T) B_lora^T.
//   The extra all-reduce carries r numbers per token.
// Dropout masks are keyed (keyed_dropout.h): a replicated input gets the tp = 1 mask on every
// rank, a row-parallel input's slice gets that slice of it (set_dropout_site adds the column
// offset), so tp ranks need no shared seed and the masks equal tp = 1's. A fresh adapter is
// drawn full, on the device type and generator of tp = 1 (init_lora), and cut, so it is the same
// at every tp. Merging folds s B A restricted to the local weight shard
// (column B_i A, row B A_i), with no communication. Selective checkpointing's recomputed LoRA is
// single-device only: set_recompute is ignored here.
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
#include "parallel/tp_linear.h"

namespace ls {

class TensorParallelProjection : public Projection, public parallel::ShardedModule {
 public:
  explicit TensorParallelProjection(std::shared_ptr<parallel::TensorParallelLinear> base);

  // [..., in] -> [..., out]; column-parallel: this rank's output rows, row-parallel: reads this
  // rank's input columns and returns the full output.
  at::Tensor forward(const at::Tensor& x) override;
  // Reads only this rank's slice of `<prefix>.weight` / `.bias` from the mapped checkpoint.
  void load_base(const Checkpoint& checkpoint, const std::string& prefix) override;
  void add_lora(const LoraOptions& options) override;
  // Reads this rank's slices of PEFT's full `<prefix>.lora_A.weight` / `.lora_B.weight`.
  void load_lora(const Checkpoint& checkpoint, const std::string& prefix) override;
  void set_dropout_site(DropoutSite site) override;
  // The same from readers of the full A [r, in] and B [out, r].
  void load_lora(const parallel::SliceReader& read_a, const parallel::SliceReader& read_b);
  bool has_lora() const override { return lora_a_.defined(); }
  void merge_lora() override;
  void unmerge_lora() override;

  at::Tensor unshard(const std::string& name, const at::Tensor& local) const override;
  at::Tensor owned_part(const std::string& name, const at::Tensor& local) const override;

  const parallel::TensorParallelLinear& base() const { return *base_; }
  const at::Tensor& lora_A() const { return lora_a_; }  // this rank's pieces; undefined without
  const at::Tensor& lora_B() const { return lora_b_; }  // an adapter

 private:
  const parallel::TensorSplit& split_of(const std::string& name) const;

  std::shared_ptr<parallel::TensorParallelLinear> base_;
  parallel::ColumnParallelLinearImpl* column_;  // the base, when column-parallel; else null
  // The adapter follows the base: A [r, in] is cut like W's input columns, B [out, r] like W's
  // output rows; the other is replicated.
  parallel::TensorSplit lora_a_split_, lora_b_split_;
  at::Tensor lora_a_, lora_b_;
  int64_t r_ = 0;
  double scaling_ = 0.0;
  double dropout_ = 0.0;
  bool merged_ = false;
};

// Builds every projection tensor-parallel over `tp` (column-parallel q/k/v/gate/up, row-parallel
// o/down). Throws UserError naming the config key when `config`'s heads or FFN size do not fit
// the tp width.
ProjectionFactory tensor_parallel_factory(const LlamaConfig& config,
                                          std::shared_ptr<parallel::Communicator> tp);

}  // namespace ls
