// The dp x tp grid (see topology.h).
#include "parallel/topology.h"

#include "core/base/error.h"

namespace ls::parallel {

Topology::Topology(std::shared_ptr<Communicator> world, int tp)
    : tp_(tp), world_(std::move(world)) {
  if (tp < 1) fail("parallel.tp must be at least 1, got {}", tp);
  if (world_->size() % tp != 0)
    fail("parallel.tp = {} does not divide the world size {} (mpirun -np): use a divisor of {}", tp,
         world_->size(), world_->size());
  const int tp_index = world_->rank() % tp;
  const int dp_index = world_->rank() / tp;
  tp_group_ = world_->split(/*color=*/dp_index, /*key=*/tp_index);
  dp_group_ = world_->split(/*color=*/tp_index, /*key=*/dp_index);
}

std::vector<ShardRange> even_shards(int64_t total, int tp) {
  LS_ASSERT(tp >= 1, "tp = {}", tp);
  LS_ASSERT(total % tp == 0, "{} rows do not split evenly over tp = {}", total, tp);
  std::vector<ShardRange> shards;
  for (int i = 0; i < tp; ++i) shards.push_back({i * (total / tp), total / tp});
  return shards;
}

}  // namespace ls::parallel
