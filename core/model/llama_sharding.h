// How a LLaMA decoder layer is cut for tensor parallelism: the one place that maps the HF
// projection names to parallel/'s column- and row-parallel layers and their shards, so the model
// only names its modules.
//   q_proj, k_proj, v_proj, gate_proj, up_proj: column-parallel (heads, kv heads, FFN columns)
//   o_proj, down_proj:                          row-parallel (their input is the split above)
// Attention on a tp rank then has plan.q_heads_per_rank() q heads and plan.kv_heads(tp_rank).size
// kv heads, q head j reading kv head j / (q heads / kv heads) of them, as at tp = 1.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/model/llama_config.h"
#include "parallel/topology.h"
#include "parallel/tp_linear.h"

namespace ls {

using parallel::ShardRange;

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

// The LLaMA layer shapes of an HF config.
LayerShape layer_shape(const LlamaConfig& config);

// Projection `name`'s [in, out] features in a layer of `shape`. Throws UserError for a name that
// is not a LLaMA projection.
struct LinearShape {
  int64_t in_features = 0;
  int64_t out_features = 0;
};
LinearShape llama_projection_shape(const LayerShape& shape, const std::string& name);

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

// The frozen parallel linear for projection `name` of a layer shaped as `plan` says, on this rank
// of `tp`; `bias`: the checkpoint has one (attention_bias / mlp_bias). Load it with load_weight()
// from the checkpoint tensor of the same name. Throws UserError for a name that is not a LLaMA
// projection.
std::shared_ptr<parallel::TensorParallelLinear> make_llama_projection(
    const std::string& name, const TensorParallelPlan& plan,
    std::shared_ptr<parallel::Communicator> tp, at::TensorOptions weight_options,
    bool bias = false);

// True for the names of llama_projection_names().
bool is_llama_projection(const std::string& name);

}  // namespace ls
