// The LLaMA decoder (see llama.h). Numerics follow transformers' modeling_llama: RMSNorm in
// float32, RoPE tables in float32 cast to the activations' dtype, softmax inside SDPA.
#include "core/llama.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <set>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/shape_string.h"

namespace ls {

RMSNorm::RMSNorm(int64_t dim, double eps, const at::TensorOptions& options) : eps_(eps) {
  weight_ = register_parameter("weight", at::empty({dim}, options), /*requires_grad=*/false);
}

at::Tensor RMSNorm::forward(const at::Tensor& x) {
  const auto x32 = x.to(at::kFloat);
  const auto normed = x32 * at::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight_ * normed.to(x.scalar_type());
}

TokenEmbedding::TokenEmbedding(int64_t vocab_size, int64_t dim, const at::TensorOptions& options) {
  weight_ = register_parameter("weight", at::empty({vocab_size, dim}, options), false);
}

at::Tensor TokenEmbedding::forward(const at::Tensor& input_ids) {
  if (input_ids.numel() > 0) {
    const auto [low, high] = at::aminmax(input_ids);
    const auto min_id = low.item<int64_t>(), max_id = high.item<int64_t>();
    if (min_id < 0 || max_id >= weight_.size(0))
      fail("input_ids: token id {} is outside the vocabulary [0, {})", min_id < 0 ? min_id : max_id,
           weight_.size(0));
  }
  return at::embedding(weight_, input_ids);
}

namespace {

std::shared_ptr<Projection> make_projection(torch::nn::Module& owner,
                                            const ProjectionFactory& factory, int64_t layer,
                                            const char* name, int64_t in, int64_t out, bool bias,
                                            const at::TensorOptions& options) {
  return owner.register_module(name, factory({layer, name, in, out, bias, options}));
}

}  // namespace

LlamaAttention::LlamaAttention(const LlamaConfig& config, int64_t layer,
                               const ProjectionFactory& factory, const at::TensorOptions& options)
    : heads_(config.num_attention_heads),
      kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim),
      dropout_(config.attention_dropout) {
  const auto hidden = config.hidden_size;
  const bool bias = config.attention_bias;
  q_proj_ =
      make_projection(*this, factory, layer, "q_proj", hidden, heads_ * head_dim_, bias, options);
  k_proj_ = make_projection(*this, factory, layer, "k_proj", hidden, kv_heads_ * head_dim_, bias,
                            options);
  v_proj_ = make_projection(*this, factory, layer, "v_proj", hidden, kv_heads_ * head_dim_, bias,
                            options);
  o_proj_ =
      make_projection(*this, factory, layer, "o_proj", heads_ * head_dim_, hidden, bias, options);
}

at::Tensor LlamaAttention::forward(const at::Tensor& x, const RopeTables& rope,
                                   const std::optional<at::Tensor>& mask) {
  const auto batch = x.size(0), length = x.size(1);
  // -1 heads: a tensor-parallel projection returns only this rank's heads.
  auto split_heads = [&](const at::Tensor& t) {
    return t.view({batch, length, -1, head_dim_}).transpose(1, 2);
  };
  const auto q = apply_rope(split_heads(q_proj_->forward(x)), rope);
  const auto k = apply_rope(split_heads(k_proj_->forward(x)), rope);
  const auto v = split_heads(v_proj_->forward(x));
  const auto out = at::scaled_dot_product_attention(q, k, v, mask, is_training() ? dropout_ : 0.0,
                                                    /*is_causal=*/false, /*scale=*/std::nullopt,
                                                    /*enable_gqa=*/q.size(1) != k.size(1));
  return o_proj_->forward(out.transpose(1, 2).reshape({batch, length, -1}));
}

LlamaMLP::LlamaMLP(const LlamaConfig& config, int64_t layer, const ProjectionFactory& factory,
                   const at::TensorOptions& options) {
  const auto hidden = config.hidden_size, inner = config.intermediate_size;
  const bool bias = config.mlp_bias;
  gate_proj_ = make_projection(*this, factory, layer, "gate_proj", hidden, inner, bias, options);
  up_proj_ = make_projection(*this, factory, layer, "up_proj", hidden, inner, bias, options);
  down_proj_ = make_projection(*this, factory, layer, "down_proj", inner, hidden, bias, options);
}

at::Tensor LlamaMLP::forward(const at::Tensor& x) {
  return down_proj_->forward(at::silu(gate_proj_->forward(x)) * up_proj_->forward(x));
}

LlamaDecoderLayer::LlamaDecoderLayer(const LlamaConfig& config, int64_t layer,
                                     const ProjectionFactory& factory,
                                     const at::TensorOptions& options) {
  self_attn_ = register_module("self_attn",
                               std::make_shared<LlamaAttention>(config, layer, factory, options));
  mlp_ = register_module("mlp", std::make_shared<LlamaMLP>(config, layer, factory, options));
  input_layernorm_ =
      register_module("input_layernorm",
                      std::make_shared<RMSNorm>(config.hidden_size, config.rms_norm_eps, options));
  post_attention_layernorm_ =
      register_module("post_attention_layernorm",
                      std::make_shared<RMSNorm>(config.hidden_size, config.rms_norm_eps, options));
}

at::Tensor LlamaDecoderLayer::forward(const at::Tensor& x, const RopeTables& rope,
                                      const std::optional<at::Tensor>& mask) {
  const auto h = x + self_attn_->forward(input_layernorm_->forward(x), rope, mask);
  return h + mlp_->forward(post_attention_layernorm_->forward(h));
}

LlamaModel::LlamaModel(LlamaConfig config, AttentionPolicy policy, const ProjectionFactory& factory,
                       const at::TensorOptions& options)
    : config_(std::move(config)), policy_(policy) {
  inv_freq_ = rope_inverse_frequencies(config_).to(options.device());
  embed_tokens_ = register_module(
      "embed_tokens",
      std::make_shared<TokenEmbedding>(config_.vocab_size, config_.hidden_size, options));
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i)
    layers_->push_back(std::make_shared<LlamaDecoderLayer>(config_, i, factory, options));
  norm_ = register_module(
      "norm", std::make_shared<RMSNorm>(config_.hidden_size, config_.rms_norm_eps, options));
}

at::Tensor LlamaModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  if (input_ids.dim() != 2 || attention_mask.sizes() != input_ids.sizes())
    fail("input_ids {} and attention_mask {} must both be [batch, length]",
         shape_string(input_ids.sizes()), shape_string(attention_mask.sizes()));
  auto x = embed_tokens_->forward(input_ids);
  // Positions count from 0 in every row, padding or not, as HF does without explicit position_ids.
  const auto positions =
      at::arange(input_ids.size(1), input_ids.options().dtype(at::kLong)).unsqueeze(0);
  const auto rope = rope_tables(inv_freq_, positions, x.scalar_type());
  const auto masks = build_attention_masks(attention_mask, policy_.attend_to_padding);
  for (int64_t i = 0; i < static_cast<int64_t>(layers_->size()); ++i)
    x = layers_->ptr<LlamaDecoderLayer>(i)->forward(x, rope, masks.for_layer(policy_, i));
  return norm_->forward(x);
}

std::vector<LlamaModel::ProjectionRef> LlamaModel::projections() {
  std::vector<ProjectionRef> found;
  for (int64_t i = 0; i < static_cast<int64_t>(layers_->size()); ++i)
    for (const auto& item : layers_->ptr(i)->named_modules("", /*include_self=*/false))
      if (auto projection = std::dynamic_pointer_cast<Projection>(item.value()))
        found.push_back({i, item.key().substr(item.key().rfind('.') + 1),
                         fmt::format("layers.{}.{}", i, item.key()), std::move(projection)});
  return found;
}

void LlamaModel::load(const Checkpoint& checkpoint, const std::string& prefix) {
  std::set<std::string> owned;  // parameter-name prefixes that belong to a projection
  for (const auto& ref : projections()) {
    ref.projection->load_base(checkpoint, prefix + ref.path);
    owned.insert(ref.path + ".");
  }
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    const auto& name = item.key();
    const bool in_projection = std::any_of(
        owned.begin(), owned.end(),
        [&](const std::string& path) { return name.compare(0, path.size(), path) == 0; });
    if (!in_projection) checkpoint.read_into(prefix + name, item.value());
  }
}

}  // namespace ls
