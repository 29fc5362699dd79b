// How a LLaMA decoder layer is cut for tensor parallelism: the one place that maps the HF
// projection names to parallel layers and their shards, so the model only names its modules.
//   q_proj, k_proj, v_proj, gate_proj, up_proj: column-parallel (heads, kv heads, FFN columns)
//   o_proj, down_proj:                          row-parallel (their input is the split above)
// Attention on a tp rank then has plan.q_heads_per_rank() q heads and plan.kv_heads(tp_rank).size
// kv heads, q head j reading kv head j / (q heads / kv heads) of them, as at tp = 1.
#pragma once

#include <memory>
#include <string>

#include "parallel/topology.h"
#include "parallel/tp_linear.h"

namespace ls::parallel {

// The parallel linear for projection `name` of a layer shaped as `plan` says, on this rank of
// `tp`; lora.r = 0 for a projection without an adapter; `bias`: the checkpoint has one
// (attention_bias / mlp_bias). Load it with load_weight() from the checkpoint tensor of the same
// name. Throws UserError for a name that is not a LLaMA projection.
std::shared_ptr<TensorParallelLinear> make_llama_projection(
    const std::string& name, const TensorParallelPlan& plan, std::shared_ptr<Communicator> tp,
    const LoraOptions& lora, at::TensorOptions weight_options, at::TensorOptions lora_options,
    bool bias = false);

// True for the names make_llama_projection knows.
bool is_llama_projection(const std::string& name);

}  // namespace ls::parallel
