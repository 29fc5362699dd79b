// Data-parallel gradient sync at 2 and 4 ranks equals one process over the same global batch:
// gradients, losses and parameters after several SGD steps, with one bucket or many, and with
// gradient accumulation over micro-batches.
#include "parallel/grad_sync.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ls::parallel {
namespace {

constexpr double kSyncRtol = 1e-5,
                 kSyncAtol = 1e-6;  // float32; averaging changes the summation order
constexpr int64_t kGlobalBatch = 8;

// A head-sized model: a frozen layer under two trainable ones.
struct Net : torch::nn::Module {
  Net() {
    torch::manual_seed(21);  // the same initial weights on every rank and for the reference
    frozen = register_module("frozen", torch::nn::Linear(6, 6));
    for (auto& p : frozen->parameters()) p.set_requires_grad(false);
    hidden = register_module("hidden", torch::nn::Linear(6, 5));
    score = register_module("score", torch::nn::Linear(5, 3));
  }
  at::Tensor forward(const at::Tensor& x) {
    return score->forward(torch::tanh(hidden->forward(torch::relu(frozen->forward(x)))));
  }
  std::vector<at::Tensor> trainable() {
    std::vector<at::Tensor> out;
    for (auto& p : parameters())
      if (p.requires_grad()) out.push_back(p);
    return out;
  }
  void sgd_step(double lr) {
    torch::NoGradGuard no_grad;
    for (auto& p : trainable()) {
      p.sub_(p.grad() * lr);
      p.mutable_grad().zero_();
    }
  }
  torch::nn::Linear frozen{nullptr}, hidden{nullptr}, score{nullptr};
};

struct Batch {
  at::Tensor x, y;
};

Batch global_batch(int step) {
  torch::manual_seed(100 + step);
  return {torch::randn({kGlobalBatch, 6}), torch::randint(0, 3, {kGlobalBatch})};
}

Batch shard(const Batch& batch, int64_t index, int64_t parts) {
  const int64_t n = batch.x.size(0) / parts;
  return {batch.x.narrow(0, index * n, n), batch.y.narrow(0, index * n, n)};
}

void expect_same_gradients(Net& dp, Net& ref, const std::string& when) {
  auto a = dp.trainable(), b = ref.trainable();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i].grad(), b[i].grad(), kSyncRtol, kSyncAtol))
        << when << ", tensor " << i << ": max abs difference "
        << (a[i].grad() - b[i].grad()).abs().max().item<double>();
}

void expect_same_parameters(Net& dp, Net& ref) {
  auto a = dp.trainable(), b = ref.trainable();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i], b[i], kSyncRtol, kSyncAtol)) << "parameter " << i;
}

class DataParallelGradSyncTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(DataParallelGradSyncTest, EqualsOneProcessOverTheGlobalBatch) {
  auto world = make_world_communicator(at::Device(at::kCPU));
  Net dp, ref;
  DataParallelGradSync sync(world, dp.trainable(), /*bucket_bytes=*/GetParam());
  for (int step = 0; step < 3; ++step) {
    const Batch batch = global_batch(step);
    const Batch mine = shard(batch, world->rank(), world->size());
    at::Tensor loss = torch::cross_entropy_loss(dp.forward(mine.x), mine.y);
    loss.backward();
    // Every gradient is in, so every bucket is already under way before finish().
    EXPECT_EQ(sync.buckets_started(), sync.num_buckets());
    sync.finish();
    const double global_loss = all_reduce_value(*world, loss.item<double>(), ReduceOp::kAvg);

    at::Tensor ref_loss = torch::cross_entropy_loss(ref.forward(batch.x), batch.y);
    ref_loss.backward();
    EXPECT_NEAR(global_loss, ref_loss.item<double>(), 1e-6) << "step " << step;
    expect_same_gradients(dp, ref, "step " + std::to_string(step));
    dp.sgd_step(0.5);
    ref.sgd_step(0.5);
  }
  expect_same_parameters(dp, ref);
}

// 64 bytes: a bucket per tensor or two (4 buckets); the default: everything in one bucket.
INSTANTIATE_TEST_SUITE_P(BucketSizes, DataParallelGradSyncTest,
                         ::testing::Values(int64_t{64}, DataParallelGradSync::kDefaultBucketBytes));

TEST(DataParallelGradSync, BucketsFollowTheSizeLimit) {
  auto world = make_world_communicator(at::Device(at::kCPU));
  Net net;
  EXPECT_EQ(DataParallelGradSync(world, net.trainable()).num_buckets(), 1);
  // Tensors in reverse order: score.bias (12 B), score.weight (60 B), hidden.bias (20 B),
  // hidden.weight (120 B); a bucket closes when the next tensor would pass 64 bytes.
  EXPECT_EQ(DataParallelGradSync(world, net.trainable(), 64).num_buckets(), 4);
}

TEST(DataParallelGradSync, AccumulatedMicroBatchesEqualTheGlobalBatch) {
  auto world = make_world_communicator(at::Device(at::kCPU));
  Net dp, ref;
  DataParallelGradSync sync(world, dp.trainable(), 64);
  const Batch batch = global_batch(7);
  const Batch mine = shard(batch, world->rank(), world->size());
  const int micro_batches = 2;
  for (int m = 0; m < micro_batches; ++m) {
    const bool last = m == micro_batches - 1;
    sync.set_overlap(last);
    const Batch micro = shard(mine, m, micro_batches);
    (torch::cross_entropy_loss(dp.forward(micro.x), micro.y) / micro_batches).backward();
    EXPECT_EQ(sync.buckets_started(), last ? sync.num_buckets() : 0) << "micro-batch " << m;
  }
  sync.finish();
  torch::cross_entropy_loss(ref.forward(batch.x), batch.y).backward();
  expect_same_gradients(dp, ref, "accumulated");
}

}  // namespace
}  // namespace ls::parallel
