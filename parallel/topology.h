// Topology: the dp x tp grid over the world, and the row ranges tensor-parallel layers split by.
// rank = dp_index * tp + tp_index: a tp group is tp contiguous ranks (mpirun fills a node
// first, so tensor-parallel traffic stays on NVLink); a dp group is the ranks with one tp_index.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "parallel/communicator.h"

namespace ls::parallel {

class Topology {
 public:
  // Splits `world` (collective). Throws UserError when tp does not divide the world size.
  Topology(std::shared_ptr<Communicator> world, int tp);

  int world_size() const { return world_->size(); }
  int rank() const { return world_->rank(); }
  int tp() const { return tp_; }
  int dp() const { return world_size() / tp_; }
  int tp_rank() const { return rank() % tp_; }
  int dp_rank() const { return rank() / tp_; }
  bool is_rank0() const { return rank() == 0; }

  // Shared so that layers and the gradient sync can keep the group they talk to.
  const std::shared_ptr<Communicator>& world() const { return world_; }
  const std::shared_ptr<Communicator>& tp_group() const { return tp_group_; }
  const std::shared_ptr<Communicator>& dp_group() const { return dp_group_; }

 private:
  int tp_;
  std::shared_ptr<Communicator> world_;
  std::shared_ptr<Communicator> tp_group_;
  std::shared_ptr<Communicator> dp_group_;
};

// Rows (or columns) [begin, begin + size) of a full weight: what one tp rank holds.
struct ShardRange {
  int64_t begin = 0;
  int64_t size = 0;
  bool operator==(const ShardRange&) const = default;
};

// tp equal shards of `total` rows, one per tp rank. Throws UserError when tp does not divide it.
std::vector<ShardRange> even_shards(int64_t total, int tp);

}  // namespace ls::parallel
