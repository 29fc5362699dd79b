// Tensor-parallel linears over a frozen weight (see tp_linear.h).
#include "parallel/tp_linear.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/base/error.h"
#include "parallel/tp_ops.h"

namespace ls::parallel {

SliceReader slice_of(at::Tensor full) {
  return [full = std::move(full)](int64_t dim, int64_t begin, int64_t size) {
    return full.narrow(dim, begin, size);
  };
}

namespace {

std::vector<ShardRange> checked_shards(std::vector<ShardRange> shards, int64_t total, int tp,
                                       const char* what) {
  if (shards.empty()) return even_shards(total, tp);
  LS_ASSERT(static_cast<int>(shards.size()) == tp, "{} {} shards for a tp group of {}",
            shards.size(), what, tp);
  for (const ShardRange& s : shards)
    LS_ASSERT(s.begin >= 0 && s.size > 0 && s.begin + s.size <= total,
              "{} shard [{}, {}) outside [0, {})", what, s.begin, s.begin + s.size, total);
  return shards;
}

// Shared rows come as identical ranges; anything else must be disjoint.
void check_identical_or_disjoint(const std::vector<ShardRange>& shards) {
  for (size_t i = 0; i < shards.size(); ++i)
    for (size_t j = 0; j < i; ++j) {
      const ShardRange &a = shards[i], &b = shards[j];
      const bool disjoint = a.begin + a.size <= b.begin || b.begin + b.size <= a.begin;
      LS_ASSERT(disjoint || a == b, "shards [{}, {}) and [{}, {}) overlap partly", a.begin,
                a.begin + a.size, b.begin, b.begin + b.size);
    }
}

bool shards_overlap(std::vector<ShardRange> shards) {
  std::sort(shards.begin(), shards.end(),
            [](const ShardRange& a, const ShardRange& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < shards.size(); ++i)
    if (shards[i].begin < shards[i - 1].begin + shards[i - 1].size) return true;
  return false;
}

}  // namespace

at::Tensor TensorSplit::gather(const at::Tensor& local, Communicator& tp) const {
  if (replicated() || tp.size() == 1) return local;
  // Shards may differ in size (and overlap): pad each to the largest, gather, and place each
  // rank's piece at its range. Overlapping rows carry equal values on every holder.
  int64_t widest = 0;
  for (const ShardRange& s : shards) widest = std::max(widest, s.size);
  std::vector<int64_t> padded_shape(local.sizes().begin(), local.sizes().end());
  padded_shape[dim] = widest;
  at::Tensor padded = torch::zeros(padded_shape, local.options());
  padded.narrow(dim, 0, local.size(dim)).copy_(local);
  at::Tensor gathered = torch::empty({tp.size(), padded.numel()}, local.options());
  tp.all_gather(padded, gathered);

  std::vector<int64_t> full_shape = padded_shape;
  full_shape[dim] = full_size;
  at::Tensor full = torch::empty(full_shape, local.options());
  for (int r = 0; r < tp.size(); ++r) {
    const ShardRange& s = shards[r];
    full.narrow(dim, s.begin, s.size).copy_(gathered[r].view(padded_shape).narrow(dim, 0, s.size));
  }
  return full;
}

at::Tensor TensorSplit::owned(const at::Tensor& local, int tp_rank) const {
  const at::Tensor none = local.reshape(-1).narrow(0, 0, 0);
  if (replicated()) return tp_rank == 0 ? local.reshape(-1) : none;
  const ShardRange& mine = shards[tp_rank];
  for (int r = 0; r < tp_rank; ++r)
    if (shards[r] == mine) return none;  // a lower rank counts these rows
  return local.reshape(-1);
}

void TensorSplit::load(const SliceReader& read, int tp_rank, const at::Tensor& into,
                       const char* what) const {
  torch::NoGradGuard no_grad;
  at::Tensor piece = replicated() ? read(0, 0, into.size(0))
                                  : read(dim, shards[tp_rank].begin, shards[tp_rank].size);
  LS_ASSERT(piece.sizes() == into.sizes(), "{} slice {} for a shard of {}", what,
            c10::str(piece.sizes()), c10::str(into.sizes()));
  into.copy_(piece);
}

TensorParallelLinear::TensorParallelLinear(std::shared_ptr<Communicator> tp,
                                           const ParallelLinearOptions& options,
                                           TensorSplit weight_split)
    : tp_(std::move(tp)), options_(options), weight_split_(std::move(weight_split)) {
  const int64_t in = options.in_features, out = options.out_features;
  LS_ASSERT(in > 0 && out > 0, "linear of in {} out {}", in, out);
  const bool column = weight_split_.dim == 0;
  const ShardRange mine = weight_split_.shards[tp_->rank()];
  std::vector<int64_t> weight_shape = {out, in};
  weight_shape[weight_split_.dim] = mine.size;
  weight_ = register_parameter("weight", torch::empty(weight_shape, options.weight_options),
                               /*requires_grad=*/false);
  if (options.bias) {
    bias_split_ = column ? weight_split_ : TensorSplit{};
    bias_ =
        register_parameter("bias", torch::empty({column ? mine.size : out}, options.weight_options),
                           /*requires_grad=*/false);
  }
}

const TensorSplit& TensorParallelLinear::split_of(const std::string& name) const {
  if (name == "weight") return weight_split_;
  if (name == "bias") return bias_split_;
  LS_ASSERT(false, "no parameter '{}' in a tensor-parallel linear", name);
}

void TensorParallelLinear::load_weight(const SliceReader& read_weight,
                                       const SliceReader& read_bias) {
  weight_split_.load(read_weight, tp_->rank(), weight_, "weight");
  LS_ASSERT(bias_.defined() == static_cast<bool>(read_bias),
            "a bias reader must come exactly when the layer has a bias");
  if (bias_.defined()) bias_split_.load(read_bias, tp_->rank(), bias_, "bias");
}

at::Tensor TensorParallelLinear::unshard(const std::string& name, const at::Tensor& local) const {
  return split_of(name).gather(local, *tp_);
}

at::Tensor TensorParallelLinear::owned_part(const std::string& name,
                                            const at::Tensor& local) const {
  return split_of(name).owned(local, tp_->rank());
}

ColumnParallelLinearImpl::ColumnParallelLinearImpl(std::shared_ptr<Communicator> tp,
                                                   const ParallelLinearOptions& options,
                                                   std::vector<ShardRange> rows)
    : TensorParallelLinear(
          tp, options,
          TensorSplit{
              0, checked_shards(std::move(rows), options.out_features, tp->size(), "output row"),
              options.out_features}),
      rows_overlap_(shards_overlap(weight_split_.shards)) {
  check_identical_or_disjoint(weight_split_.shards);
}

at::Tensor ColumnParallelLinearImpl::forward(const at::Tensor& x) {
  return local_forward(copy_to_tp_region(x, *tp_));
}

at::Tensor ColumnParallelLinearImpl::local_forward(const at::Tensor& x_in_region) {
  return torch::linear(x_in_region, weight_, bias_);
}

RowParallelLinearImpl::RowParallelLinearImpl(std::shared_ptr<Communicator> tp,
                                             const ParallelLinearOptions& options,
                                             std::vector<ShardRange> columns)
    : TensorParallelLinear(tp, options,
                           TensorSplit{1,
                                       checked_shards(std::move(columns), options.in_features,
                                                      tp->size(), "input column"),
                                       options.in_features}) {
  LS_ASSERT(!shards_overlap(weight_split_.shards), "row-parallel input columns must not overlap");
}

at::Tensor RowParallelLinearImpl::forward(const at::Tensor& x) {
  at::Tensor y = reduce_from_tp_region(torch::linear(x, weight_), *tp_);
  if (bias_.defined()) y = y + bias_;  // once, after the sum
  return y;
}

namespace {

// Parameter name (as root.named_parameters() gives it) -> the sharded module that owns it and the
// parameter's name inside that module.
using OwnerMap = std::map<std::string, std::pair<const ShardedModule*, std::string>>;

OwnerMap sharded_owners(const torch::nn::Module& root) {
  OwnerMap owner;
  auto note = [&](const torch::nn::Module& module, const std::string& prefix) {
    const auto* sharded = dynamic_cast<const ShardedModule*>(&module);
    if (sharded == nullptr) return;
    for (const auto& param : module.named_parameters())
      owner[prefix + param.key()] = {sharded, param.key()};
  };
  note(root, "");
  for (const auto& item : root.named_modules(/*name_prefix=*/"", /*include_self=*/false))
    note(*item.value(), item.key() + ".");
  return owner;
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> unsharded_parameters(const torch::nn::Module& root,
                                                                     bool trainable_only,
                                                                     bool gradients) {
  const OwnerMap owner = sharded_owners(root);
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& param : root.named_parameters()) {
    const at::Tensor& p = param.value();
    if (trainable_only && !p.requires_grad()) continue;
    at::Tensor local = !gradients           ? p.detach()
                       : p.grad().defined() ? p.grad()
                                            : torch::zeros_like(p);
    auto it = owner.find(param.key());
    out.emplace_back(param.key(), it == owner.end()
                                      ? local
                                      : it->second.first->unshard(it->second.second, local));
  }
  return out;
}

double total_grad_norm(const torch::nn::Module& root, Communicator& tp) {
  const OwnerMap owner = sharded_owners(root);
  // Summed on the device, reduced over the tp group as one tensor, read on the host once.
  at::Tensor sum_of_squares =
      at::zeros({1}, at::TensorOptions().dtype(at::kDouble).device(tp.device()));
  for (const auto& param : root.named_parameters()) {
    const at::Tensor& grad = param.value().grad();
    if (!param.value().requires_grad() || !grad.defined()) continue;
    auto it = owner.find(param.key());
    at::Tensor counted = it != owner.end() ? it->second.first->owned_part(it->second.second, grad)
                         : tp.rank() == 0  ? grad
                                           : grad.reshape(-1).narrow(0, 0, 0);
    sum_of_squares.add_(counted.to(sum_of_squares.device(), at::kDouble).pow(2).sum());
  }
  tp.all_reduce(sum_of_squares, ReduceOp::kSum);
  return std::sqrt(sum_of_squares.item<double>());
}

}  // namespace ls::parallel
