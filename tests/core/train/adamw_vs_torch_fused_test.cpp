// AdamW against torch.optim.AdamW(fused=True) itself: tests/fixtures/adamw_fused/golden.safetensors
// (written by make_golden.py there) holds five float32 tensors of mixed shapes, the gradients of
// six steps with a changing learning rate, weight decay 0.1 on the tensors of more than one
// dimension and none on the 1-D ones, and the values after every step. Both implementations are
// run on those gradients. The fused path calls the kernel torch.optim.AdamW(fused=True) calls,
// with the same arguments, so it must match bit for bit; the reference path (the single-tensor
// algorithm) rounds in another order and must stay within a few float32 eps.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/io/checkpoint.h"
#include "core/train/adamw.h"
#include "tests/support/test_util.h"

namespace ls {
namespace {

TEST(AdamWVsTorchFused, BothPathsFollowTorchFusedAdamWStepByStep) {
  const auto golden =
      Checkpoint::open_file(test::source_dir() / "tests/fixtures/adamw_fused/golden.safetensors");
  const auto lrs = golden.view("lrs").clone();
  const int64_t steps = lrs.size(0), count = 5;
  for (const bool fused : {true, false}) {
    std::vector<AdamW::Param> params;
    for (int64_t i = 0; i < count; ++i) {
      auto tensor = golden.view(fmt::format("p{}.init", i)).clone().requires_grad_();
      params.push_back({fmt::format("p{}", i), tensor, tensor.dim() > 1});
    }
    AdamWOptions options{0.9, 0.999, 1e-8, 0.1};
    options.fused = fused;
    AdamW optimizer(params, options);
    double worst = 0;
    for (int64_t s = 0; s < steps; ++s) {
      for (int64_t i = 0; i < count; ++i)
        params[i].tensor.mutable_grad() = golden.view(fmt::format("p{}.grad{}", i, s)).clone();
      optimizer.step(lrs[s].item<double>());
      for (int64_t i = 0; i < count; ++i) {
        const auto expected = golden.view(fmt::format("p{}.after{}", i, s));
        const auto& actual = params[i].tensor;
        worst = std::max(worst, (actual - expected).abs().max().item<double>());
        if (fused)
          EXPECT_TRUE(torch::equal(actual, expected)) << "fused, step " << s << " p" << i;
        else
          EXPECT_TRUE(torch::allclose(actual, expected, 1e-6, 1e-7))
              << "reference, step " << s << " p" << i;
      }
    }
    std::printf("%s vs torch.optim.AdamW(fused=True), 6 steps: max |difference| %.3g\n",
                fused ? "fused" : "reference", worst);
  }
}

}  // namespace
}  // namespace ls
