// LoRA and the single-device projection (see lora.h).
#include "core/model/lora.h"

#include <torch/nn/init.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "core/base/error.h"
#include "core/io/checkpoint.h"
#include "core/model/activation_checkpoint.h"
#include "core/model/fused_ops.h"

namespace ls {

const std::vector<std::string>& llama_projection_names() {
  static const std::vector<std::string> names = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  return names;
}

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
      fail(
          "{}: LoRA target '{}' is not a LLaMA projection (q_proj, k_proj, v_proj, o_proj, "
          "gate_proj, up_proj, down_proj, all-linear)",
          where, target);
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
  if (recompute_ && at::GradMode::is_enabled()) {
    const auto lora =
        lora_delta_recomputed(x, lora_A_->weight, lora_B_->weight, is_training() ? dropout_ : 0.0);
    return at::add(result, lora, scaling_).to(result.scalar_type());
  }
  auto h = x.to(lora_A_->weight.scalar_type());
  if (dropout_ > 0 && is_training())
    h = h.is_cpu() ? dropout_cpu(h, dropout_) : at::dropout(h, dropout_, /*train=*/true);
  // result + s * B(A(h)) as one add with alpha (PEFT: a multiply, then an add), in float32.
  const auto lora = at::linear(at::linear(h, lora_A_->weight), lora_B_->weight);
  return at::add(result, lora, scaling_).to(result.scalar_type());
}

void LoraLinear::load_base(const Checkpoint& checkpoint, const std::string& prefix) {
  checkpoint.read_into(prefix + ".weight", weight_);
  if (bias_.defined()) checkpoint.read_into(prefix + ".bias", bias_);
}

void LoraLinear::add_lora(const LoraOptions& options) {
  LS_ASSERT(!merged_, "add_lora on a merged projection");
  const auto in = weight_.size(1);
  const auto out = weight_.size(0);
  const auto float32 = at::TensorOptions().dtype(at::kFloat).device(weight_.device());
  auto make = [&](const char* name, int64_t from, int64_t to) {
    auto linear = torch::nn::Linear(torch::nn::LinearOptions(from, to).bias(false));
    linear->to(float32.device(), at::kFloat);
    linear->train(is_training());
    return named_children().contains(name) ? replace_module(name, linear)
                                           : register_module(name, linear);
  };
  lora_A_ = make("lora_A", in, options.r);
  lora_B_ = make("lora_B", options.r, out);
  {
    at::NoGradGuard no_grad;
    torch::nn::init::kaiming_uniform_(lora_A_->weight, std::sqrt(5.0));
    lora_B_->weight.zero_();
  }
  scaling_ = options.scaling();
  dropout_ = options.dropout;
}

void LoraLinear::load_lora(const Checkpoint& checkpoint, const std::string& prefix) {
  LS_ASSERT(has_lora(), "load_lora before add_lora on {}", prefix);
  checkpoint.read_into(prefix + ".lora_A.weight", lora_A_->weight);
  checkpoint.read_into(prefix + ".lora_B.weight", lora_B_->weight);
}

at::Tensor LoraLinear::delta_weight() const {
  return at::matmul(lora_B_->weight.detach(), lora_A_->weight.detach()) * scaling_;
}

void LoraLinear::merge_lora() {
  if (!has_lora() || merged_) return;
  at::NoGradGuard no_grad;
  weight_.copy_(weight_.to(at::kFloat) + delta_weight());
  merged_ = true;
}

void LoraLinear::unmerge_lora() {
  if (!has_lora() || !merged_) return;
  at::NoGradGuard no_grad;
  weight_.copy_(weight_.to(at::kFloat) - delta_weight());
  merged_ = false;
}

ProjectionFactory lora_linear_factory() {
  return [](const ProjectionSpec& spec) { return std::make_shared<LoraLinear>(spec); };
}

}  // namespace ls
