// HF LLaMA config.json in both layouts, the three rope types, GQA defaults, and one-line errors
// naming the file and key for everything a user can get wrong.
#include "core/model/llama_config.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/base/error.h"
#include "core/model/rope.h"
#include "tests/support/test_util.h"

namespace ls {
namespace {

constexpr const char* kLegacyLlama2 = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
  "hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32,
  "num_hidden_layers": 32, "num_key_value_heads": 32, "rms_norm_eps": 1e-05,
  "rope_scaling": null, "rope_theta": 10000.0, "vocab_size": 32000, "max_position_embeddings": 4096,
  "torch_dtype": "float16", "pretraining_tp": 1})";

constexpr const char* kLegacyLlama31 = R"({
  "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "vocab_size": 128256, "attention_bias": false, "mlp_bias": false})";

TEST(LlamaConfig, TransformersFiveLayoutOfTheGoldenModel) {
  const auto config = load_llama_config(test::golden_dir() / "model/config.json");
  EXPECT_EQ(config.hidden_size, 64);
  EXPECT_EQ(config.num_attention_heads, 4);
  EXPECT_EQ(config.num_key_value_heads, 2);
  EXPECT_EQ(config.head_dim, 16);
  EXPECT_EQ(config.intermediate_size, 160);
  EXPECT_DOUBLE_EQ(config.rms_norm_eps, 1e-6);
  EXPECT_EQ(config.rope.type, RopeType::kDefault);
  EXPECT_DOUBLE_EQ(config.rope.theta, 10000.0);
  EXPECT_EQ(config.pad_token_id, 0);
}

TEST(LlamaConfig, LegacyLlama2LayoutDerivesHeadDimAndKeepsMha) {
  const auto config = parse_llama_config(kLegacyLlama2, "config.json");
  EXPECT_EQ(config.head_dim, 128);
  EXPECT_EQ(config.num_key_value_heads, 32);
  EXPECT_EQ(config.rope.type, RopeType::kDefault);
  EXPECT_FALSE(config.pad_token_id.has_value());
}

TEST(LlamaConfig, Llama3RopeScalingSlowsOnlyLongWavelengths) {
  const auto config = parse_llama_config(kLegacyLlama31, "config.json");
  EXPECT_EQ(config.rope.type, RopeType::kLlama3);
  EXPECT_EQ(config.num_key_value_heads, 8);
  auto plain = config;
  plain.rope.type = RopeType::kDefault;
  const auto scaled = rope_inverse_frequencies(config);
  const auto base = rope_inverse_frequencies(plain);
  EXPECT_FLOAT_EQ(scaled[0].item<float>(), base[0].item<float>());        // short wavelength: kept
  EXPECT_FLOAT_EQ(scaled[63].item<float>(), base[63].item<float>() / 8);  // long: divided by 8
  // The same parameters in the transformers-5 layout give the same config.
  const auto v5 = parse_llama_config(R"({"hidden_size": 4096, "intermediate_size": 14336,
      "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "head_dim": 128,
      "vocab_size": 128256, "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0,
      "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192}})",
                                     "config.json");
  EXPECT_TRUE(rope_inverse_frequencies(v5).equal(scaled));
}

TEST(LlamaConfig, LinearRopeDividesEveryFrequency) {
  const auto config = parse_llama_config(R"({"hidden_size": 64, "intermediate_size": 128,
      "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10,
      "rope_scaling": {"type": "linear", "factor": 4.0}})",
                                         "c.json");
  EXPECT_EQ(config.rope.type, RopeType::kLinear);
  auto plain = config;
  plain.rope.type = RopeType::kDefault;
  EXPECT_TRUE(rope_inverse_frequencies(config).allclose(rope_inverse_frequencies(plain) / 4));
}

// Real configs of the other families, trimmed to what matters.
TEST(LlamaConfig, FamiliesSetTheirBiasesNormsAndWindows) {
  const auto mistral = parse_llama_config(R"({"model_type": "mistral", "hidden_size": 4096,
      "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
      "num_key_value_heads": 8, "head_dim": null, "vocab_size": 32768, "rope_theta": 1000000.0,
      "sliding_window": null, "tie_word_embeddings": false})",
                                          "config.json");
  EXPECT_EQ(mistral.head_dim, 128);
  EXPECT_FALSE(mistral.sliding_window.has_value());
  EXPECT_FALSE(mistral.qkv_bias || mistral.o_proj_bias || mistral.qk_norm);
  const auto mistral_v01 = parse_llama_config(R"({"model_type": "mistral", "hidden_size": 64,
      "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 1,
      "vocab_size": 10, "sliding_window": 4096})",
                                              "config.json");
  EXPECT_EQ(mistral_v01.sliding_window, 4096);

  const auto qwen2 = parse_llama_config(R"({"model_type": "qwen2", "hidden_size": 896,
      "intermediate_size": 4864, "num_attention_heads": 14, "num_hidden_layers": 24,
      "num_key_value_heads": 2, "vocab_size": 151936, "rope_theta": 1000000.0,
      "use_sliding_window": false, "sliding_window": 32768, "max_window_layers": 21,
      "tie_word_embeddings": true})",
                                        "config.json");
  EXPECT_EQ(qwen2.head_dim, 64);
  EXPECT_TRUE(qwen2.qkv_bias);
  EXPECT_FALSE(qwen2.o_proj_bias || qwen2.qk_norm || qwen2.sliding_window.has_value());
  const auto qwen2_windowed = parse_llama_config(R"({"model_type": "qwen2", "hidden_size": 64,
      "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 1,
      "vocab_size": 10, "use_sliding_window": true, "sliding_window": 512})",
                                                 "config.json");
  EXPECT_EQ(qwen2_windowed.sliding_window, 512);

  const auto qwen3 = parse_llama_config(R"({"model_type": "qwen3", "hidden_size": 1024,
      "intermediate_size": 3072, "num_attention_heads": 16, "num_hidden_layers": 28,
      "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936, "attention_bias": false,
      "rope_theta": 1000000, "use_sliding_window": false, "sliding_window": null,
      "tie_word_embeddings": true})",
                                        "config.json");
  EXPECT_EQ(qwen3.head_dim, 128);  // not hidden / heads = 64
  EXPECT_TRUE(qwen3.qk_norm);
  EXPECT_FALSE(qwen3.qkv_bias || qwen3.o_proj_bias || qwen3.sliding_window.has_value());
  const auto qwen3_default_head_dim = parse_llama_config(R"({"model_type": "qwen3",
      "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
      "num_hidden_layers": 1, "vocab_size": 10, "attention_bias": true})",
                                                         "config.json");
  EXPECT_EQ(qwen3_default_head_dim.head_dim, 128);  // Qwen3Config's default
  EXPECT_TRUE(qwen3_default_head_dim.qkv_bias && qwen3_default_head_dim.o_proj_bias);

  const auto llama = parse_llama_config(kLegacyLlama31, "config.json");
  EXPECT_FALSE(llama.qkv_bias || llama.o_proj_bias || llama.qk_norm ||
               llama.sliding_window.has_value());
}

TEST(LlamaConfig, EveryFamilyHasOneRowOfTraitsAndAnHfClassPrefix) {
  EXPECT_EQ(enum_choices<ModelFamily>(),
            (std::vector<std::string>{"llama", "mistral", "qwen2", "qwen3"}));
  for (const auto& name : enum_choices<ModelFamily>()) {
    const auto family = parse_enum<ModelFamily>(name, "model_type");
    EXPECT_EQ(model_family(family).family, family);
    const auto config = parse_llama_config(
        fmt::format(R"({{"model_type": "{}", "hidden_size": 64, "intermediate_size": 128,
            "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10}})",
                    name),
        "config.json");
    EXPECT_EQ(config.family, family);
  }
  EXPECT_EQ(model_family(ModelFamily::kLlama).hf_class_prefix, "Llama");
  EXPECT_EQ(model_family(ModelFamily::kQwen2).hf_class_prefix, "Qwen2");
  try {
    parse_llama_config(R"({"model_type": "gemma"})", "dir/config.json");
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(),
                 "dir/config.json: 'model_type' is 'gemma'; ls-train loads LLaMA-family "
                 "checkpoints (llama, mistral, qwen2, qwen3)");
  }
}

TEST(LlamaConfig, ErrorsAreOneLineNamingFileAndKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "not valid JSON"},
      {"[1, 2]", "not a JSON object"},
      {R"({"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10})",
       "'intermediate_size'"},
      {R"({"hidden_size": 64, "intermediate_size": 1, "num_attention_heads": 4, "num_hidden_layers": 0, "vocab_size": 10})",
       "'num_hidden_layers'"},
      {R"({"hidden_size": 64, "intermediate_size": 1, "num_attention_heads": 4, "num_key_value_heads": 3, "num_hidden_layers": 1, "vocab_size": 10})",
       "'num_key_value_heads'"},
      {R"({"hidden_size": 64, "intermediate_size": 1, "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": "10"})",
       "'vocab_size'"},
      {R"({"hidden_size": 64, "intermediate_size": 1, "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10, "rope_scaling": {"type": "dynamic", "factor": 2.0}})",
       "'rope_scaling.rope_type'"},
      {R"({"hidden_size": 64, "intermediate_size": 1, "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10, "rope_parameters": {"rope_type": "llama3", "factor": 8.0}})",
       "'rope_parameters.low_freq_factor'"},
      {R"({"hidden_size": 64, "intermediate_size": 1, "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10, "model_type": "gemma"})",
       "'model_type'"},
      {R"({"hidden_size": 64, "intermediate_size": 1, "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10, "hidden_act": "gelu"})",
       "'hidden_act'"},
  };
  for (const auto& [text, key] : cases) {
    try {
      parse_llama_config(text, "dir/config.json");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const UserError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("dir/config.json: ", 0), 0u) << message;
      EXPECT_NE(message.find(key), std::string::npos) << message << " should name " << key;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
  EXPECT_THROW(load_llama_config("/nonexistent/config.json"), UserError);
}

}  // namespace
}  // namespace ls
