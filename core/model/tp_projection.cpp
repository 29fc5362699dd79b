// The tensor-parallel projection (see tp_projection.h).
#include "core/model/tp_projection.h"

#include <torch/torch.h>

#include <utility>
#include <vector>

#include "core/base/error.h"
#include "core/base/shape_string.h"
#include "core/io/checkpoint.h"
#include "core/model/llama_sharding.h"
#include "parallel/tp_ops.h"

namespace ls {
namespace {

// Slices of checkpoint tensor `name`, read from the mapped file (only the slice's pages are
// touched), after checking that the full tensor has the shape the unsharded layer would load.
parallel::SliceReader checkpoint_slices(const Checkpoint& checkpoint, const std::string& name,
                                        const std::vector<int64_t>& expected) {
  const SafetensorsFile& file = checkpoint.file_of(name);
  const auto& shape = file.info(name).shape;
  if (shape != expected)
    fail("{}: tensor '{}' has shape {} but the model expects {}", checkpoint.label(), name,
         shape_string(shape), shape_string(expected));
  return [&file, name](int64_t dim, int64_t begin, int64_t size) {
    return file.slice(name, dim, begin, size);
  };
}

// This rank's piece of a full tensor, as a tensor of its own.
at::Tensor local_piece(const at::Tensor& full, const parallel::TensorSplit& split, int tp_rank,
                       const at::TensorOptions& options) {
  const at::Tensor piece = split.replicated() ? full
                                              : full.narrow(split.dim, split.shards[tp_rank].begin,
                                                            split.shards[tp_rank].size);
  return at::empty(piece.sizes(), options).copy_(piece);
}

}  // namespace

TensorParallelProjection::TensorParallelProjection(
    std::shared_ptr<parallel::TensorParallelLinear> base)
    : base_(std::move(base)),
      column_(dynamic_cast<parallel::ColumnParallelLinearImpl*>(base_.get())) {
  register_parameter("weight", base_->weight(), /*requires_grad=*/false);
  if (base_->bias().defined()) register_parameter("bias", base_->bias(), false);
  const parallel::TensorSplit& cut = base_->weight_split();
  if (cut.dim == 1) lora_a_split_ = cut;
  if (cut.dim == 0) lora_b_split_ = cut;
}

at::Tensor TensorParallelProjection::forward(const at::Tensor& x) {
  parallel::Communicator& tp = base_->tp_group();
  const bool adapter = has_lora() && !merged_;
  if (column_ == nullptr) {  // row-parallel: x holds this rank's input columns
    at::Tensor y = base_->forward(x);
    if (!adapter) return y;
    // A's output is a partial sum over the input columns, like the base's: g completes it.
    return add_lora_delta(y, x, lora_a_, lora_b_, scaling_, dropout_, dropout_site_, is_training(),
                          /*recompute=*/false, [&tp](const at::Tensor& partial) {
                            return parallel::reduce_from_tp_region(partial, tp);
                          });
  }
  at::Tensor x_in_region = parallel::copy_to_tp_region(x, tp);
  at::Tensor y = column_->local_forward(x_in_region);
  if (!adapter) return y;
  at::Tensor a = parallel::copy_to_tp_region(lora_a_, tp);
  at::Tensor b = column_->rows_overlap()
                     ? parallel::sum_grad_over_shared_rows(lora_b_, tp, lora_b_split_.shards,
                                                           lora_b_split_.full_size)
                     : lora_b_;
  return add_lora_delta(y, x_in_region, a, b, scaling_, dropout_, dropout_site_, is_training());
}

void TensorParallelProjection::load_base(const Checkpoint& checkpoint, const std::string& prefix) {
  const auto& o = base_->options();
  base_->load_weight(
      checkpoint_slices(checkpoint, prefix + ".weight", {o.out_features, o.in_features}),
      o.bias ? checkpoint_slices(checkpoint, prefix + ".bias", {o.out_features}) : nullptr);
}

void TensorParallelProjection::add_lora(const LoraOptions& options) {
  LS_ASSERT(!merged_, "add_lora on a merged projection");
  const auto& o = base_->options();
  // Drawn full, on the generator and device type a tp = 1 LoraLinear draws on, and cut: the
  // adapter is the same at every tp.
  const c10::Device device = base_->weight().device();
  const LoraWeights full = init_lora(options.r, o.in_features, o.out_features, device);
  const auto float32 = at::TensorOptions().dtype(at::kFloat).device(device);
  const int rank = base_->tp_group().rank();
  const LoraWeights registered =
      register_lora(*this, local_piece(full.a, lora_a_split_, rank, float32),
                    local_piece(full.b, lora_b_split_, rank, float32));
  lora_a_ = registered.a;
  lora_b_ = registered.b;
  r_ = options.r;
  scaling_ = options.scaling();
  dropout_ = options.dropout;
}

void TensorParallelProjection::set_dropout_site(DropoutSite site) {
  // A row-parallel input holds columns [begin, begin + size) of the full input: its mask is
  // that slice of the tp = 1 mask. A column-parallel input is the full (replicated) tensor.
  if (column_ == nullptr)
    site.column_offset = base_->weight_split().shards[base_->tp_group().rank()].begin;
  Projection::set_dropout_site(std::move(site));
}

void TensorParallelProjection::load_lora(const Checkpoint& checkpoint, const std::string& prefix) {
  LS_ASSERT(has_lora(), "load_lora before add_lora on {}", prefix);
  const auto& o = base_->options();
  load_lora(checkpoint_slices(checkpoint, prefix + ".lora_A.weight", {r_, o.in_features}),
            checkpoint_slices(checkpoint, prefix + ".lora_B.weight", {o.out_features, r_}));
}

void TensorParallelProjection::load_lora(const parallel::SliceReader& read_a,
                                         const parallel::SliceReader& read_b) {
  LS_ASSERT(has_lora(), "load_lora before add_lora");
  const int rank = base_->tp_group().rank();
  lora_a_split_.load(read_a, rank, lora_a_, "adapter");
  lora_b_split_.load(read_b, rank, lora_b_, "adapter");
}

void TensorParallelProjection::merge_lora() {
  if (!has_lora() || merged_) return;
  merge_lora_delta(base_->weight(), lora_a_, lora_b_, scaling_, +1);
  merged_ = true;
}

void TensorParallelProjection::unmerge_lora() {
  if (!has_lora() || !merged_) return;
  merge_lora_delta(base_->weight(), lora_a_, lora_b_, scaling_, -1);
  merged_ = false;
}

const parallel::TensorSplit& TensorParallelProjection::split_of(const std::string& name) const {
  if (name == "lora_A.weight") return lora_a_split_;
  LS_ASSERT(name == "lora_B.weight", "no parameter '{}' in a tensor-parallel projection", name);
  return lora_b_split_;
}

at::Tensor TensorParallelProjection::unshard(const std::string& name,
                                             const at::Tensor& local) const {
  if (name == "weight" || name == "bias") return base_->unshard(name, local);
  return split_of(name).gather(local, base_->tp_group());
}

at::Tensor TensorParallelProjection::owned_part(const std::string& name,
                                                const at::Tensor& local) const {
  if (name == "weight" || name == "bias") return base_->owned_part(name, local);
  return split_of(name).owned(local, base_->tp_group().rank());
}

ProjectionFactory tensor_parallel_factory(const LlamaConfig& config,
                                          std::shared_ptr<parallel::Communicator> tp) {
  auto plan = std::make_shared<const TensorParallelPlan>(layer_shape(config), tp->size());
  return [plan, tp = std::move(tp)](const ProjectionSpec& spec) -> std::shared_ptr<Projection> {
    auto base = make_llama_projection(spec.name, *plan, tp, spec.options, spec.bias);
    LS_ASSERT(base->options().in_features == spec.in_features &&
                  base->options().out_features == spec.out_features,
              "layer {} {}: the tensor-parallel plan gives {} -> {}, the model asks {} -> {}",
              spec.layer, spec.name, base->options().in_features, base->options().out_features,
              spec.in_features, spec.out_features);
    return std::make_shared<TensorParallelProjection>(std::move(base));
  };
}

}  // namespace ls
