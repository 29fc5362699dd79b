// AdamW (see adamw.h).
#include "core/train/adamw.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <map>
#include <tuple>

#include "core/base/error.h"

namespace ls {

AdamW::AdamW(std::vector<Param> params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  for (const auto& p : params_) {
    LS_ASSERT(p.tensor.scalar_type() == at::kFloat, "{}: AdamW keeps f32 master weights, got {}",
              p.name, c10::toString(p.tensor.scalar_type()));
    exp_avg_.push_back(at::zeros_like(p.tensor));
    exp_avg_sq_.push_back(at::zeros_like(p.tensor));
    fused_steps_.push_back(at::zeros({}, p.tensor.options()));
  }
}

void AdamW::step(double lr) {
  if (options_.fused)
    fused_step(lr);
  else
    reference_step(lr);
}

void AdamW::fused_step(double lr) {
  at::NoGradGuard no_grad;
  ++steps_;
  // One call per (device, decays) group: the kernel takes one weight decay and one device.
  struct Group {
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
  };
  std::map<std::tuple<int, int, bool>, Group> groups;
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& param = params_[i].tensor;
    at::Tensor grad = param.grad();
    if (!grad.defined()) grad = at::zeros_like(param);
    auto& group =
        groups[{static_cast<int>(param.device().type()), param.device().index(), params_[i].decay}];
    group.params.push_back(param);
    group.grads.push_back(grad);
    group.exp_avgs.push_back(exp_avg_[i]);
    group.exp_avg_sqs.push_back(exp_avg_sq_[i]);
    group.steps.push_back(fused_steps_[i]);
  }
  for (auto& [key, group] : groups) {
    const bool decay = std::get<2>(key);
    at::_foreach_add_(group.steps, 1.0);  // as torch.optim.AdamW does: the kernel reads, not counts
    at::_fused_adamw_(group.params, group.grads, group.exp_avgs, group.exp_avg_sqs,
                      /*max_exp_avg_sqs=*/{}, group.steps, lr, options_.beta1, options_.beta2,
                      decay ? options_.weight_decay : 0.0, options_.eps, /*amsgrad=*/false,
                      /*maximize=*/false);
  }
}

void AdamW::reference_step(double lr) {
  at::NoGradGuard no_grad;
  ++steps_;
  const double bias_correction1 = 1 - std::pow(options_.beta1, steps_);
  const double bias_correction2_sqrt = std::sqrt(1 - std::pow(options_.beta2, steps_));
  const double step_size = lr / bias_correction1;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor param = params_[i].tensor;
    at::Tensor grad = param.grad();
    if (!grad.defined()) grad = at::zeros_like(param);
    if (params_[i].decay && options_.weight_decay != 0) param.mul_(1 - lr * options_.weight_decay);
    exp_avg_[i].lerp_(grad, 1 - options_.beta1);
    exp_avg_sq_[i].mul_(options_.beta2).addcmul_(grad, grad, 1 - options_.beta2);
    at::Tensor denom = (exp_avg_sq_[i].sqrt() / bias_correction2_sqrt).add_(options_.eps);
    param.addcdiv_(exp_avg_[i], denom, -step_size);
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_)
    if (p.tensor.grad().defined()) p.tensor.mutable_grad() = at::Tensor();
}

std::map<std::string, at::Tensor> AdamW::state() const {
  std::map<std::string, at::Tensor> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out[params_[i].name + ".exp_avg"] = exp_avg_[i];
    out[params_[i].name + ".exp_avg_sq"] = exp_avg_sq_[i];
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, at::Tensor>& state, long steps) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (auto [suffix, target] :
         {std::pair{".exp_avg", &exp_avg_[i]}, std::pair{".exp_avg_sq", &exp_avg_sq_[i]}}) {
      auto it = state.find(params_[i].name + suffix);
      if (it == state.end()) fail("optimizer state has no '{}{}'", params_[i].name, suffix);
      if (!it->second.sizes().equals(target->sizes()))
        fail("optimizer state '{}{}' has shape {}, the parameter {}", params_[i].name, suffix,
             c10::str(it->second.sizes()), c10::str(target->sizes()));
      target->copy_(it->second);
    }
    fused_steps_[i].fill_(static_cast<double>(steps));
  }
  steps_ = steps;
}

at::Tensor clip_grad_norm_async(const std::vector<at::Tensor>& tensors, double max_norm) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (const auto& t : tensors)
    if (t.grad().defined()) grads.push_back(t.grad());
  if (grads.empty()) return {};
  // torch.nn.utils.clip_grad_norm_: per-tensor norms in one kernel, their norm, then every
  // gradient times min(1, max_norm / (norm + 1e-6)), the clamp done on the device.
  const auto norms = at::_foreach_norm(grads, 2, at::kFloat);
  const auto total = at::stack(norms).norm(2);
  if (max_norm > 0) at::_foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp_max(1.0));
  return total;
}

double clip_grad_norm(const std::vector<at::Tensor>& tensors, double max_norm) {
  const auto total = clip_grad_norm_async(tensors, max_norm);
  return total.defined() ? total.item<double>() : 0.0;
}

void clip_grads_to_norm(const std::vector<at::Tensor>& tensors, double norm, double max_norm) {
  if (max_norm <= 0) return;
  const double coefficient = max_norm / (norm + 1e-6);
  if (coefficient >= 1) return;
  at::NoGradGuard no_grad;
  for (const auto& t : tensors)
    if (t.grad().defined()) t.grad().mul_(coefficient);
}

}  // namespace ls
