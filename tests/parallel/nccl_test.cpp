// The NCCL backend on a GPU, world of one (one GPU cannot host two NCCL ranks): the collectives,
// their ordering against torch's current stream, sub-communicators, and a tensor-parallel layer
// with LoRA driven through NCCL, against the CPU math. Skipped on machines without a GPU; the
// multi-rank semantics are the MPI suites', through the same Communicator interface.
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "parallel/communicator.h"
#include "parallel/tp_linear.h"

namespace ls::parallel {
namespace {

class NcclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (c10::cuda::device_count() == 0) GTEST_SKIP() << "no GPU on this machine";
    device_ = pick_device(/*use_cuda=*/true, /*local_rank=*/0, /*local_size=*/1);
    world_ = make_world_communicator(device_);
  }
  at::Tensor cuda(const at::Tensor& t) const { return t.to(device_); }

  at::Device device_{at::kCPU};
  std::shared_ptr<Communicator> world_;
};

TEST_F(NcclTest, CollectivesOfAWorldOfOne) {
  ASSERT_EQ(world_->backend(), "nccl");
  ASSERT_EQ(world_->size(), 1);
  for (at::ScalarType type : {at::kFloat, at::kBFloat16, at::kHalf, at::kLong}) {
    at::Tensor t = cuda(at::arange(6).to(type));
    world_->all_reduce(t, ReduceOp::kSum);
    world_->all_reduce(t, ReduceOp::kAvg);
    world_->all_reduce(t, ReduceOp::kMax);
    EXPECT_TRUE(torch::equal(t.cpu(), at::arange(6).to(type))) << c10::toString(type);
  }
  at::Tensor x = cuda(torch::randn({3, 4}));
  EXPECT_TRUE(torch::equal(all_gather_along(*world_, x, 1).cpu(), x.cpu()));
  at::Tensor gathered = torch::empty({12}, x.options());
  world_->all_gather(x, gathered);
  EXPECT_TRUE(torch::equal(gathered.view({3, 4}).cpu(), x.cpu()));
  at::Tensor scattered = torch::empty({12}, x.options());
  world_->reduce_scatter(x.reshape(-1), scattered, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(scattered.view({3, 4}).cpu(), x.cpu()));
  world_->broadcast(x, 0);
  world_->barrier();
  EXPECT_DOUBLE_EQ(all_reduce_value(*world_, 2.5), 2.5);
  auto sub = world_->split(0, 0);
  EXPECT_EQ(sub->size(), 1);
  EXPECT_EQ(sub->backend(), "nccl");
}

TEST_F(NcclTest, AsyncAllReduceIsOrderedAgainstTheCurrentStream) {
  // Work queued on a side stream before the collective must finish before NCCL reads the tensor,
  // and work queued after wait() must see the result.
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device_.index());
  c10::cuda::CUDAStreamGuard on_side(side);
  at::Tensor big = cuda(torch::ones({1 << 22}));
  for (int i = 0; i < 20; ++i) big.mul_(1.0f).add_(1.0f);  // ends at 21 everywhere
  auto work = world_->all_reduce_async(big, ReduceOp::kSum);
  work->wait();
  at::Tensor after = big * 2;
  EXPECT_EQ(after.min().item<float>(), 42.0f);
  EXPECT_EQ(after.max().item<float>(), 42.0f);
}

TEST_F(NcclTest, ColumnParallelLinearOnTheGpuMatchesTheCpu) {
  torch::manual_seed(31);
  const int64_t in = 16, out = 8;
  at::Tensor w = torch::randn({out, in}), bias = torch::randn({out});
  at::Tensor x = torch::randn({2, 5, in});
  ParallelLinearOptions options;
  options.in_features = in;
  options.out_features = out;
  options.bias = true;
  options.weight_options = at::TensorOptions().device(device_);
  ColumnParallelLinear layer(world_, options);
  layer->load_weight(slice_of(w), slice_of(bias));
  at::Tensor x_gpu = cuda(x).requires_grad_(true);
  at::Tensor y = layer->forward(x_gpu);
  y.sum().backward();
  at::Tensor x_ref = x.clone().requires_grad_(true);
  at::Tensor y_ref = torch::linear(x_ref, w, bias);
  y_ref.sum().backward();
  EXPECT_TRUE(torch::allclose(y.cpu(), y_ref, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(x_gpu.grad().cpu(), x_ref.grad(), 1e-4, 1e-4));
}

}  // namespace
}  // namespace ls::parallel
