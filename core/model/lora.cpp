// LoRA's math and the single-device projection (see lora.h).
#include "core/model/lora.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/init.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "core/base/error.h"
#include "core/io/checkpoint.h"
#include "core/model/fused_ops.h"

namespace ls {

double LoraOptions::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

bool LoraOptions::applies_to(int64_t layer, const std::string& module,
                             const std::string& path) const {
  if (!layers.empty() && std::find(layers.begin(), layers.end(), layer) == layers.end())
    return false;
  if (target_regex) return std::regex_match(path, std::regex(*target_regex));
  return std::any_of(targets.begin(), targets.end(), [&](const std::string& target) {
    return target == module || target == "all-linear";
  });
}

void LoraOptions::validate(const std::string& where) const {
  if (r <= 0) fail("{}: LoRA rank r must be positive, got {}", where, r);
  if (dropout < 0 || dropout >= 1)
    fail("{}: LoRA dropout must be in [0, 1), got {}", where, dropout);
  if (target_regex) {
    try {
      std::regex check(*target_regex);
    } catch (const std::regex_error&) {
      fail("{}: target_modules '{}' is not a valid regular expression", where, *target_regex);
    }
    return;
  }
  if (targets.empty()) fail("{}: LoRA target_modules is empty", where);
  const auto& known = llama_projection_names();
  for (const auto& target : targets)
    if (target != "all-linear" && std::find(known.begin(), known.end(), target) == known.end())
      fail("{}: LoRA target '{}' is not a LLaMA projection ({}, all-linear)", where, target,
           fmt::join(known, ", "));
}

LoraWeights init_lora(int64_t r, int64_t in_features, int64_t out_features, c10::Device device) {
  at::NoGradGuard no_grad;
  // PEFT builds lora_A and lora_B as nn.Linear, whose constructors draw an init of their own (on
  // the CPU) before A is drawn again: the same throw-away draws keep the generator in step.
  torch::nn::init::kaiming_uniform_(at::empty({r, in_features}), std::sqrt(5.0));
  torch::nn::init::kaiming_uniform_(at::empty({out_features, r}), std::sqrt(5.0));
  const auto float32 = at::TensorOptions().dtype(at::kFloat).device(device);
  LoraWeights weights{at::empty({r, in_features}, float32), at::zeros({out_features, r}, float32)};
  torch::nn::init::kaiming_uniform_(weights.a, std::sqrt(5.0));
  return weights;
}

LoraWeights register_lora(torch::nn::Module& owner, const at::Tensor& a, const at::Tensor& b) {
  auto holder = [&owner](const std::string& name, const at::Tensor& weight) {
    auto module = std::make_shared<torch::nn::Module>();
    auto registered = module->register_parameter("weight", weight);
    module->train(owner.is_training());
    if (owner.named_children().contains(name))
      owner.replace_module(name, module);
    else
      owner.register_module(name, module);
    return registered;
  };
  LoraWeights registered;
  registered.a = holder("lora_A", a);
  registered.b = holder("lora_B", b);
  return registered;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// A dropout mask as an argument autograd does not treat as an input (it may be undefined).
struct KeepMask {
  at::Tensor keep;  // bool; undefined without dropout
};

// B(A(dropout(float32(x)))), not yet scaled, from the dropout mask, saving x, the mask and the
// rank-r A output instead of two float32 copies of x.
class LoraDeltaRecomputed : public torch::autograd::Function<LoraDeltaRecomputed> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& lora_a,
                            const at::Tensor& lora_b, const KeepMask& mask, double dropout) {
    const at::Tensor& keep = mask.keep;
    auto h = x.to(lora_a.scalar_type());
    if (keep.defined()) h = h * keep.to(h.scalar_type()).div_(1 - dropout);
    const auto a = at::linear(h, lora_a);
    ctx->save_for_backward({x, lora_a, lora_b, a, keep});
    ctx->saved_data["dropout"] = dropout;
    return at::linear(a, lora_b);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &lora_a = saved[1], &lora_b = saved[2], &a = saved[3],
               &keep = saved[4];
    const double dropout = ctx->saved_data["dropout"].to<double>();
    const auto& grad = grads[0];
    const auto rank = a.size(-1);
    const auto grad_2d = grad.reshape({-1, grad.size(-1)});
    at::Tensor grad_x, grad_a, grad_b;
    const auto grad_mid = grad.matmul(lora_b);  // d/d(A output)
    if (ctx->needs_input_grad(2)) grad_b = grad_2d.t().mm(a.reshape({-1, rank}));
    at::Tensor noise;  // the scaled mask, as at::dropout multiplied by it
    if (keep.defined()) noise = keep.to(lora_a.scalar_type()).div_(1 - dropout);
    if (ctx->needs_input_grad(1)) {
      auto h = x.to(lora_a.scalar_type());
      if (noise.defined()) h = h * noise;
      grad_a = grad_mid.reshape({-1, rank}).t().mm(h.reshape({-1, h.size(-1)}));
    }
    if (ctx->needs_input_grad(0)) {
      auto g = grad_mid.matmul(lora_a);
      if (noise.defined()) g = g * noise;
      grad_x = g.to(x.scalar_type());
    }
    return {grad_x, grad_a, grad_b, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor add_lora_delta(const at::Tensor& y, const at::Tensor& x, const at::Tensor& a,
                          const at::Tensor& b, double scaling, double dropout,
                          const DropoutSite& site, bool training, bool recompute,
                          const std::function<at::Tensor(const at::Tensor&)>& on_rank_output) {
  const double p = training ? dropout : 0.0;
  at::Tensor delta;
  if (recompute && at::GradMode::is_enabled()) {
    LS_ASSERT(!on_rank_output, "a recomputed LoRA update takes no map of A's output");
    at::Tensor keep;  // undefined: no dropout
    if (p > 0) {
      if (site.keyed())
        keep = site.keep_mask(x, p);
      else if (x.is_cpu())
        keep = dropout_keep_mask(x, p);  // at::dropout's CPU draws
      else  // on accelerators at::dropout is native_dropout; its mask is what we keep
        keep = std::get<1>(at::native_dropout(x.to(a.scalar_type()), p, /*train=*/true));
    }
    delta = LoraDeltaRecomputed::apply(x, a, b, KeepMask{keep}, p);
  } else {
    auto h = x.to(a.scalar_type());
    if (p > 0) h = site.apply(h, p);
    auto rank_output = at::linear(h, a);
    if (on_rank_output) rank_output = on_rank_output(rank_output);
    delta = at::linear(rank_output, b);
  }
  return at::add(y, delta, scaling).to(y.scalar_type());
}

void merge_lora_delta(const at::Tensor& weight, const at::Tensor& a, const at::Tensor& b,
                      double scaling, int sign) {
  at::NoGradGuard no_grad;
  const auto delta = at::matmul(b.detach(), a.detach()) * scaling;
  const auto merged = sign > 0 ? weight.to(at::kFloat) + delta : weight.to(at::kFloat) - delta;
  // New memory, never a write into the old: a frozen weight may be a view of the mapped
  // checkpoint (Checkpoint::share_into), which is read, never written.
  weight.set_data(merged.to(weight.scalar_type()));
}

LoraLinear::LoraLinear(const ProjectionSpec& spec) {
  weight_ =
      register_parameter("weight", at::empty({spec.out_features, spec.in_features}, spec.options),
                         /*requires_grad=*/false);
  if (spec.bias)
    bias_ = register_parameter("bias", at::empty({spec.out_features}, spec.options), false);
}

at::Tensor LoraLinear::forward(const at::Tensor& x) {
  auto result =
      at::linear(x, weight_, bias_.defined() ? std::optional<at::Tensor>(bias_) : std::nullopt);
  if (!has_lora() || merged_) return result;
  return add_lora_delta(result, x, lora_a_, lora_b_, scaling_, dropout_, dropout_site_,
                        is_training(), recompute_);
}

void LoraLinear::load_base(const Checkpoint& checkpoint, const std::string& prefix) {
  checkpoint.share_into(prefix + ".weight", weight_);
  if (bias_.defined()) checkpoint.share_into(prefix + ".bias", bias_);
}

void LoraLinear::add_lora(const LoraOptions& options) {
  LS_ASSERT(!merged_, "add_lora on a merged projection");
  const auto fresh = init_lora(options.r, weight_.size(1), weight_.size(0), weight_.device());
  const auto registered = register_lora(*this, fresh.a, fresh.b);
  lora_a_ = registered.a;
  lora_b_ = registered.b;
  scaling_ = options.scaling();
  dropout_ = options.dropout;
}

void LoraLinear::load_lora(const Checkpoint& checkpoint, const std::string& prefix) {
  LS_ASSERT(has_lora(), "load_lora before add_lora on {}", prefix);
  checkpoint.read_into(prefix + ".lora_A.weight", lora_a_);
  checkpoint.read_into(prefix + ".lora_B.weight", lora_b_);
}

void LoraLinear::merge_lora() {
  if (!has_lora() || merged_) return;
  merge_lora_delta(weight_, lora_a_, lora_b_, scaling_, +1);
  merged_ = true;
}

void LoraLinear::unmerge_lora() {
  if (!has_lora() || !merged_) return;
  merge_lora_delta(weight_, lora_a_, lora_b_, scaling_, -1);
  merged_ = false;
}

ProjectionFactory lora_linear_factory() {
  return [](const ProjectionSpec& spec) { return std::make_shared<LoraLinear>(spec); };
}

}  // namespace ls
