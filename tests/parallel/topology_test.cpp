// The dp x tp grid (tp groups on contiguous ranks) and the tensor-parallel plan's validation.
#include "parallel/topology.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/base/error.h"
#include "tests/support/mpi_gtest_main.h"

namespace ls::parallel {
namespace {

std::shared_ptr<Communicator> world() {
  return make_world_communicator(at::Device(at::kCPU));
}

// The world ranks of a group's members, in group rank order.
std::vector<int64_t> members(Communicator& group, int world_rank) {
  at::Tensor all = all_gather_along(group, at::full({1}, world_rank, at::kLong), 0);
  return std::vector<int64_t>(all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + all.numel());
}

TEST(Topology, TpGroupsAreContiguousRanksAndDpGroupsStrideByTp) {
  auto comm = world();
  const int n = comm->size(), r = comm->rank();
  for (int tp = 1; tp <= n; ++tp) {
    if (n % tp != 0) continue;
    Topology grid(comm, tp);
    EXPECT_EQ(grid.dp(), n / tp);
    EXPECT_EQ(grid.rank(), grid.dp_rank() * tp + grid.tp_rank());
    EXPECT_EQ(grid.tp_group()->rank(), grid.tp_rank());
    EXPECT_EQ(grid.dp_group()->rank(), grid.dp_rank());
    std::vector<int64_t> tp_expected, dp_expected;
    for (int i = 0; i < tp; ++i) tp_expected.push_back(grid.dp_rank() * tp + i);
    for (int d = 0; d < n / tp; ++d) dp_expected.push_back(d * tp + grid.tp_rank());
    EXPECT_EQ(members(*grid.tp_group(), r), tp_expected) << "tp " << tp;
    EXPECT_EQ(members(*grid.dp_group(), r), dp_expected) << "tp " << tp;
  }
}

TEST(Topology, TpThatDoesNotDivideTheWorldIsAUserError) {
  auto comm = world();
  const int tp = comm->size() + 1;
  try {
    Topology grid(comm, tp);
    FAIL() << "tp " << tp << " accepted on " << comm->size() << " ranks";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.tp = " + std::to_string(tp) +
                                         " does not divide the world size"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(Topology(comm, 0), UserError);
}

LayerShape shape(int64_t hidden, int64_t heads, int64_t kv, int64_t ffn) {
  LayerShape s;
  s.hidden_size = hidden;
  s.num_attention_heads = heads;
  s.num_key_value_heads = kv;
  s.intermediate_size = ffn;
  return s;
}

void expect_user_error(const LayerShape& s, int tp, const std::string& fragment) {
  try {
    TensorParallelPlan plan(s, tp);
    FAIL() << "tp " << tp << " accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(TensorParallelPlan, LlamaShapesSplitHeadsAndFfn) {
  // LLaMA-2-7B: 32 heads (MHA), FFN 11008, tp 8.
  TensorParallelPlan plan7b(shape(4096, 32, 32, 11008), 8);
  EXPECT_FALSE(plan7b.kv_replicated());
  EXPECT_EQ(plan7b.q_heads(3), (ShardRange{12, 4}));
  EXPECT_EQ(plan7b.kv_heads(3), (ShardRange{12, 4}));
  EXPECT_EQ(plan7b.q_rows()[3], (ShardRange{12 * 128, 4 * 128}));
  EXPECT_EQ(plan7b.ffn_rows()[7], (ShardRange{7 * 1376, 1376}));
  // LLaMA-2-70B: 64 heads, 8 kv heads (GQA): tp 8 splits the kv heads one per rank.
  TensorParallelPlan plan70b(shape(8192, 64, 8, 28672), 8);
  EXPECT_FALSE(plan70b.kv_replicated());
  EXPECT_EQ(plan70b.kv_rows()[5], (ShardRange{5 * 128, 128}));
}

TEST(TensorParallelPlan, KvHeadsAreReplicatedWhenTpExceedsThem) {
  // 8 q heads in 2 kv groups of 4, tp 4: ranks 0,1 read kv head 0; ranks 2,3 read kv head 1.
  TensorParallelPlan plan(shape(64, 8, 2, 32), 4);
  EXPECT_TRUE(plan.kv_replicated());
  const int64_t head_dim = 8;
  std::vector<ShardRange> expected = {
      {0, head_dim}, {0, head_dim}, {head_dim, head_dim}, {head_dim, head_dim}};
  EXPECT_EQ(plan.kv_rows(), expected);
  for (int r = 0; r < 4; ++r) {
    // Every q head a rank holds belongs to the kv head it holds.
    const ShardRange q = plan.q_heads(r);
    EXPECT_EQ(q.begin / 4, plan.kv_heads(r).begin);
    EXPECT_EQ((q.begin + q.size - 1) / 4, plan.kv_heads(r).begin);
  }
}

TEST(TensorParallelPlan, ShapesThatDoNotSplitAreUserErrorsNamingTheKey) {
  expect_user_error(shape(4096, 32, 32, 11008), 3, "does not divide the 32 attention heads");
  expect_user_error(shape(64, 8, 8, 100), 8,
                    "does not divide the FFN size 100 (intermediate_size)");
  expect_user_error(shape(96, 12, 4, 48), 6, "key/value heads (num_key_value_heads)");
  expect_user_error(shape(64, 8, 3, 32), 1, "num_key_value_heads");
  expect_user_error(shape(64, 8, 8, 32), 0, "parallel.tp must be at least 1");
}

}  // namespace
}  // namespace ls::parallel

LS_MPI_GTEST_MAIN()
