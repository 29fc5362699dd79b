// Toolchain smoke: libtorch computes and differentiates, and SDPA (the attention every model
// layer uses) is there and agrees with the explicit formula.
#include <gtest/gtest.h>
#include <torch/torch.h>

TEST(TorchSmoke, AutogradMatchesAnalyticGradient) {
  torch::manual_seed(0);
  auto x = torch::randn({4, 3});
  auto w = torch::randn({3, 2}, torch::requires_grad());
  auto loss = x.matmul(w).pow(2).sum();
  loss.backward();
  // d/dW sum((xW)^2) = 2 x^T (x W)
  auto expected = 2 * x.t().matmul(x.matmul(w.detach()));
  EXPECT_TRUE(torch::allclose(w.grad(), expected, 1e-5, 1e-5));
}

TEST(TorchSmoke, ScaledDotProductAttentionMatchesFormula) {
  torch::manual_seed(0);
  auto q = torch::randn({2, 4, 5, 8}), k = torch::randn({2, 4, 5, 8}),
       v = torch::randn({2, 4, 5, 8});
  auto out = at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
  auto scores = q.matmul(k.transpose(-1, -2)) / std::sqrt(8.0);
  auto causal = torch::ones({5, 5}, torch::kBool).tril();
  auto reference = scores.masked_fill(~causal, -INFINITY).softmax(-1).matmul(v);
  EXPECT_TRUE(torch::allclose(out, reference, 1e-5, 1e-5));
}

TEST(TorchSmoke, UsesAnOptimizedCpuBlas) {
  // Debian's libtorch 1.13 used the slow reference BLAS; the pip wheel must not.
  auto config = at::show_config();
  EXPECT_TRUE(config.find("BLAS_INFO=mkl") != std::string::npos ||
              config.find("openblas") != std::string::npos)
      << config;
}
