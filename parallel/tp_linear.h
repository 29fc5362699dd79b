// Tensor-parallel linear layers (Megatron-LM) over a frozen weight.
//
// Notation: Y = X A with A = W^T, W the [out, in] weight of nn.Linear, p the tp width.
//
// ColumnParallelLinear: A = [A_1 ... A_p] split by columns (output features; W by rows).
//   X replicated on the tp group; rank i computes Y_i = X A_i + b_i, its slice of Y's last
//   dimension. X enters through f (copy_to_tp_region), whose backward sums dL/dX over the group.
//
// RowParallelLinear: A = [A_1; ...; A_p] split by rows (input features; W by columns).
//   X = [X_1 ... X_p] arrives split (the output of a column-parallel layer); rank i computes the
//   partial product X_i A_i and g (reduce_from_tp_region) sums it: Y = sum_i X_i A_i + b, the bias
//   added once, after the sum.
//
// The weight and bias are frozen and carry the checkpoint names ("weight", "bias"); each rank
// loads only its slice. A layer is a ShardedModule: unsharded_parameters() rebuilds the tp = 1
// tensors of a module tree for saving, total_grad_norm() counts each element once. A module that
// adds trainable tensors around these layers (an adapter) describes their cut with a TensorSplit.
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

struct ParallelLinearOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = false;  // split like the output (column) or added once after the sum (row)
  at::TensorOptions weight_options = at::TensorOptions().dtype(at::kFloat);
};

// Reads the slice [begin, begin + size) along `dim` of one full checkpoint tensor, without
// materialising the rest (a safetensors reader maps the file and copies only the slice).
using SliceReader = std::function<at::Tensor(int64_t dim, int64_t begin, int64_t size)>;
// A reader over a tensor already in memory.
SliceReader slice_of(at::Tensor full);

// How one tensor is cut over a tp group: along `dim`, rank r holding [shards[r].begin,
// + shards[r].size) of `full_size`; dim = -1: replicated, every rank holds the whole tensor.
// Two ranks' ranges are either disjoint or the same (kv heads replicated under GQA).
struct TensorSplit {
  int64_t dim = -1;
  std::vector<ShardRange> shards;
  int64_t full_size = 0;

  bool replicated() const { return dim < 0; }
  // The full tensor from every rank's `local` piece (collective over `tp`).
  at::Tensor gather(const at::Tensor& local, Communicator& tp) const;
  // The elements of `local` that rank `tp_rank` counts so that the tp group sees each element of
  // the full tensor once: its shard, unless a lower rank holds the same range; a replicated
  // tensor on rank 0 only. Flattened.
  at::Tensor owned(const at::Tensor& local, int tp_rank) const;
  // Copies rank `tp_rank`'s piece of the full tensor that `read` reads into `into`, checking its
  // shape (`what` names the tensor in the error).
  void load(const SliceReader& read, int tp_rank, const at::Tensor& into, const char* what) const;
};

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

// Shared by the two layers: the frozen parameters, how each is split, loading, unsharding.
class TensorParallelLinear : public torch::nn::Module, public ShardedModule {
 public:
  // [..., in] -> [..., out], each side full or split as the layer defines.
  virtual at::Tensor forward(const at::Tensor& x) = 0;

  // Loads this rank's slice of the weight ([out, in] in the checkpoint) and bias ([out]); they
  // are uninitialised until then.
  void load_weight(const SliceReader& read_weight, const SliceReader& read_bias = nullptr);

  // The local shards. The weight may be changed in place (without autograd) by its owner.
  const at::Tensor& weight() const { return weight_; }
  const at::Tensor& bias() const { return bias_; }  // undefined without a bias
  const ParallelLinearOptions& options() const { return options_; }
  Communicator& tp_group() const { return *tp_; }
  // How W [out, in] is cut: dim 0 (output rows) for column, dim 1 (input columns) for row.
  const TensorSplit& weight_split() const { return weight_split_; }

  at::Tensor unshard(const std::string& name, const at::Tensor& local) const override;
  at::Tensor owned_part(const std::string& name, const at::Tensor& local) const override;

 protected:
  TensorParallelLinear(std::shared_ptr<Communicator> tp, const ParallelLinearOptions& options,
                       TensorSplit weight_split);

  const TensorSplit& split_of(const std::string& name) const;

  std::shared_ptr<Communicator> tp_;
  ParallelLinearOptions options_;
  TensorSplit weight_split_, bias_split_;
  at::Tensor weight_, bias_;
};

class ColumnParallelLinearImpl : public TensorParallelLinear {
 public:
  // `rows`: the output rows each tp rank owns, in rank order; empty = equal split. Two ranks'
  // rows are either disjoint or the same (a model may replicate some rows, as kv heads under GQA).
  ColumnParallelLinearImpl(std::shared_ptr<Communicator> tp, const ParallelLinearOptions& options,
                           std::vector<ShardRange> rows = {});
  // [..., in] replicated -> [..., rows of this rank]: Y_i = f(X) A_i + b_i.
  at::Tensor forward(const at::Tensor& x) override;
  // The same without f, for a caller that applies copy_to_tp_region itself and feeds the one copy
  // to another branch as well, so that dL/dX is summed over the group once.
  at::Tensor local_forward(const at::Tensor& x_in_region);
  ShardRange rows() const { return weight_split_.shards[tp_->rank()]; }
  // Whether some output rows are held by more than one rank.
  bool rows_overlap() const { return rows_overlap_; }

 private:
  bool rows_overlap_;
};
TORCH_MODULE(ColumnParallelLinear);

class RowParallelLinearImpl : public TensorParallelLinear {
 public:
  // `columns`: the input columns each tp rank owns; empty = equal split.
  RowParallelLinearImpl(std::shared_ptr<Communicator> tp, const ParallelLinearOptions& options,
                        std::vector<ShardRange> columns = {});
  // [..., columns of this rank] -> [..., out] replicated: Y = g(X_i A_i) + b.
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
// group (one all-reduce and one host read per call); call after DataParallelGradSync::finish(),
// when gradients agree across the dp group.
double total_grad_norm(const torch::nn::Module& root, Communicator& tp);

}  // namespace ls::parallel
