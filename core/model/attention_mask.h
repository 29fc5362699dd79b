// Which layers attend causally and which see the whole sentence, and the boolean masks that say
// so. LS-LLaMA is causal everywhere; LS-unLLaMA bidirectional everywhere; in between, layers
// [begin, end) are bidirectional (the layer-wise unmasking of "Looking Right is Sometimes Right"
// and BiLLM). Padding keys are masked in every layer unless `attend_to_padding` reproduces the
// original LS-unLLaMA code, which unmasked them in its bidirectional layers (results then depend
// on batch padding); causal layers mask padding keys either way.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace ls {

struct AttentionPolicy {
  int64_t bidirectional_begin = 0;
  int64_t bidirectional_end = 0;  // empty range: causal everywhere
  bool attend_to_padding = false;

  static AttentionPolicy causal() { return {}; }
  static AttentionPolicy bidirectional() { return {0, std::numeric_limits<int64_t>::max()}; }
  static AttentionPolicy bidirectional_from(int64_t layer) {
    return {layer, std::numeric_limits<int64_t>::max()};
  }
  bool is_bidirectional(int64_t layer) const {
    return layer >= bidirectional_begin && layer < bidirectional_end;
  }
  std::string describe() const;
};

// "causal", "bidirectional", "bidirectional:K-" (layers K and up) or "bidirectional:K-L" (layers
// K..L inclusive). `where` names the source in errors ("--attention", "model.attention").
AttentionPolicy parse_attention_policy(std::string_view spec, std::string_view where);

// The two masks a batch needs, boolean [B, 1, T, T] (true = may attend), built once per forward.
// A null mask means "attend to everything", or, for a causal layer when `implicit_causal` is set,
// "causal with nothing else masked": SDPA is then called with is_causal and no mask, which lets
// it pick the flash kernel (an explicit mask rules flash out). That is the case when the batch has
// no padding. `attend_to_padding` drops the key mask of the bidirectional layers only (a null
// `bidirectional`); causal layers keep theirs. Every query may always attend to itself, so a query
// whose keys are all padding (left padding, causal) has a defined, finite output.
struct AttentionMasks {
  std::optional<at::Tensor> causal;
  std::optional<at::Tensor> bidirectional;
  bool implicit_causal = false;
  const std::optional<at::Tensor>& for_layer(const AttentionPolicy& policy, int64_t layer) const {
    return policy.is_bidirectional(layer) ? bidirectional : causal;
  }
  bool is_causal(const AttentionPolicy& policy, int64_t layer) const {
    return implicit_causal && !policy.is_bidirectional(layer);
  }
};

// `attention_mask` [B, T]: 1 for real tokens, 0 for padding.
AttentionMasks build_attention_masks(const at::Tensor& attention_mask, bool attend_to_padding);

}  // namespace ls
