// Tensor-parallel linear layers (Megatron-LM) with a LoRA adapter that follows its base.
//
// Notation: Y = X A with A = W^T, W the [out, in] weight of nn.Linear, p the tp width.
//
// ColumnParallelLinear: A = [A_1 ... A_p] split by columns (output features; W by rows).
//   X replicated on the tp group; rank i computes Y_i = X A_i, its slice of Y's last dimension.
//   X enters through f (copy_to_tp_region), whose backward sums dL/dX over the group.
//   LoRA: A_lora replicated (its gradient summed over the group by f applied to the weight),
//   B_lora split by output rows like the base: Y_i += s * (X A_lora^T) B_lora,i^T.
//
// RowParallelLinear: A = [A_1; ...; A_p] split by rows (input features; W by columns).
//   X = [X_1 ... X_p] arrives split (the output of a column-parallel layer); rank i computes the
//   partial product X_i A_i and g (reduce_from_tp_region) sums it: Y = sum_i X_i A_i.
//   LoRA: A_lora split by input columns like the base, its [tokens, r] partial output summed by
//   g; B_lora replicated: Y += s * g(X_i A_lora,i^T) B_lora^T. The extra all-reduce carries
//   r numbers per token.
//
// Parameters carry the checkpoint names ("weight", "bias", "lora_A.weight", "lora_B.weight"), so
// named_parameters() is the PEFT map; unsharded_parameters() rebuilds the tp=1 tensors for saving.
// LoRA numerics are PEFT's: y = W x + s * B(A(dropout(x))), s = alpha / r (alpha / sqrt(r) with
// rsLoRA), A kaiming-uniform(a = sqrt 5), B zeros. Dropout on a replicated input draws its mask on
// every tp rank: ranks of a tp group must share their RNG seed for the masks to agree. A
// row-parallel adapter drops its own input slice: masks differ from tp = 1's draws, not in law.
#pragma once

#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/topology.h"

namespace ls::parallel {

struct LoraOptions {
  int64_t r = 0;  // 0: no adapter
  double alpha = 1.0;
  double dropout = 0.0;
  bool use_rslora = false;
  bool enabled() const { return r > 0; }
  double scaling() const;
};

struct ParallelLinearOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = false;  // frozen; split like the output (column) or added once after the sum (row)
  LoraOptions lora;   // r = 0: none yet (add_lora() adds one later)
  at::TensorOptions weight_options = at::TensorOptions().dtype(at::kFloat);  // frozen base
  at::TensorOptions lora_options = at::TensorOptions().dtype(at::kFloat);    // trainable, fp32
};

// Reads the slice [begin, begin + size) along `dim` of one full checkpoint tensor, without
// materialising the rest (a safetensors reader maps the file and copies only the slice).
using SliceReader = std::function<at::Tensor(int64_t dim, int64_t begin, int64_t size)>;
// A reader over a tensor already in memory.
SliceReader slice_of(at::Tensor full);

// A module whose parameters are shards of larger tensors.
class ShardedModule {
 public:
  virtual ~ShardedModule() = default;
  // The full (tp=1) tensor of parameter `name` (as named_parameters() names it in this module),
  // given this rank's `local` piece of it: the parameter itself or its gradient. Collective over
  // the tp group.
  virtual at::Tensor unshard(const std::string& name, const at::Tensor& local) const = 0;
  // The elements of `local` this rank counts in a reduction over the tp group that must see each
  // element of the full tensor once (a gradient norm): its shard, minus rows that a lower tp rank
  // also holds; a replicated tensor counts on tp rank 0 only. Flattened.
  virtual at::Tensor owned_part(const std::string& name, const at::Tensor& local) const = 0;
};

// Shared by the two layers: the parameters, how each is split, loading, init, unsharding.
class TensorParallelLinear : public torch::nn::Module, public ShardedModule {
 public:
  // [..., in] -> [..., out], each side full or split as the layer defines.
  virtual at::Tensor forward(const at::Tensor& x) = 0;

  // Loads this rank's slice of the frozen base weight ([out, in] in the checkpoint) and bias
  // ([out]); they are uninitialised until then.
  void load_weight(const SliceReader& read_weight, const SliceReader& read_bias = nullptr);
  // Adds a fresh adapter (replacing any), initialised by reset_lora().
  void add_lora(const LoraOptions& lora);
  bool has_lora() const { return options_.lora.enabled(); }
  // Loads this rank's slices of an existing adapter (PEFT lora_A [r, in], lora_B [out, r]).
  void load_lora(const SliceReader& read_a, const SliceReader& read_b);
  // PEFT's initialisation. The full A is drawn from torch's default CPU generator and then cut,
  // so the adapter is the same for every tp (ranks seeded alike draw the same numbers).
  void reset_lora();
  // Folds the adapter into the local weight shard for inference, W_i += s B A restricted to the
  // shard (no communication: column B_i A, row B A_i), and back out.
  void merge_lora();
  void unmerge_lora();

  const at::Tensor& weight() const { return weight_; }
  const at::Tensor& bias() const { return bias_; }      // undefined without a bias
  const at::Tensor& lora_A() const { return lora_a_; }  // undefined without an adapter
  const at::Tensor& lora_B() const { return lora_b_; }
  const ParallelLinearOptions& options() const { return options_; }
  Communicator& tp_group() const { return *tp_; }

  at::Tensor unshard(const std::string& name, const at::Tensor& local) const override;
  at::Tensor owned_part(const std::string& name, const at::Tensor& local) const override;

 protected:
  // The split of one parameter: along `dim` (-1: replicated), rank r holding shards[r].
  struct Split {
    int64_t dim = -1;
    std::vector<ShardRange> shards;
  };
  // weight_split: how W [out, in] is cut (dim 0: column, 1: row). The adapter follows it: A's
  // input columns with a row split, B's output rows with a column split; the other replicated.
  TensorParallelLinear(std::shared_ptr<Communicator> tp, const ParallelLinearOptions& options,
                       Split weight_split);

  const Split& split_of(const std::string& name) const;
  bool lora_active() const { return has_lora() && !merged_; }
  at::Tensor lora_input(const at::Tensor& x) const;  // dropout, in the adapter's dtype
  at::Tensor lora_delta() const;                     // s B A for the local weight shard

  std::shared_ptr<Communicator> tp_;
  ParallelLinearOptions options_;
  Split weight_split_, bias_split_, lora_a_split_, lora_b_split_;
  at::Tensor weight_, bias_, lora_a_, lora_b_;
  bool merged_ = false;
};

class ColumnParallelLinearImpl : public TensorParallelLinear {
 public:
  // `rows`: the output rows each tp rank owns, in rank order; empty = equal split. Two ranks'
  // rows are either disjoint or the same (kv heads replicated under GQA,
  // TensorParallelPlan::kv_rows()).
  ColumnParallelLinearImpl(std::shared_ptr<Communicator> tp, const ParallelLinearOptions& options,
                           std::vector<ShardRange> rows = {});
  // [..., in] replicated -> [..., rows of this rank].
  at::Tensor forward(const at::Tensor& x) override;
  ShardRange rows() const { return weight_split_.shards[tp_->rank()]; }

 private:
  bool rows_overlap_;
};
TORCH_MODULE(ColumnParallelLinear);

class RowParallelLinearImpl : public TensorParallelLinear {
 public:
  // `columns`: the input columns each tp rank owns; empty = equal split.
  RowParallelLinearImpl(std::shared_ptr<Communicator> tp, const ParallelLinearOptions& options,
                        std::vector<ShardRange> columns = {});
  // [..., columns of this rank] -> [..., out] replicated.
  at::Tensor forward(const at::Tensor& x) override;
  ShardRange columns() const { return weight_split_.shards[tp_->rank()]; }
};
TORCH_MODULE(RowParallelLinear);

// Every parameter of `root` (trainable ones only, if asked), or its gradient, in the unsharded
// tp=1 layout and named as named_parameters() names it: what a checkpoint saves. Parameters
// outside sharded modules come as they are; a missing gradient comes as zeros. Collective: every
// rank of the tp group calls it with the same module tree.
std::vector<std::pair<std::string, at::Tensor>> unsharded_parameters(const torch::nn::Module& root,
                                                                     bool trainable_only,
                                                                     bool gradients = false);

// The L2 norm of the gradients of `root`'s trainable parameters as the unsharded (tp=1) model
// would compute it, for gradient clipping: every element counted once. Collective over the tp
// group; call after DataParallelGradSync::finish(), when gradients agree across the dp group.
double total_grad_norm(const torch::nn::Module& root, Communicator& tp);

}  // namespace ls::parallel
