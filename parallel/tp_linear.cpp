// Tensor-parallel linears with LoRA (see tp_linear.h).
#include "parallel/tp_linear.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/base/error.h"
#include "parallel/tp_ops.h"

namespace ls::parallel {

double LoraOptions::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

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

// This rank's piece of a full tensor read through `read`.
at::Tensor read_piece(const SliceReader& read, int64_t dim, const ShardRange& range) {
  return read(dim < 0 ? 0 : dim, range.begin, range.size);
}

}  // namespace

TensorParallelLinear::TensorParallelLinear(std::shared_ptr<Communicator> tp,
                                           const ParallelLinearOptions& options, Split weight_split)
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
    bias_split_ = column ? weight_split_ : Split{};
    bias_ =
        register_parameter("bias", torch::empty({column ? mine.size : out}, options.weight_options),
                           /*requires_grad=*/false);
  }
  lora_a_split_ = column ? Split{} : Split{1, weight_split_.shards};
  lora_b_split_ = column ? Split{0, weight_split_.shards} : Split{};
  options_.lora.r = 0;
  if (options.lora.enabled()) add_lora(options.lora);
}

const TensorParallelLinear::Split& TensorParallelLinear::split_of(const std::string& name) const {
  if (name == "weight") return weight_split_;
  if (name == "bias") return bias_split_;
  if (name == "lora_A.weight") return lora_a_split_;
  if (name == "lora_B.weight") return lora_b_split_;
  LS_ASSERT(false, "no parameter '{}' in a tensor-parallel linear", name);
}

void TensorParallelLinear::load_weight(const SliceReader& read_weight,
                                       const SliceReader& read_bias) {
  torch::NoGradGuard no_grad;
  const ShardRange mine = weight_split_.shards[tp_->rank()];
  at::Tensor piece = read_piece(read_weight, weight_split_.dim, mine);
  LS_ASSERT(piece.sizes() == weight_.sizes(), "weight slice {} for a shard of {}",
            c10::str(piece.sizes()), c10::str(weight_.sizes()));
  weight_.copy_(piece);
  LS_ASSERT(bias_.defined() == static_cast<bool>(read_bias),
            "a bias reader must come exactly when the layer has a bias");
  if (!bias_.defined()) return;
  at::Tensor bias =
      read_piece(read_bias, 0, bias_split_.dim < 0 ? ShardRange{0, bias_.size(0)} : mine);
  LS_ASSERT(bias.sizes() == bias_.sizes(), "bias slice {} for a shard of {}",
            c10::str(bias.sizes()), c10::str(bias_.sizes()));
  bias_.copy_(bias);
}

void TensorParallelLinear::add_lora(const LoraOptions& lora) {
  LS_ASSERT(lora.enabled() && !merged_, "add_lora with r = {} (merged: {})", lora.r, merged_);
  options_.lora = lora;
  const ShardRange mine = weight_split_.shards[tp_->rank()];
  const int64_t a_in = lora_a_split_.dim == 1 ? mine.size : options_.in_features;
  const int64_t b_out = lora_b_split_.dim == 0 ? mine.size : options_.out_features;
  auto holder = [this](const std::string& name) {
    auto module = std::make_shared<torch::nn::Module>();
    if (named_children().contains(name)) return replace_module(name, module);
    return register_module(name, module);
  };
  lora_a_ = holder("lora_A")->register_parameter(
      "weight", torch::empty({lora.r, a_in}, options_.lora_options));
  lora_b_ = holder("lora_B")->register_parameter(
      "weight", torch::empty({b_out, lora.r}, options_.lora_options));
  reset_lora();
}

void TensorParallelLinear::load_lora(const SliceReader& read_a, const SliceReader& read_b) {
  LS_ASSERT(has_lora(), "load_lora on a linear without an adapter (add_lora first)");
  torch::NoGradGuard no_grad;
  auto load = [&](at::Tensor& param, const SliceReader& read, const Split& split) {
    const ShardRange range =
        split.dim < 0 ? ShardRange{0, param.size(0)} : split.shards[tp_->rank()];
    at::Tensor piece = read_piece(read, split.dim, range);
    LS_ASSERT(piece.sizes() == param.sizes(), "adapter slice {} for a shard of {}",
              c10::str(piece.sizes()), c10::str(param.sizes()));
    param.copy_(piece);
  };
  load(lora_a_, read_a, lora_a_split_);
  load(lora_b_, read_b, lora_b_split_);
}

void TensorParallelLinear::reset_lora() {
  if (!has_lora()) return;
  torch::NoGradGuard no_grad;
  // The same call as an unsharded LoRA layer makes (PEFT: kaiming_uniform_, a = sqrt 5), on CPU.
  at::Tensor full_a = torch::empty({options_.lora.r, options_.in_features}, torch::kFloat);
  torch::nn::init::kaiming_uniform_(full_a, std::sqrt(5.0));
  lora_a_.copy_(lora_a_split_.dim < 0
                    ? full_a
                    : full_a.narrow(1, lora_a_split_.shards[tp_->rank()].begin, lora_a_.size(1)));
  lora_b_.zero_();
}

at::Tensor TensorParallelLinear::lora_delta() const {
  return (torch::matmul(lora_b_, lora_a_) * options_.lora.scaling()).to(weight_.scalar_type());
}

void TensorParallelLinear::merge_lora() {
  LS_ASSERT(has_lora() && !merged_, "merge_lora needs an unmerged adapter");
  torch::NoGradGuard no_grad;
  weight_.add_(lora_delta());
  merged_ = true;
}

void TensorParallelLinear::unmerge_lora() {
  LS_ASSERT(merged_, "unmerge_lora without a merged adapter");
  torch::NoGradGuard no_grad;
  weight_.sub_(lora_delta());
  merged_ = false;
}

at::Tensor TensorParallelLinear::lora_input(const at::Tensor& x) const {
  at::Tensor in = x.to(lora_a_.scalar_type());
  return options_.lora.dropout > 0 ? torch::dropout(in, options_.lora.dropout, is_training()) : in;
}

at::Tensor TensorParallelLinear::unshard(const std::string& name, const at::Tensor& local) const {
  const Split& split = split_of(name);
  if (split.dim < 0 || tp_->size() == 1) return local;
  // Shards may differ in size (and overlap): pad each to the largest, gather, and place each
  // rank's piece at its range. Overlapping rows carry equal values on every holder.
  int64_t widest = 0;
  for (const ShardRange& s : split.shards) widest = std::max(widest, s.size);
  std::vector<int64_t> padded_shape(local.sizes().begin(), local.sizes().end());
  padded_shape[split.dim] = widest;
  at::Tensor padded = torch::zeros(padded_shape, local.options());
  padded.narrow(split.dim, 0, local.size(split.dim)).copy_(local);
  at::Tensor gathered = torch::empty({tp_->size(), padded.numel()}, local.options());
  tp_->all_gather(padded, gathered);

  std::vector<int64_t> full_shape = padded_shape;
  full_shape[split.dim] = split.dim == 0 ? options_.out_features : options_.in_features;
  at::Tensor full = torch::empty(full_shape, local.options());
  for (int r = 0; r < tp_->size(); ++r) {
    const ShardRange& s = split.shards[r];
    full.narrow(split.dim, s.begin, s.size)
        .copy_(gathered[r].view(padded_shape).narrow(split.dim, 0, s.size));
  }
  return full;
}

at::Tensor TensorParallelLinear::owned_part(const std::string& name,
                                            const at::Tensor& local) const {
  const Split& split = split_of(name);
  const at::Tensor none = local.reshape(-1).narrow(0, 0, 0);
  if (split.dim < 0) return tp_->rank() == 0 ? local.reshape(-1) : none;
  const ShardRange& mine = split.shards[tp_->rank()];
  for (int r = 0; r < tp_->rank(); ++r)
    if (split.shards[r] == mine) return none;  // a lower rank counts these rows
  return local.reshape(-1);
}

ColumnParallelLinearImpl::ColumnParallelLinearImpl(std::shared_ptr<Communicator> tp,
                                                   const ParallelLinearOptions& options,
                                                   std::vector<ShardRange> rows)
    : TensorParallelLinear(tp, options,
                           Split{0, checked_shards(std::move(rows), options.out_features,
                                                   tp->size(), "output row")}),
      rows_overlap_(shards_overlap(weight_split_.shards)) {
  check_identical_or_disjoint(weight_split_.shards);
}

at::Tensor ColumnParallelLinearImpl::forward(const at::Tensor& input) {
  at::Tensor x = copy_to_tp_region(input, *tp_);
  at::Tensor y = torch::linear(x, weight_, bias_);
  if (!lora_active()) return y;
  at::Tensor a = copy_to_tp_region(lora_a_, *tp_);
  at::Tensor b = rows_overlap_ ? sum_grad_over_shared_rows(lora_b_, *tp_, weight_split_.shards,
                                                           options_.out_features)
                               : lora_b_;
  at::Tensor update = torch::linear(torch::linear(lora_input(x), a), b) * options_.lora.scaling();
  return y + update.to(y.scalar_type());
}

RowParallelLinearImpl::RowParallelLinearImpl(std::shared_ptr<Communicator> tp,
                                             const ParallelLinearOptions& options,
                                             std::vector<ShardRange> columns)
    : TensorParallelLinear(tp, options,
                           Split{1, checked_shards(std::move(columns), options.in_features,
                                                   tp->size(), "input column")}) {
  LS_ASSERT(!shards_overlap(weight_split_.shards), "row-parallel input columns must not overlap");
}

at::Tensor RowParallelLinearImpl::forward(const at::Tensor& x) {
  at::Tensor y = reduce_from_tp_region(torch::linear(x, weight_), *tp_);
  if (bias_.defined()) y = y + bias_;  // once, after the sum
  if (!lora_active()) return y;
  at::Tensor h = reduce_from_tp_region(torch::linear(lora_input(x), lora_a_), *tp_);
  at::Tensor update = torch::linear(h, lora_b_) * options_.lora.scaling();
  return y + update.to(y.scalar_type());
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

  double sum_of_squares = 0;
  for (const auto& param : root.named_parameters()) {
    const at::Tensor& grad = param.value().grad();
    if (!param.value().requires_grad() || !grad.defined()) continue;
    auto it = owner.find(param.key());
    at::Tensor counted = it != owner.end() ? it->second.first->owned_part(it->second.second, grad)
                         : tp.rank() == 0  ? grad
                                           : grad.reshape(-1).narrow(0, 0, 0);
    sum_of_squares += counted.to(torch::kDouble).pow(2).sum().item<double>();
  }
  return std::sqrt(all_reduce_value(tp, sum_of_squares, ReduceOp::kSum));
}

}  // namespace ls::parallel
