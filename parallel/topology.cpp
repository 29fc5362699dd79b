// The dp x tp grid and the tensor-parallel plan (see topology.h).
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

TensorParallelPlan::TensorParallelPlan(const LayerShape& shape, int tp)
    : shape_(shape), tp_(tp), kv_replicated_(false) {
  if (tp < 1) fail("parallel.tp must be at least 1, got {}", tp);
  const int64_t heads = shape.num_attention_heads, kv = shape.num_key_value_heads;
  if (heads <= 0 || kv <= 0 || heads % kv != 0 || shape.head_dim() <= 0)
    fail(
        "model config: num_attention_heads = {} must be a positive multiple of "
        "num_key_value_heads = {}, with a positive head_dim",
        heads, kv);
  if (heads % tp != 0)
    fail("parallel.tp = {} does not divide the {} attention heads (num_attention_heads)", tp,
         heads);
  if (shape.intermediate_size % tp != 0)
    fail("parallel.tp = {} does not divide the FFN size {} (intermediate_size)", tp,
         shape.intermediate_size);
  kv_replicated_ = kv % tp != 0;
  // Replication keeps kv heads whole: every rank's q heads must read the same kv heads, which
  // holds when tp is a multiple of the kv heads.
  if (kv_replicated_ && tp % kv != 0)
    fail(
        "parallel.tp = {} neither divides nor is a multiple of the {} key/value heads "
        "(num_key_value_heads)",
        tp, kv);
}

ShardRange TensorParallelPlan::q_heads(int tp_rank) const {
  return {tp_rank * q_heads_per_rank(), q_heads_per_rank()};
}

ShardRange TensorParallelPlan::kv_heads(int tp_rank) const {
  const int64_t kv = shape_.num_key_value_heads;
  if (!kv_replicated_) return {tp_rank * (kv / tp_), kv / tp_};
  // tp / kv ranks share each kv head; a rank's q heads all belong to one kv group.
  return {tp_rank / (tp_ / kv), 1};
}

namespace {
std::vector<ShardRange> rows_of(const std::vector<ShardRange>& heads, int64_t head_dim) {
  std::vector<ShardRange> rows;
  for (const ShardRange& h : heads) rows.push_back({h.begin * head_dim, h.size * head_dim});
  return rows;
}
}  // namespace

std::vector<ShardRange> TensorParallelPlan::q_rows() const {
  std::vector<ShardRange> heads;
  for (int r = 0; r < tp_; ++r) heads.push_back(q_heads(r));
  return rows_of(heads, shape_.head_dim());
}

std::vector<ShardRange> TensorParallelPlan::kv_rows() const {
  std::vector<ShardRange> heads;
  for (int r = 0; r < tp_; ++r) heads.push_back(kv_heads(r));
  return rows_of(heads, shape_.head_dim());
}

std::vector<ShardRange> TensorParallelPlan::ffn_rows() const {
  return even_shards(shape_.intermediate_size, tp_);
}

}  // namespace ls::parallel
