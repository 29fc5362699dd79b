// HF LLaMA config.json parsing (see llama_config.h).
#include "core/model/llama_config.h"

#include <fmt/ranges.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/error.h"

namespace ls {
namespace {

using nlohmann::json;

// Typed access to one config key; every failure names the file and the key.
class Keys {
 public:
  Keys(const json& object, std::string file, std::string prefix = "")
      : object_(object), file_(std::move(file)), prefix_(std::move(prefix)) {}

  bool has(const char* key) const { return object_.contains(key) && !object_.at(key).is_null(); }

  int64_t positive_int(const char* key) const {
    if (!has(key)) fail("{}: missing key '{}{}'", file_, prefix_, key);
    return positive_int_value(key);
  }
  int64_t positive_int(const char* key, int64_t fallback) const {
    return has(key) ? positive_int_value(key) : fallback;
  }
  double number(const char* key, double fallback) const {
    return has(key) ? number_value(key) : fallback;
  }
  double number(const char* key) const {
    if (!has(key)) fail("{}: missing key '{}{}'", file_, prefix_, key);
    return number_value(key);
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!object_.at(key).is_boolean())
      fail("{}: '{}{}' must be true or false", file_, prefix_, key);
    return object_.at(key).get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!object_.at(key).is_string()) fail("{}: '{}{}' must be a string", file_, prefix_, key);
    return object_.at(key).get<std::string>();
  }
  const std::string& file() const { return file_; }
  const std::string& prefix() const { return prefix_; }

 private:
  int64_t positive_int_value(const char* key) const {
    const auto& value = object_.at(key);
    if (!value.is_number_integer() || value.get<int64_t>() <= 0)
      fail("{}: '{}{}' must be a positive integer, got {}", file_, prefix_, key, value.dump());
    return value.get<int64_t>();
  }
  double number_value(const char* key) const {
    const auto& value = object_.at(key);
    if (!value.is_number())
      fail("{}: '{}{}' must be a number, got {}", file_, prefix_, key, value.dump());
    return value.get<double>();
  }

  const json& object_;
  std::string file_;
  std::string prefix_;
};

// The scaling part of a rope block: `rope_parameters` (v5) or `rope_scaling` (legacy); both name
// the type `rope_type` (older files: `type`).
void parse_rope_scaling(const Keys& keys, const std::string& type, RopeConfig& rope) {
  const auto parsed = try_parse_enum<RopeType>(type);
  if (!parsed)
    fail("{}: '{}rope_type' is '{}', which ls-train does not support (default, linear, llama3)",
         keys.file(), keys.prefix(), type);
  rope.type = *parsed;
  if (rope.type == RopeType::kLinear) {
    rope.factor = keys.number("factor");
  } else if (rope.type == RopeType::kLlama3) {
    rope.factor = keys.number("factor");
    rope.low_freq_factor = keys.number("low_freq_factor");
    rope.high_freq_factor = keys.number("high_freq_factor");
    rope.original_max_position_embeddings = keys.positive_int("original_max_position_embeddings");
    if (rope.high_freq_factor <= rope.low_freq_factor)
      fail("{}: '{}high_freq_factor' must exceed low_freq_factor", keys.file(), keys.prefix());
  }
  if (rope.factor <= 0) fail("{}: '{}factor' must be positive", keys.file(), keys.prefix());
}

}  // namespace

LlamaConfig parse_llama_config(const std::string& text, const std::string& file) {
  const auto root = json::parse(text, nullptr, false);
  if (root.is_discarded()) fail("{}: not valid JSON", file);
  if (!root.is_object()) fail("{}: not a JSON object", file);
  const Keys keys(root, file);

  const auto model_type = keys.string("model_type", "llama");
  const auto family = try_parse_enum<ModelFamily>(model_type);
  if (!family)
    fail("{}: 'model_type' is '{}'; ls-train loads LLaMA-family checkpoints ({})", file, model_type,
         fmt::join(enum_choices<ModelFamily>(), ", "));
  const ModelFamilyTraits& traits = model_family(*family);
  const auto act = keys.string("hidden_act", "silu");
  if (act != "silu") fail("{}: 'hidden_act' is '{}'; LLaMA's SwiGLU needs 'silu'", file, act);

  LlamaConfig config;
  config.family = *family;
  config.vocab_size = keys.positive_int("vocab_size");
  config.hidden_size = keys.positive_int("hidden_size");
  config.intermediate_size = keys.positive_int("intermediate_size");
  config.num_hidden_layers = keys.positive_int("num_hidden_layers");
  config.num_attention_heads = keys.positive_int("num_attention_heads");
  config.num_key_value_heads = keys.positive_int("num_key_value_heads", config.num_attention_heads);
  if (config.num_attention_heads % config.num_key_value_heads != 0)
    fail("{}: 'num_attention_heads' ({}) is not a multiple of 'num_key_value_heads' ({})", file,
         config.num_attention_heads, config.num_key_value_heads);
  if (!keys.has("head_dim") && traits.default_head_dim == 0 &&
      config.hidden_size % config.num_attention_heads != 0)
    fail(
        "{}: 'hidden_size' ({}) is not a multiple of 'num_attention_heads' ({}) and 'head_dim' "
        "is not given",
        file, config.hidden_size, config.num_attention_heads);
  config.head_dim = keys.positive_int(
      "head_dim", traits.default_head_dim != 0 ? traits.default_head_dim
                                               : config.hidden_size / config.num_attention_heads);
  if (config.head_dim % 2 != 0)
    fail("{}: 'head_dim' ({}) must be even for RoPE", file, config.head_dim);
  config.max_position_embeddings = keys.positive_int("max_position_embeddings", 2048);
  config.rms_norm_eps = keys.number("rms_norm_eps", 1e-6);
  if (config.rms_norm_eps <= 0) fail("{}: 'rms_norm_eps' must be positive", file);
  config.attention_dropout = keys.number("attention_dropout", 0.0);
  switch (traits.attention_bias) {
    case AttentionBias::kNone:
      break;
    case AttentionBias::kAttentionBiasKey:
      config.qkv_bias = config.o_proj_bias = keys.boolean("attention_bias", false);
      break;
    case AttentionBias::kQkvOnly:
      config.qkv_bias = true;
      break;
  }
  if (traits.mlp_bias_key) config.mlp_bias = keys.boolean("mlp_bias", false);
  config.qk_norm = traits.qk_norm;
  const bool windowed = traits.sliding_window == SlidingWindow::kWhenSet ||
                        (traits.sliding_window == SlidingWindow::kWithUseSlidingWindow &&
                         keys.boolean("use_sliding_window", false));
  if (windowed && keys.has("sliding_window"))
    config.sliding_window = keys.positive_int("sliding_window");
  if (keys.has("pad_token_id")) {
    if (!root.at("pad_token_id").is_number_integer())
      fail("{}: 'pad_token_id' must be an integer", file);
    config.pad_token_id = root.at("pad_token_id").get<int64_t>();
  }

  // RoPE: transformers-5 keeps everything in `rope_parameters`; the legacy layout has
  // `rope_theta` at the top and an optional `rope_scaling` block.
  if (keys.has("rope_parameters")) {
    const auto& block = root.at("rope_parameters");
    if (!block.is_object()) fail("{}: 'rope_parameters' must be an object", file);
    const Keys rope(block, file, "rope_parameters.");
    config.rope.theta =
        rope.has("rope_theta") ? rope.number("rope_theta") : keys.number("rope_theta", 10000.0);
    const auto type = rope.string("rope_type", rope.string("type", "default"));
    parse_rope_scaling(rope, type, config.rope);
    if (rope.number("partial_rotary_factor", 1.0) != 1.0)
      fail("{}: 'rope_parameters.partial_rotary_factor' other than 1 is not supported", file);
  } else {
    config.rope.theta = keys.number("rope_theta", 10000.0);
    if (keys.has("rope_scaling")) {
      const auto& block = root.at("rope_scaling");
      if (!block.is_object()) fail("{}: 'rope_scaling' must be an object or null", file);
      const Keys rope(block, file, "rope_scaling.");
      parse_rope_scaling(rope, rope.string("rope_type", rope.string("type", "default")),
                         config.rope);
    }
  }
  if (config.rope.theta <= 0) fail("{}: 'rope_theta' must be positive", file);
  return config;
}

LlamaConfig load_llama_config(const std::filesystem::path& config_json) {
  std::ifstream in(config_json);
  if (!in) fail("{}: cannot open", config_json.string());
  std::stringstream text;
  text << in.rdbuf();
  return parse_llama_config(text.str(), config_json.string());
}

const ModelFamilyTraits& model_family(ModelFamily family) {
  for (const auto& row : kModelFamilies)
    if (row.family == family) return row;
  LS_ASSERT(false, "model family {} has no row in kModelFamilies", static_cast<int>(family));
  return kModelFamilies[0];
}

const std::vector<std::string>& llama_projection_names() {
  static const std::vector<std::string> names = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  return names;
}

}  // namespace ls
