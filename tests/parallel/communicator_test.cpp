// Collectives of the Communicator interface on the MPI backend: every operation gives what the
// definition says on 2 and 4 ranks, in every dtype the layers use.
#include "parallel/communicator.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <mpi.h>

namespace ls::parallel {
namespace {

std::shared_ptr<Communicator> world() {
  return make_world_communicator(at::Device(at::kCPU));
}

TEST(Communicator, WorldMatchesMpi) {
  auto comm = world();
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(comm->rank(), rank);
  EXPECT_EQ(comm->size(), size);
  EXPECT_EQ(comm->backend(), "mpi");
  EXPECT_TRUE(comm->device().is_cpu());
}

TEST(Communicator, AllReduceSumAverageAndMax) {
  auto comm = world();
  const int n = comm->size(), r = comm->rank();
  // rank r holds [r, 2r, 3r]: sum = k * n(n-1)/2, average = sum / n, max = k(n-1).
  at::Tensor base = at::arange(1, 4, at::kFloat);
  at::Tensor sum = base * r, avg = base * r, max = base * r;
  comm->all_reduce(sum, ReduceOp::kSum);
  comm->all_reduce(avg, ReduceOp::kAvg);
  comm->all_reduce(max, ReduceOp::kMax);
  EXPECT_TRUE(at::allclose(sum, base * (n * (n - 1) / 2.0)));
  EXPECT_TRUE(at::allclose(avg, base * ((n - 1) / 2.0)));
  EXPECT_TRUE(at::allclose(max, base * (n - 1)));
}

TEST(Communicator, AllReduceSixteenBitFloatsAndIntegers) {
  auto comm = world();
  const int n = comm->size();
  for (at::ScalarType type : {at::kBFloat16, at::kHalf, at::kDouble, at::kLong, at::kInt}) {
    at::Tensor t = at::full({5}, comm->rank() + 1, at::TensorOptions().dtype(type));
    comm->all_reduce(t, ReduceOp::kSum);
    EXPECT_EQ(t.scalar_type(), type);
    EXPECT_TRUE(at::equal(t, at::full({5}, n * (n + 1) / 2, at::TensorOptions().dtype(type))))
        << c10::toString(type) << ": " << t;
  }
}

TEST(Communicator, AsyncAllReducesCompleteInAnyWaitOrder) {
  auto comm = world();
  const int n = comm->size();
  std::vector<at::Tensor> tensors;
  std::vector<std::unique_ptr<Work>> work;
  for (int i = 0; i < 4; ++i) {
    tensors.push_back(at::full({3}, static_cast<float>(i + comm->rank())));
    work.push_back(comm->all_reduce_async(tensors.back(), ReduceOp::kAvg));
  }
  for (int i = 3; i >= 0; --i) {
    work[i]->wait();
    work[i]->wait();  // harmless
    EXPECT_TRUE(at::allclose(tensors[i], at::full({3}, i + (n - 1) / 2.0f))) << i;
  }
}

TEST(Communicator, AllGatherAlongAnyDimension) {
  auto comm = world();
  const int n = comm->size();
  at::Tensor mine = at::full({2, 3}, static_cast<float>(comm->rank()));
  for (int64_t dim : {0, 1, -1}) {
    at::Tensor all = all_gather_along(*comm, mine, dim);
    const int64_t d = dim < 0 ? dim + 2 : dim;
    ASSERT_EQ(all.size(d), mine.size(d) * n);
    for (int r = 0; r < n; ++r)
      EXPECT_TRUE(at::equal(all.narrow(d, r * mine.size(d), mine.size(d)), at::full_like(mine, r)))
          << "dim " << dim << " rank block " << r;
  }
  at::Tensor raw = at::empty({n * 6}, at::kFloat);
  comm->all_gather(mine.reshape(-1), raw);
  EXPECT_TRUE(at::equal(raw.view({n, 6}).select(1, 0), at::arange(n, at::kFloat)));
}

TEST(Communicator, ReduceScatterGivesEachRankItsChunkOfTheSum) {
  auto comm = world();
  const int n = comm->size(), r = comm->rank();
  // Every rank holds rows 0..2n-1 scaled by (rank + 1); the sum scales them by n(n+1)/2.
  at::Tensor rows = at::arange(2 * n, at::kFloat).unsqueeze(1).repeat({1, 3}) * (r + 1);
  at::Tensor chunk = reduce_scatter_along(*comm, rows, 0, ReduceOp::kSum);
  at::Tensor expected =
      at::arange(2 * r, 2 * r + 2, at::kFloat).unsqueeze(1).repeat({1, 3}) * (n * (n + 1) / 2.0f);
  EXPECT_TRUE(at::allclose(chunk, expected)) << chunk;
  at::Tensor cols = rows.t().contiguous();
  at::Tensor col_chunk = reduce_scatter_along(*comm, cols, 1, ReduceOp::kAvg);
  EXPECT_TRUE(at::allclose(col_chunk, expected.t() * (1.0f / n)));
}

TEST(Communicator, BroadcastFromAnyRoot) {
  auto comm = world();
  const int root = comm->size() - 1;
  at::Tensor t = at::full({4}, static_cast<int64_t>(comm->rank() * 10), at::kLong);
  comm->broadcast(t, root);
  EXPECT_TRUE(at::equal(t, at::full({4}, static_cast<int64_t>(root * 10), at::kLong)));
  at::Tensor h = at::full({4}, comm->rank() + 0.5, at::kBFloat16);
  comm->broadcast(h, 0);
  EXPECT_TRUE(at::equal(h, at::full({4}, 0.5, at::kBFloat16)));
}

TEST(Communicator, ValueReductionAndBarrier) {
  auto comm = world();
  const int n = comm->size();
  EXPECT_DOUBLE_EQ(all_reduce_value(*comm, comm->rank() + 1.0), n * (n + 1) / 2.0);
  EXPECT_DOUBLE_EQ(all_reduce_value(*comm, comm->rank(), ReduceOp::kMax), n - 1.0);
  comm->barrier();
}

TEST(Communicator, SplitMakesIndependentGroups) {
  auto comm = world();
  const int n = comm->size(), r = comm->rank();
  // Even and odd ranks; key reverses the order inside a group.
  auto group = comm->split(r % 2, -r);
  const int members = (n + 1 - r % 2) / 2;
  ASSERT_EQ(group->size(), members);
  EXPECT_EQ(group->rank(), members - 1 - r / 2);
  double sum_of_world_ranks = all_reduce_value(*group, r);
  double expected = 0;
  for (int q = r % 2; q < n; q += 2) expected += q;
  EXPECT_DOUBLE_EQ(sum_of_world_ranks, expected);
  // A sub-group of a sub-group works the same way.
  auto single = group->split(group->rank(), 0);
  EXPECT_EQ(single->size(), 1);
  at::Tensor t = at::ones({2});
  single->all_reduce(t, ReduceOp::kSum);
  EXPECT_TRUE(at::equal(t, at::ones({2})));
}

}  // namespace
}  // namespace ls::parallel
