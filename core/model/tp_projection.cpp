// The tensor-parallel projection (see tp_projection.h).
#include "core/model/tp_projection.h"

#include <torch/nn/init.h>
#include <torch/nn/module.h>

#include <cmath>
#include <utility>
#include <vector>

#include "core/base/error.h"
#include "core/base/shape_string.h"
#include "core/io/checkpoint.h"
#include "core/model/llama_sharding.h"

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

}  // namespace

TensorParallelProjection::TensorParallelProjection(
    std::shared_ptr<parallel::TensorParallelLinear> linear)
    : linear_(std::move(linear)) {
  register_parameter("weight", linear_->weight(), /*requires_grad=*/false);
  if (linear_->bias().defined()) register_parameter("bias", linear_->bias(), false);
  if (linear_->has_lora()) register_adapter();
}

void TensorParallelProjection::register_adapter() {
  auto children = linear_->named_children();
  for (const char* name : {"lora_A", "lora_B"}) {
    auto holder = children[name];
    holder->train(is_training());
    if (named_children().contains(name))
      replace_module(name, holder);
    else
      register_module(name, holder);
  }
}

at::Tensor TensorParallelProjection::forward(const at::Tensor& x) {
  return linear_->forward(x);
}

void TensorParallelProjection::load_base(const Checkpoint& checkpoint, const std::string& prefix) {
  const auto& o = linear_->options();
  linear_->load_weight(
      checkpoint_slices(checkpoint, prefix + ".weight", {o.out_features, o.in_features}),
      o.bias ? checkpoint_slices(checkpoint, prefix + ".bias", {o.out_features}) : nullptr);
}

void TensorParallelProjection::add_lora(const LoraOptions& options) {
  LS_ASSERT(!merged_, "add_lora on a merged projection");
  {
    // PEFT and LoraLinear build lora_A and lora_B as nn.Linear, whose constructors draw an init
    // of their own before A is drawn again. Drawing the same throw-away tensors keeps the CPU
    // generator in step, so a fresh adapter at any tp is the one a single device gets.
    at::NoGradGuard no_grad;
    const auto& o = linear_->options();
    torch::nn::init::kaiming_uniform_(at::empty({options.r, o.in_features}), std::sqrt(5.0));
    torch::nn::init::kaiming_uniform_(at::empty({o.out_features, options.r}), std::sqrt(5.0));
  }
  linear_->add_lora({options.r, options.alpha, options.dropout, options.use_rslora});
  register_adapter();
}

void TensorParallelProjection::load_lora(const Checkpoint& checkpoint, const std::string& prefix) {
  LS_ASSERT(has_lora(), "load_lora before add_lora on {}", prefix);
  const auto& o = linear_->options();
  linear_->load_lora(
      checkpoint_slices(checkpoint, prefix + ".lora_A.weight", {o.lora.r, o.in_features}),
      checkpoint_slices(checkpoint, prefix + ".lora_B.weight", {o.out_features, o.lora.r}));
}

void TensorParallelProjection::merge_lora() {
  if (!has_lora() || merged_) return;
  linear_->merge_lora();
  merged_ = true;
}

void TensorParallelProjection::unmerge_lora() {
  if (!has_lora() || !merged_) return;
  linear_->unmerge_lora();
  merged_ = false;
}

void TensorParallelProjection::train(bool on) {
  Projection::train(on);
  linear_->train(on);
}

at::Tensor TensorParallelProjection::unshard(const std::string& name,
                                             const at::Tensor& local) const {
  return linear_->unshard(name, local);
}

at::Tensor TensorParallelProjection::owned_part(const std::string& name,
                                                const at::Tensor& local) const {
  return linear_->owned_part(name, local);
}

parallel::LayerShape layer_shape(const LlamaConfig& config) {
  parallel::LayerShape shape;
  shape.hidden_size = config.hidden_size;
  shape.num_attention_heads = config.num_attention_heads;
  shape.num_key_value_heads = config.num_key_value_heads;
  shape.intermediate_size = config.intermediate_size;
  shape.head_dim_override = config.head_dim;
  return shape;
}

ProjectionFactory tensor_parallel_factory(const LlamaConfig& config,
                                          std::shared_ptr<parallel::Communicator> tp) {
  auto plan = std::make_shared<const parallel::TensorParallelPlan>(layer_shape(config), tp->size());
  return [plan, tp = std::move(tp)](const ProjectionSpec& spec) -> std::shared_ptr<Projection> {
    // The adapter comes later through add_lora (r = 0 here), trained in float32 like LoraLinear's.
    auto linear =
        parallel::make_llama_projection(spec.name, *plan, tp, parallel::LoraOptions{}, spec.options,
                                        spec.options.dtype(at::kFloat), spec.bias);
    LS_ASSERT(linear->options().in_features == spec.in_features &&
                  linear->options().out_features == spec.out_features,
              "layer {} {}: the tensor-parallel plan gives {} -> {}, the model asks {} -> {}",
              spec.layer, spec.name, linear->options().in_features, linear->options().out_features,
              spec.in_features, spec.out_features);
    return std::make_shared<TensorParallelProjection>(std::move(linear));
  };
}

}  // namespace ls
