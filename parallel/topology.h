// Topology: the dp x tp grid over the world, and who owns which slice of a LLaMA layer.
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

// Rows (or columns) [begin, begin + size) of a full weight.
struct ShardRange {
  int64_t begin = 0;
  int64_t size = 0;
  bool operator==(const ShardRange&) const = default;
};

// The shapes tensor parallelism cuts (the HF config names).
struct LayerShape {
  int64_t hidden_size = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t intermediate_size = 0;
  int64_t head_dim_override = 0;  // config.json "head_dim" when present, else hidden / heads
  int64_t head_dim() const {
    return head_dim_override > 0 ? head_dim_override : hidden_size / num_attention_heads;
  }
};

// Which slice of each projection a tp rank owns. q heads and FFN columns are split evenly. KV
// heads are split when tp divides them; otherwise (tp > kv heads under GQA) each rank holds the
// contiguous kv heads its q heads read, so a kv head is replicated on the tp / kv_heads ranks
// that share it.
class TensorParallelPlan {
 public:
  // Throws UserError naming the config key when tp does not fit the model.
  TensorParallelPlan(const LayerShape& shape, int tp);

  int tp() const { return tp_; }
  const LayerShape& shape() const { return shape_; }
  bool kv_replicated() const { return kv_replicated_; }
  int64_t q_heads_per_rank() const { return shape_.num_attention_heads / tp_; }

  // In heads: q/o (q_proj rows and o_proj columns) and k/v (k_proj, v_proj rows), per tp rank.
  ShardRange q_heads(int tp_rank) const;
  ShardRange kv_heads(int tp_rank) const;
  // The same in rows of the weights (heads * head_dim), for every tp rank in order, as the
  // parallel linears take them.
  std::vector<ShardRange> q_rows() const;
  std::vector<ShardRange> kv_rows() const;
  std::vector<ShardRange> ffn_rows() const;  // gate/up rows, down columns

 private:
  LayerShape shape_;
  int tp_;
  bool kv_replicated_;
};

// tp equal shards of `total` rows, one per tp rank. Throws UserError when tp does not divide it.
std::vector<ShardRange> even_shards(int64_t total, int tp);

}  // namespace ls::parallel
