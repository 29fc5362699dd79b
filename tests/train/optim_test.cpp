// AdamW equals libtorch's torch::optim::AdamW (the C++ twin of torch.optim.AdamW) step by step,
// with and without weight decay on a tensor; schedules follow HF's warmup semantics; clipping
// follows clip_grad_norm_; optimizer state round-trips.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/adamw.h"
#include "core/lr_schedule.h"

TEST(AdamW, MatchesTorchAdamWOverSteps) {
  torch::manual_seed(0);
  auto a = torch::randn({4, 3}), b = torch::randn({5});
  auto a_ref = a.clone().requires_grad_(), b_ref = b.clone().requires_grad_();
  a.requires_grad_();
  b.requires_grad_();
  ls::AdamW ours({{"a", a, true}, {"b", b, false}}, {0.9, 0.999, 1e-8, 0.01});
  torch::optim::AdamW reference(
      std::vector<torch::optim::OptimizerParamGroup>{
          torch::optim::OptimizerParamGroup({a_ref}, std::make_unique<torch::optim::AdamWOptions>(
                                                         torch::optim::AdamWOptions(1e-2).weight_decay(0.01))),
          torch::optim::OptimizerParamGroup({b_ref}, std::make_unique<torch::optim::AdamWOptions>(
                                                         torch::optim::AdamWOptions(1e-2).weight_decay(0.0)))},
      torch::optim::AdamWOptions(1e-2));
  for (int step = 0; step < 5; ++step) {
    auto x = torch::randn({3});
    auto loss = [&](const at::Tensor& A, const at::Tensor& B) { return (A.matmul(x).sin().sum() + B.pow(3).sum()); };
    ours.zero_grad();
    loss(a, b).backward();
    ours.step(1e-2);
    reference.zero_grad();
    loss(a_ref, b_ref).backward();
    reference.step();
    ASSERT_TRUE(torch::allclose(a, a_ref, 1e-6, 1e-7)) << "step " << step;
    ASSERT_TRUE(torch::allclose(b, b_ref, 1e-6, 1e-7)) << "step " << step;
  }
  EXPECT_EQ(ours.steps(), 5);
}

TEST(AdamW, StateRoundTripsExactly) {
  auto w = torch::randn({3}).requires_grad_();
  ls::AdamW first({{"w", w, true}}, {});
  w.sum().backward();
  first.step(0.1);
  auto w2 = w.detach().clone().requires_grad_();
  ls::AdamW second({{"w", w2, true}}, {});
  second.load_state(first.state(), first.steps());
  first.zero_grad();
  second.zero_grad();
  (w * w).sum().backward();
  (w2 * w2).sum().backward();
  first.step(0.1);
  second.step(0.1);
  EXPECT_TRUE(torch::equal(w, w2));
}

TEST(ClipGradNorm, ScalesToMaxNormAndReportsTheNormBefore) {
  auto a = torch::zeros({2}).requires_grad_(), b = torch::zeros({1}).requires_grad_();
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  double norm = ls::clip_grad_norm({a, b}, 1.0);
  EXPECT_NEAR(norm, 5.0, 1e-6);
  EXPECT_NEAR(a.grad()[0].item<float>(), 3.0 / (5.0 + 1e-6), 1e-6);
  EXPECT_NEAR(b.grad()[0].item<float>(), 4.0 / (5.0 + 1e-6), 1e-6);
}

TEST(LrSchedule, WarmupThenLinearOrCosineDecay) {
  ls::LrSchedule s{ls::ScheduleKind::kLinear, 1.0, 10, 2};
  EXPECT_DOUBLE_EQ(s.lr(0), 0.0);
  EXPECT_DOUBLE_EQ(s.lr(1), 0.5);
  EXPECT_DOUBLE_EQ(s.lr(2), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(6), 0.5);
  EXPECT_DOUBLE_EQ(s.lr(10), 0.0);
  s.kind = ls::ScheduleKind::kCosine;
  EXPECT_NEAR(s.lr(6), 0.5, 1e-12);
  EXPECT_NEAR(s.lr(4), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-12);
  s.kind = ls::ScheduleKind::kConstant;
  EXPECT_DOUBLE_EQ(s.lr(9), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(1), 0.5);
}
