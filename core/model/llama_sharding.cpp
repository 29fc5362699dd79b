// LLaMA projection names -> tensor-parallel layers and the plan that cuts them (see
// llama_sharding.h).
#include "core/model/llama_sharding.h"

#include <fmt/ranges.h>

#include <algorithm>

#include "core/base/error.h"

namespace ls {

LayerShape layer_shape(const LlamaConfig& config) {
  LayerShape shape;
  shape.hidden_size = config.hidden_size;
  shape.num_attention_heads = config.num_attention_heads;
  shape.num_key_value_heads = config.num_key_value_heads;
  shape.intermediate_size = config.intermediate_size;
  shape.head_dim_override = config.head_dim;
  return shape;
}

bool is_llama_projection(const std::string& name) {
  const auto& names = llama_projection_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

LinearShape llama_projection_shape(const LayerShape& shape, const std::string& name) {
  const int64_t hidden = shape.hidden_size;
  const int64_t q_width = shape.num_attention_heads * shape.head_dim();
  const int64_t kv_width = shape.num_key_value_heads * shape.head_dim();
  if (name == "q_proj") return {hidden, q_width};
  if (name == "k_proj" || name == "v_proj") return {hidden, kv_width};
  if (name == "o_proj") return {q_width, hidden};
  if (name == "gate_proj" || name == "up_proj") return {hidden, shape.intermediate_size};
  if (name == "down_proj") return {shape.intermediate_size, hidden};
  fail("'{}' is not a LLaMA projection ({})", name, fmt::join(llama_projection_names(), ", "));
}

std::shared_ptr<parallel::TensorParallelLinear> make_llama_projection(
    const std::string& name, const TensorParallelPlan& plan,
    std::shared_ptr<parallel::Communicator> tp, at::TensorOptions weight_options, bool bias) {
  LS_ASSERT(tp->size() == plan.tp(), "a plan for tp = {} on a tp group of {}", plan.tp(),
            tp->size());
  const LinearShape linear = llama_projection_shape(plan.shape(), name);
  parallel::ParallelLinearOptions options;
  options.in_features = linear.in_features;
  options.out_features = linear.out_features;
  options.bias = bias;
  options.weight_options = weight_options;
  if (name == "q_proj") return parallel::ColumnParallelLinear(tp, options, plan.q_rows()).ptr();
  if (name == "k_proj" || name == "v_proj")
    return parallel::ColumnParallelLinear(tp, options, plan.kv_rows()).ptr();
  if (name == "o_proj") return parallel::RowParallelLinear(tp, options, plan.q_rows()).ptr();
  if (name == "gate_proj" || name == "up_proj")
    return parallel::ColumnParallelLinear(tp, options, plan.ffn_rows()).ptr();
  return parallel::RowParallelLinear(tp, options, plan.ffn_rows()).ptr();  // down_proj
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
  return parallel::even_shards(shape_.intermediate_size, tp_);
}

}  // namespace ls
