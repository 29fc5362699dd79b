// Fused element-wise autograd functions (see fused_ops.h). Forwards run with grad mode off (a
// custom function records nothing inside), so they may work in place on their own temporaries.
#include "core/model/fused_ops.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/base/error.h"

namespace ls {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class FusedRmsNorm : public torch::autograd::Function<FusedRmsNorm> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            double eps) {
    const auto x32 = x.to(at::kFloat);
    // HF's ops in HF's order: pow, mean, + eps, rsqrt, multiply, cast, times weight.
    auto rstd = x32.pow(2).mean(-1, /*keepdim=*/true).add_(eps).rsqrt_();
    auto normed = (x32 * rstd).to(x.scalar_type());
    ctx->save_for_backward({x, weight, rstd});
    if (normed.scalar_type() != weight.scalar_type()) return weight * normed;  // promotes
    return normed.mul_(weight);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &rstd = saved[2];
    const auto& grad = grads[0];
    const auto x32 = x.to(at::kFloat);
    at::Tensor grad_x, grad_weight;
    if (ctx->needs_input_grad(0)) {
      // y = x * rstd(x): dx = rstd * g - x * rstd^3 * mean(g * x), g the gradient at y, taken
      // through the weight and the cast as autograd would.
      auto g = (grad * weight).to(at::kFloat);
      const auto coefficient = (g * x32).mean(-1, /*keepdim=*/true).mul_(rstd.pow(3));
      grad_x = g.mul_(rstd).addcmul_(x32, coefficient, /*value=*/-1).to(x.scalar_type());
    }
    if (ctx->needs_input_grad(1)) {
      const auto normed = (x32 * rstd).to(x.scalar_type());
      grad_weight = (grad * normed).reshape({-1, weight.numel()}).sum(0).to(weight.scalar_type());
    }
    return {grad_x, grad_weight, at::Tensor()};
  }
};

// [a, b] -> [b, a] along the last dimension.
at::Tensor swap_halves(const at::Tensor& t) {
  const auto half = t.size(-1) / 2;
  return at::cat({t.narrow(-1, half, half), t.narrow(-1, 0, half)}, -1);
}

class FusedRope : public torch::autograd::Function<FusedRope> {
 public:
  // x * cos + rotate_half(x) * sin = x * cos + swap_halves(x) * sin_rotated: rotate_half(x) is
  // [-x2, x1] and sin_rotated [-s1, s2], and negation is exact, so the bits are HF's.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin_rotated, const at::Tensor& sin_rotated_t) {
    ctx->save_for_backward({cos, sin_rotated_t});
    auto out = x * cos;
    return out.add_(swap_halves(x).mul_(sin_rotated));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    LS_ASSERT(!ctx->needs_input_grad(1) && !ctx->needs_input_grad(2) && !ctx->needs_input_grad(3),
              "RoPE tables are constants, yet a gradient was asked for them");
    const auto& grad = grads[0];
    // The transpose of x -> swap_halves(x) * sin_rotated is g -> swap_halves(g) * sin_rotated_t.
    auto grad_x = grad * saved[0];
    grad_x.addcmul_(swap_halves(grad), saved[1]);
    return {grad_x, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

class FusedSwiglu : public torch::autograd::Function<FusedSwiglu> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    ctx->save_for_backward({gate, up});
    return at::silu(gate) * up;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &gate = saved[0], &up = saved[1];
    const auto& grad = grads[0];
    at::Tensor grad_gate, grad_up;
    // The ops autograd runs for silu(gate) * up, so the same bits.
    if (ctx->needs_input_grad(0)) grad_gate = at::silu_backward(grad * up, gate);
    if (ctx->needs_input_grad(1)) grad_up = grad * at::silu(gate);
    return {grad_gate, grad_up};
  }
};

}  // namespace

at::Tensor fused_rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return FusedRmsNorm::apply(x, weight, eps);
}

at::Tensor fused_rope(const at::Tensor& x, const RopeTables& tables) {
  if (tables.sin_rotated.defined())
    return FusedRope::apply(x, tables.cos, tables.sin_rotated, tables.sin_rotated_t);
  const auto [sin_rotated, sin_rotated_t] = rotated_sin_tables(tables.sin);
  return FusedRope::apply(x, tables.cos, sin_rotated, sin_rotated_t);
}

at::Tensor fused_swiglu(const at::Tensor& gate, const at::Tensor& up) {
  return FusedSwiglu::apply(gate, up);
}

at::Tensor dropout_keep_mask(const at::Tensor& like, double p) {
  LS_ASSERT(like.is_cpu(), "dropout_keep_mask draws from the CPU generator, got a {} tensor",
            like.device().str());
  // A float64 tensor laid out as `like`, so the uniforms fill it in bernoulli_'s order.
  return at::empty_like(like, like.options().dtype(at::kDouble)).uniform_(0, 1) < 1 - p;
}

at::Tensor dropout_cpu(const at::Tensor& x, double p) {
  LS_ASSERT(x.is_cpu(), "dropout_cpu on a {} tensor", x.device().str());
  // at::dropout's CPU path: noise = bernoulli_(1 - p) in x's dtype, noise /= 1 - p, x * noise.
  auto noise = at::empty_like(x);
  at::lt_out(noise, at::empty_like(x, x.options().dtype(at::kDouble)).uniform_(0, 1), 1 - p);
  return x * noise.div_(1 - p);
}

}  // namespace ls
