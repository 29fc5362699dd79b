// The dp x tp grid: tp groups on contiguous ranks, dp groups striding by tp.
#include "parallel/topology.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/base/error.h"

namespace ls::parallel {
namespace {

std::shared_ptr<Communicator> cpu_world() {
  return make_world_communicator(at::Device(at::kCPU));
}

// The world ranks of a group's members, in group rank order.
std::vector<int64_t> members(Communicator& group, int world_rank) {
  at::Tensor all = all_gather_along(group, at::full({1}, world_rank, at::kLong), 0);
  return std::vector<int64_t>(all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + all.numel());
}

TEST(Topology, TpGroupsAreContiguousRanksAndDpGroupsStrideByTp) {
  auto comm = cpu_world();
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
  auto comm = cpu_world();
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

}  // namespace
}  // namespace ls::parallel
