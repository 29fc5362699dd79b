// core/model/fused_ops against the plain ATen formulas they replace: forwards bit-equal (HF's
// numerics) in float32 and bf16, gradients equal to autograd's up to rounding order, and the CPU
// dropout noise equal to at::dropout's (same masks, same bits, same generator state afterwards).
#include "core/model/fused_ops.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/torch.h>

#include <vector>

#include "core/model/rope.h"
#include "tests/support/test_util.h"

namespace ls {
namespace {

at::Tensor plain_rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const auto x32 = x.to(at::kFloat);
  const auto normed = x32 * at::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

// Gradients of sum(f(inputs) * probe) with respect to `inputs`.
template <typename F>
std::vector<at::Tensor> grads_of(F f, std::vector<at::Tensor> inputs, const at::Tensor& probe) {
  for (auto& input : inputs) input = input.detach().clone().requires_grad_(true);
  const auto out = f(inputs);
  return torch::autograd::grad({(out.to(at::kFloat) * probe).sum()}, inputs);
}

// Tolerance on gradients: float32 rounding, or one bf16 ulp relative.
double gradient_tolerance(c10::ScalarType dtype) {
  return dtype == at::kFloat ? 1e-5 : 1e-2;
}

TEST(FusedOps, RmsNormForwardIsBitEqualAndGradientsMatchAutograd) {
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    torch::manual_seed(0);
    const auto x = at::randn({4, 6, 64}).to(dtype);
    const auto weight = (at::rand({64}) + 0.5).to(dtype);
    EXPECT_TRUE(fused_rms_norm(x, weight, 1e-6).equal(plain_rms_norm(x, weight, 1e-6)))
        << c10::toString(dtype);
    const auto probe = at::randn({4, 6, 64});
    const auto fused = grads_of(
        [](const std::vector<at::Tensor>& in) { return fused_rms_norm(in[0], in[1], 1e-6); },
        {x, weight}, probe);
    const auto plain = grads_of(
        [](const std::vector<at::Tensor>& in) { return plain_rms_norm(in[0], in[1], 1e-6); },
        {x, weight}, probe);
    for (size_t i = 0; i < fused.size(); ++i)
      EXPECT_LE(test::relative_error(fused[i], plain[i]), gradient_tolerance(dtype))
          << c10::toString(dtype) << (i == 0 ? " grad x" : " grad weight");
  }
}

TEST(FusedOps, RopeForwardIsBitEqualAndGradientsMatchAutograd) {
  LlamaConfig config;
  config.head_dim = 16;
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    torch::manual_seed(0);
    const auto tables =
        rope_tables(rope_inverse_frequencies(config), at::arange(10).unsqueeze(0), dtype);
    // [B, T, heads, d] seen as [B, heads, T, d], as the attention layer passes it.
    const auto x = at::randn({2, 10, 3, 16}).to(dtype).transpose(1, 2);
    EXPECT_TRUE(fused_rope(x, tables).equal(apply_rope(x, tables))) << c10::toString(dtype);
    const RopeTables cos_sin_only{tables.cos, tables.sin, {}, {}};
    EXPECT_TRUE(fused_rope(x, cos_sin_only).equal(apply_rope(x, tables))) << c10::toString(dtype);
    const auto probe = at::randn({2, 3, 10, 16});
    const auto fused = grads_of(
        [&](const std::vector<at::Tensor>& in) { return fused_rope(in[0], tables); }, {x}, probe);
    const auto plain = grads_of(
        [&](const std::vector<at::Tensor>& in) { return apply_rope(in[0], tables); }, {x}, probe);
    EXPECT_LE(test::relative_error(fused[0], plain[0]), gradient_tolerance(dtype))
        << c10::toString(dtype);
  }
}

TEST(FusedOps, SwigluGivesAutogradsBits) {
  torch::manual_seed(0);
  const auto gate = at::randn({4, 5, 24}), up = at::randn({4, 5, 24});
  const auto probe = at::randn({4, 5, 24});
  const auto plain = grads_of(
      [](const std::vector<at::Tensor>& in) { return at::silu(in[0]) * in[1]; }, {gate, up}, probe);
  EXPECT_TRUE(fused_swiglu(gate, up).equal(at::silu(gate) * up));
  const auto fused =
      grads_of([](const std::vector<at::Tensor>& in) { return fused_swiglu(in[0], in[1]); },
               {gate, up}, probe);
  EXPECT_TRUE(fused[0].equal(plain[0])) << "grad gate";
  EXPECT_TRUE(fused[1].equal(plain[1])) << "grad up";
}

TEST(FusedOps, CpuDropoutDrawsAtDropoutsMasksAndLeavesTheGeneratorAsItDoes) {
  const std::vector<at::Tensor> inputs = {at::randn({8, 16, 32}),
                                          at::randn({16, 8, 32}).transpose(0, 1), at::randn({7})};
  for (const auto& x : inputs) {
    for (const double p : {0.1, 0.5}) {
      torch::manual_seed(5);
      const auto expected = at::dropout(x, p, /*train=*/true);
      const auto expected_next = at::rand({4});
      torch::manual_seed(5);
      const auto noise = at::empty_like(x).bernoulli_(1 - p);
      torch::manual_seed(5);
      const auto actual = dropout_cpu(x, p);
      const auto actual_next = at::rand({4});
      torch::manual_seed(5);
      const auto keep = dropout_keep_mask(x, p);
      EXPECT_TRUE(actual.equal(expected)) << "p " << p;
      EXPECT_TRUE(actual_next.equal(expected_next)) << "generator state after, p " << p;
      EXPECT_TRUE(keep.equal(noise.to(at::kBool))) << "mask, p " << p;
    }
  }
}

}  // namespace
}  // namespace ls
