// AdamW equals libtorch's torch::optim::AdamW (the C++ twin of torch.optim.AdamW) step by step,
// with and without weight decay on a tensor, on both its paths (fused kernel and reference loop);
// state saved by either path resumes on either; schedules follow HF's warmup semantics; clipping
// follows clip_grad_norm_; optimizer state round-trips. The comparison with
// torch.optim.AdamW(fused=True) itself is tests/core/train/adamw_vs_torch_fused_test.cpp.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/train/adamw.h"
#include "core/train/lr_schedule.h"

TEST(AdamW, MatchesTorchAdamWOverSteps) {
  torch::manual_seed(0);
  auto a = torch::randn({4, 3}), b = torch::randn({5});
  auto a_ref = a.clone().requires_grad_(), b_ref = b.clone().requires_grad_();
  a.requires_grad_();
  b.requires_grad_();
  ls::AdamW ours({{"a", a, true}, {"b", b, false}}, {0.9, 0.999, 1e-8, 0.01});
  torch::optim::AdamW reference(
      std::vector<torch::optim::OptimizerParamGroup>{
          torch::optim::OptimizerParamGroup(
              {a_ref}, std::make_unique<torch::optim::AdamWOptions>(
                           torch::optim::AdamWOptions(1e-2).weight_decay(0.01))),
          torch::optim::OptimizerParamGroup(
              {b_ref}, std::make_unique<torch::optim::AdamWOptions>(
                           torch::optim::AdamWOptions(1e-2).weight_decay(0.0)))},
      torch::optim::AdamWOptions(1e-2));
  for (int step = 0; step < 5; ++step) {
    auto x = torch::randn({3});
    auto loss = [&](const at::Tensor& A, const at::Tensor& B) {
      return (A.matmul(x).sin().sum() + B.pow(3).sum());
    };
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

// The fused kernel, the reference loop and libtorch's AdamW, on a mix of shapes with one group
// decayed and 1-D tensors not, over several steps. float32 throughout: the three order their
// roundings differently, so they agree to a few float32 eps of the values, not bit for bit.
TEST(AdamW, FusedReferenceAndTorchAdamWAgreeOnMixedShapesAndDecayGroups) {
  torch::manual_seed(0);
  const std::vector<std::vector<int64_t>> shapes = {{7, 5}, {3}, {2, 3, 4}, {1}, {12, 1}};
  std::vector<at::Tensor> fused, reference, torch_ref;
  std::vector<ls::AdamW::Param> fused_params, reference_params;
  std::vector<at::Tensor> decayed, not_decayed;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto init = torch::randn(shapes[i]);
    fused.push_back(init.clone().requires_grad_());
    reference.push_back(init.clone().requires_grad_());
    torch_ref.push_back(init.clone().requires_grad_());
    const bool decay = shapes[i].size() > 1;
    fused_params.push_back({fmt::format("p{}", i), fused.back(), decay});
    reference_params.push_back({fmt::format("p{}", i), reference.back(), decay});
    (decay ? decayed : not_decayed).push_back(torch_ref.back());
  }
  ls::AdamWOptions options{0.9, 0.999, 1e-8, 0.1};
  options.fused = true;
  ls::AdamW fused_opt(fused_params, options);
  options.fused = false;
  ls::AdamW reference_opt(reference_params, options);
  auto group = [](std::vector<at::Tensor> params, double decay) {
    return torch::optim::OptimizerParamGroup(
        std::move(params), std::make_unique<torch::optim::AdamWOptions>(
                               torch::optim::AdamWOptions(1e-2).weight_decay(decay)));
  };
  torch::optim::AdamW torch_opt(
      std::vector<torch::optim::OptimizerParamGroup>{group(decayed, 0.1), group(not_decayed, 0.0)},
      torch::optim::AdamWOptions(1e-2));
  auto loss = [](const std::vector<at::Tensor>& ps, int step) {
    at::Tensor total = torch::zeros({});
    for (size_t i = 0; i < ps.size(); ++i)
      total = total + (ps[i] * (static_cast<double>(i) + 1 + step)).sin().sum() +
              ps[i].pow(2).sum() * 0.1;
    return total;
  };
  for (int step = 0; step < 8; ++step) {
    const double lr = 1e-2 * (step + 1) / 8.0;  // the lr changes every step, as with a schedule
    fused_opt.zero_grad();
    loss(fused, step).backward();
    fused_opt.step(lr);
    reference_opt.zero_grad();
    loss(reference, step).backward();
    reference_opt.step(lr);
    for (auto& g : torch_opt.param_groups())
      static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    torch_opt.zero_grad();
    loss(torch_ref, step).backward();
    torch_opt.step();
    for (size_t i = 0; i < shapes.size(); ++i) {
      EXPECT_TRUE(torch::allclose(fused[i], reference[i], 1e-5, 1e-6))
          << "step " << step << " p" << i;
      EXPECT_TRUE(torch::allclose(reference[i], torch_ref[i], 1e-6, 1e-7))
          << "step " << step << " p" << i;
      EXPECT_TRUE(torch::allclose(fused[i], torch_ref[i], 1e-5, 1e-6))
          << "step " << step << " p" << i;
    }
  }
  double worst = 0;
  for (size_t i = 0; i < shapes.size(); ++i)
    worst = std::max(worst, (fused[i] - reference[i]).abs().max().item<double>());
  std::printf("fused vs reference after 8 steps: max |difference| %.3g\n", worst);
  EXPECT_EQ(fused_opt.steps(), 8);
}

// Saved by one implementation, resumed by either: the resumed run follows the uninterrupted one
// (bit for bit when the implementation is the same).
TEST(AdamW, StateResumesAcrossFusedAndReference) {
  for (const bool first_fused : {true, false}) {
    for (const bool second_fused : {true, false}) {
      torch::manual_seed(1);
      const auto init = torch::randn({4, 3});
      auto w = init.clone().requires_grad_();
      ls::AdamWOptions options;
      options.fused = first_fused;
      ls::AdamW first({{"w", w, true}}, options);
      for (int step = 0; step < 3; ++step) {
        first.zero_grad();
        (w * w * (step + 1)).sum().backward();
        first.step(0.1);
      }
      auto w2 = w.detach().clone().requires_grad_();
      options.fused = second_fused;
      ls::AdamW second({{"w", w2, true}}, options);
      second.load_state(first.state(), first.steps());
      for (int step = 3; step < 5; ++step) {
        first.zero_grad();
        second.zero_grad();
        (w * w * (step + 1)).sum().backward();
        (w2 * w2 * (step + 1)).sum().backward();
        first.step(0.1);
        second.step(0.1);
      }
      const auto what =
          fmt::format("saved by {}, resumed by {}", first_fused ? "fused" : "reference",
                      second_fused ? "fused" : "reference");
      if (first_fused == second_fused)
        EXPECT_TRUE(torch::equal(w, w2)) << what;
      else
        EXPECT_TRUE(torch::allclose(w, w2, 1e-5, 1e-6)) << what;
      EXPECT_EQ(second.steps(), 5) << what;
    }
  }
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
