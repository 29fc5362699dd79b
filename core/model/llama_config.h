// The HF LLaMA `config.json`, in both layouts users meet: legacy (LLaMA-2: `rope_theta`,
// `rope_scaling`, no `head_dim`) and transformers-5 (`rope_parameters`, `head_dim`). Only what
// the model needs is kept, already validated. The LLaMA-shaped families load too, as LLaMA plus
// switches: `mistral` (LLaMA itself, with a sliding window), `qwen2` (bias on q/k/v, none on o),
// `qwen3` (per-head RMSNorm on q and k, `head_dim` 128 when absent).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/base/enum_names.h"

namespace ls {

enum class RopeType { kDefault, kLinear, kLlama3 };

struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double factor = 1.0;  // linear and llama3
  // llama3 only (LLaMA-3.1's wavelength-dependent scaling).
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct LlamaConfig {
  std::string model_type = "llama";  // llama, mistral, qwen2, qwen3
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // = num_attention_heads when absent (no GQA)
  int64_t head_dim = 0;             // = hidden_size / num_attention_heads when absent
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double attention_dropout = 0.0;
  bool qkv_bias = false;     // bias on q_proj, k_proj, v_proj (llama, qwen3: attention_bias;
                             // qwen2: always)
  bool o_proj_bias = false;  // llama, qwen3: attention_bias; qwen2: never
  bool mlp_bias = false;
  bool qk_norm = false;  // qwen3: self_attn.q_norm / k_norm, RMSNorm over head_dim before RoPE
  // The sliding attention window (mistral `sliding_window`; qwen2/qwen3 when `use_sliding_window`),
  // absent when attention is full. ls-train attends over the whole sequence, which equals the
  // window's attention only for sequences no longer than it: longer batches are refused.
  std::optional<int64_t> sliding_window;
  std::optional<int64_t> pad_token_id;
  RopeConfig rope;
};

// Parses `text` (the contents of `file`, which errors name along with the offending key).
LlamaConfig parse_llama_config(const std::string& text, const std::string& file);
LlamaConfig load_llama_config(const std::filesystem::path& config_json);

template <>
struct EnumNames<RopeType> {
  static constexpr std::string_view what = "rope type";
  static constexpr EnumName<RopeType> table[] = {{RopeType::kDefault, "default"},
                                                 {RopeType::kLinear, "linear"},
                                                 {RopeType::kLlama3, "llama3"}};
};

// The names the LLaMA projections (the linear maps of a decoder layer) go by, in model order:
// q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj. The one list every LoRA target
// check, the tensor-parallel plan and the tools use.
const std::vector<std::string>& llama_projection_names();

}  // namespace ls
