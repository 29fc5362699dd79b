// The LLaMA decoder (see llama.h). Numerics follow transformers' modeling_llama: RMSNorm in
// float32, RoPE tables in float32 cast to the activations' dtype, softmax inside SDPA.
#include "core/model/llama.h"

#include <ATen/ATen.h>
#include <ATen/SDPBackend.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <set>

#include "core/base/error.h"
#include "core/base/shape_string.h"
#include "core/io/checkpoint.h"
#include "core/model/activation_checkpoint.h"
#include "core/model/fused_ops.h"

namespace ls {

std::string sdpa_backend_name(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const std::optional<at::Tensor>& mask, bool is_causal) {
  const auto choice = static_cast<at::SDPBackend>(
      at::_fused_sdp_choice(q, k, v, mask, /*dropout_p=*/0.0, is_causal, /*scale=*/std::nullopt,
                            /*enable_gqa=*/q.size(1) != k.size(1)));
  switch (choice) {
    case at::SDPBackend::math:
      return "math";
    case at::SDPBackend::flash_attention:
      return "flash_attention";
    case at::SDPBackend::efficient_attention:
      return "efficient_attention";
    case at::SDPBackend::cudnn_attention:
      return "cudnn_attention";
    case at::SDPBackend::overrideable:
      return "overrideable";
    case at::SDPBackend::error:
      return "none (no backend accepts these inputs)";
  }
  return "unknown";
}

RMSNorm::RMSNorm(int64_t dim, double eps, const at::TensorOptions& options) : eps_(eps) {
  weight_ = register_parameter("weight", at::empty({dim}, options), /*requires_grad=*/false);
}

at::Tensor RMSNorm::forward(const at::Tensor& x) {
  return fused_rms_norm(x, weight_, eps_);
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

// GQA: SDPA's enable_gqa reads each kv head for its group of query heads without copying, but
// on CUDA only flash and cuDNN take it, and flash takes no mask: with a mask (padding) the
// memory-efficient kernel is the one that runs, and it needs as many kv heads as query heads.
// There the kv heads are repeated, as transformers does (use_gqa_in_sdpa); else SDPA would fall
// back to the math kernel. The CPU kernels take GQA with a mask.
std::pair<at::Tensor, at::Tensor> kv_for_sdpa(const at::Tensor& q, const at::Tensor& k,
                                              const at::Tensor& v,
                                              const std::optional<at::Tensor>& mask) {
  const auto groups = q.size(1) / k.size(1);
  if (groups <= 1 || q.size(1) % k.size(1) != 0 || k.is_cpu() || (!mask && k.size(-1) <= 256))
    return {k, v};
  return {k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)};
}

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
  const bool bias = config.qkv_bias;
  q_proj_ =
      make_projection(*this, factory, layer, "q_proj", hidden, heads_ * head_dim_, bias, options);
  k_proj_ = make_projection(*this, factory, layer, "k_proj", hidden, kv_heads_ * head_dim_, bias,
                            options);
  v_proj_ = make_projection(*this, factory, layer, "v_proj", hidden, kv_heads_ * head_dim_, bias,
                            options);
  o_proj_ = make_projection(*this, factory, layer, "o_proj", heads_ * head_dim_, hidden,
                            config.o_proj_bias, options);
  if (config.qk_norm) {
    q_norm_ = register_module("q_norm",
                              std::make_shared<RMSNorm>(head_dim_, config.rms_norm_eps, options));
    k_norm_ = register_module("k_norm",
                              std::make_shared<RMSNorm>(head_dim_, config.rms_norm_eps, options));
  }
}

at::Tensor LlamaAttention::forward(const at::Tensor& x, const RopeTables& rope,
                                   const std::optional<at::Tensor>& mask, bool is_causal) {
  const auto batch = x.size(0), length = x.size(1);
  // -1 heads: a tensor-parallel projection returns only this rank's heads.
  // Qwen3's q/k norms act on each head's head_dim vector, between the projection and RoPE.
  auto split_heads = [&](const at::Tensor& t, const std::shared_ptr<RMSNorm>& norm = nullptr) {
    const auto heads = t.view({batch, length, -1, head_dim_});
    return (norm ? norm->forward(heads) : heads).transpose(1, 2);
  };
  const auto q = fused_rope(split_heads(q_proj_->forward(x), q_norm_), rope);
  const auto k = fused_rope(split_heads(k_proj_->forward(x), k_norm_), rope);
  LS_ASSERT(!(is_causal && mask), "an explicit mask and is_causal together");
  const auto [k_in, v_in] = kv_for_sdpa(q, k, split_heads(v_proj_->forward(x)), mask);
  const auto out = at::scaled_dot_product_attention(
      q, k_in, v_in, mask, is_training() ? dropout_ : 0.0, is_causal, /*scale=*/std::nullopt,
      /*enable_gqa=*/q.size(1) != k_in.size(1));
  return o_proj_->forward(out.transpose(1, 2).reshape({batch, length, -1}));
}

void LlamaAttention::set_recompute(bool on) {
  for (auto& projection : {q_proj_, k_proj_, v_proj_, o_proj_}) projection->set_recompute(on);
}

LlamaMLP::LlamaMLP(const LlamaConfig& config, int64_t layer, const ProjectionFactory& factory,
                   const at::TensorOptions& options) {
  const auto hidden = config.hidden_size, inner = config.intermediate_size;
  const bool bias = config.mlp_bias;
  gate_proj_ = make_projection(*this, factory, layer, "gate_proj", hidden, inner, bias, options);
  up_proj_ = make_projection(*this, factory, layer, "up_proj", hidden, inner, bias, options);
  down_proj_ = make_projection(*this, factory, layer, "down_proj", inner, hidden, bias, options);
}

void LlamaMLP::set_recompute(bool on) {
  recompute_ = on;
  for (auto& projection : {gate_proj_, up_proj_, down_proj_}) projection->set_recompute(on);
}

at::Tensor LlamaMLP::forward(const at::Tensor& x) {
  const auto gate = gate_proj_->forward(x);
  const auto up = up_proj_->forward(x);
  return down_proj_->forward((recompute_ ? fused_swiglu(gate, up) : at::silu(gate) * up));
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
                                      const std::optional<at::Tensor>& mask, bool is_causal) {
  const auto h = x + self_attn_->forward(input_layernorm_->forward(x), rope, mask, is_causal);
  return h + mlp_->forward(post_attention_layernorm_->forward(h));
}

void LlamaDecoderLayer::set_recompute(bool on) {
  self_attn_->set_recompute(on);
  mlp_->set_recompute(on);
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
  const auto length = input_ids.size(1);
  if (config_.sliding_window && length > *config_.sliding_window)
    fail(
        "a batch of length {} exceeds the model's sliding attention window of {} tokens "
        "(config.json 'sliding_window'); the model attends over the whole sequence, so inputs "
        "may have at most {} tokens",
        length, *config_.sliding_window, *config_.sliding_window);
  auto x = embed_tokens_->forward(input_ids);
  // Each row's positions count from its first real token (rope_positions), so a left-padded row
  // gets the positions it has alone; with right padding they are 0..T-1, HF's default.
  RopeTables rope;
  {
    at::NoGradGuard no_grad;
    rope = rope_tables(inv_freq_, rope_positions(attention_mask), x.scalar_type());
  }
  const auto masks = build_attention_masks(attention_mask, policy_.attend_to_padding);
  const bool recompute_layers = checkpointing_ == ActivationCheckpointing::kFull && is_training() &&
                                at::GradMode::is_enabled();
  for (int64_t i = 0; i < static_cast<int64_t>(layers_->size()); ++i) {
    auto layer = layers_->ptr<LlamaDecoderLayer>(i);
    const auto& mask = masks.for_layer(policy_, i);
    const bool is_causal = masks.is_causal(policy_, i);
    if (!recompute_layers) {
      x = layer->forward(x, rope, mask, is_causal);
      continue;
    }
    std::vector<at::Tensor> trainable;
    for (const auto& parameter : layer->parameters())
      if (parameter.requires_grad()) trainable.push_back(parameter);
    // Captured by value: backward runs after this function has returned.
    x = checkpointed_layer(
        [layer, rope, mask, is_causal](const at::Tensor& input) {
          return layer->forward(input, rope, mask, is_causal);
        },
        x, trainable);
  }
  return norm_->forward(x);
}

void LlamaModel::set_activation_checkpointing(ActivationCheckpointing mode) {
  checkpointing_ = mode;
  for (int64_t i = 0; i < static_cast<int64_t>(layers_->size()); ++i)
    layers_->ptr<LlamaDecoderLayer>(i)->set_recompute(mode == ActivationCheckpointing::kSelective);
}

std::string LlamaModel::describe_attention_backends(int64_t batch, int64_t length) const {
  const auto options = inv_freq_.options().dtype(norm_->parameters().front().scalar_type());
  const auto head_dim = config_.head_dim;
  // Shapes only matter for eligibility; with tensor parallelism a rank holds fewer heads, which
  // changes no backend's rule.
  const auto q = at::empty({batch, config_.num_attention_heads, length, head_dim}, options);
  const auto kv = at::empty({batch, config_.num_key_value_heads, length, head_dim}, options);
  auto ids = at::ones({batch, length}, options.dtype(at::kLong));
  const auto unpadded = build_attention_masks(ids, policy_.attend_to_padding);
  ids.select(1, 0).fill_(0);  // left padding in every row
  const auto padded = build_attention_masks(ids, policy_.attend_to_padding);
  std::string text;
  auto add = [&](const char* kind, const AttentionMasks& masks, int64_t layer) {
    const auto& mask = masks.for_layer(policy_, layer);
    const auto [k, v] = kv_for_sdpa(q, kv, kv, mask);
    text += fmt::format("{}{} {}: {}", text.empty() ? "" : "; ",
                        policy_.is_bidirectional(layer) ? "bidirectional" : "causal", kind,
                        sdpa_backend_name(q, k, v, mask, masks.is_causal(policy_, layer)));
  };
  const int64_t layers = config_.num_hidden_layers;
  std::vector<int64_t> kinds;  // one causal and one bidirectional layer, where the policy has them
  for (int64_t i = 0; i < layers && kinds.size() < 2; ++i)
    if (kinds.empty() || policy_.is_bidirectional(i) != policy_.is_bidirectional(kinds[0]))
      kinds.push_back(i);
  for (auto layer : kinds) {
    add("unpadded", unpadded, layer);
    add("padded", padded, layer);
  }
  return fmt::format("SDPA backends for {}x{} {} on {}: {}", batch, length,
                     c10::toString(options.dtype().toScalarType()), options.device().str(), text);
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
    if (!in_projection) checkpoint.share_into(prefix + name, item.value());  // all frozen
  }
}

}  // namespace ls
