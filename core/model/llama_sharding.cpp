// LLaMA projection names -> tensor-parallel layers (see llama_sharding.h).
#include "core/model/llama_sharding.h"

#include "core/base/error.h"

namespace ls::parallel {

bool is_llama_projection(const std::string& name) {
  for (const char* known :
       {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
    if (name == known) return true;
  return false;
}

std::shared_ptr<TensorParallelLinear> make_llama_projection(
    const std::string& name, const TensorParallelPlan& plan, std::shared_ptr<Communicator> tp,
    const LoraOptions& lora, at::TensorOptions weight_options, at::TensorOptions lora_options,
    bool bias) {
  LS_ASSERT(tp->size() == plan.tp(), "a plan for tp = {} on a tp group of {}", plan.tp(),
            tp->size());
  const LayerShape& shape = plan.shape();
  const int64_t hidden = shape.hidden_size;
  const int64_t q_width = shape.num_attention_heads * shape.head_dim();
  const int64_t kv_width = shape.num_key_value_heads * shape.head_dim();
  auto options = [&](int64_t in, int64_t out) {
    ParallelLinearOptions o;
    o.in_features = in;
    o.out_features = out;
    o.bias = bias;
    o.lora = lora;
    o.weight_options = weight_options;
    o.lora_options = lora_options;
    return o;
  };
  if (name == "q_proj")
    return ColumnParallelLinear(tp, options(hidden, q_width), plan.q_rows()).ptr();
  if (name == "k_proj" || name == "v_proj")
    return ColumnParallelLinear(tp, options(hidden, kv_width), plan.kv_rows()).ptr();
  if (name == "o_proj") return RowParallelLinear(tp, options(q_width, hidden), plan.q_rows()).ptr();
  if (name == "gate_proj" || name == "up_proj")
    return ColumnParallelLinear(tp, options(hidden, shape.intermediate_size), plan.ffn_rows())
        .ptr();
  if (name == "down_proj")
    return RowParallelLinear(tp, options(shape.intermediate_size, hidden), plan.ffn_rows()).ptr();
  fail(
      "'{}' is not a LLaMA projection (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, "
      "down_proj)",
      name);
}

}  // namespace ls::parallel
