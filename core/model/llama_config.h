// The HF LLaMA `config.json`, in both layouts users meet: legacy (LLaMA-2: `rope_theta`,
// `rope_scaling`, no `head_dim`) and transformers-5 (`rope_parameters`, `head_dim`). Only what
// the model needs is kept, already validated. The LLaMA-shaped families load too, as LLaMA plus
// switches, each family's read from its row of one table (`model_family`): `mistral` (LLaMA
// itself, with a sliding window), `qwen2` (bias on q/k/v, none on o), `qwen3` (per-head RMSNorm on
// q and k, `head_dim` 128 when absent).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/base/enum_names.h"

namespace ls {

enum class RopeType { kDefault, kLinear, kLlama3 };

// config.json's `model_type`: the checkpoint families ls-train loads.
enum class ModelFamily { kLlama, kMistral, kQwen2, kQwen3 };

template <>
struct EnumNames<ModelFamily> {
  static constexpr std::string_view what = "model family";
  static constexpr EnumName<ModelFamily> table[] = {{ModelFamily::kLlama, "llama"},
                                                    {ModelFamily::kMistral, "mistral"},
                                                    {ModelFamily::kQwen2, "qwen2"},
                                                    {ModelFamily::kQwen3, "qwen3"}};
};

// Which attention projections carry a bias, as each family's HF attention builds them.
enum class AttentionBias {
  kNone,              // never (mistral)
  kAttentionBiasKey,  // q, k, v and o when `attention_bias` is true (llama, qwen3)
  kQkvOnly,           // always on q, k and v, never on o (qwen2)
};

// When the family's config has a sliding attention window.
enum class SlidingWindow {
  kNever,                 // llama
  kWhenSet,               // mistral: whenever `sliding_window` is set
  kWithUseSlidingWindow,  // qwen2, qwen3: only with `use_sliding_window` (HF drops it otherwise)
};

// What a family changes in LLaMA: every branch on the family reads its row.
struct ModelFamilyTraits {
  ModelFamily family;
  std::string_view hf_class_prefix;  // HF's class names: <prefix>ForSequenceClassification
  AttentionBias attention_bias;
  bool mlp_bias_key;         // reads `mlp_bias` (bias on gate, up and down)
  bool qk_norm;              // per-head RMSNorm on q and k before RoPE (self_attn.q_norm / k_norm)
  int64_t default_head_dim;  // when `head_dim` is absent; 0 = hidden_size / num_attention_heads
  SlidingWindow sliding_window;
};

inline constexpr ModelFamilyTraits kModelFamilies[] = {
    {ModelFamily::kLlama, "Llama", AttentionBias::kAttentionBiasKey, true, false, 0,
     SlidingWindow::kNever},
    {ModelFamily::kMistral, "Mistral", AttentionBias::kNone, false, false, 0,
     SlidingWindow::kWhenSet},
    {ModelFamily::kQwen2, "Qwen2", AttentionBias::kQkvOnly, false, false, 0,
     SlidingWindow::kWithUseSlidingWindow},
    // Qwen3Config's head_dim defaults to 128, not hidden / heads.
    {ModelFamily::kQwen3, "Qwen3", AttentionBias::kAttentionBiasKey, false, true, 128,
     SlidingWindow::kWithUseSlidingWindow},
};

// The row of `family` in kModelFamilies.
const ModelFamilyTraits& model_family(ModelFamily family);

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
  ModelFamily family = ModelFamily::kLlama;  // `model_type`
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
  // The family's switches (ModelFamilyTraits), resolved against this config's keys.
  bool qkv_bias = false;     // bias on q_proj, k_proj, v_proj
  bool o_proj_bias = false;  // bias on o_proj
  bool mlp_bias = false;
  bool qk_norm = false;  // self_attn.q_norm / k_norm, RMSNorm over head_dim before RoPE
  // The sliding attention window (ModelFamilyTraits::sliding_window), absent when attention is
  // full. ls-train attends over the whole sequence, which equals the
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
