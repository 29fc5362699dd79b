// SequenceHead (see sequence_head.h).
#include "core/model/sequence_head.h"

#include <ATen/ATen.h>

#include <limits>

namespace ls {

SequenceHead::SequenceHead(int64_t hidden_size, int64_t num_labels, Pooling pooling, bool bias,
                           const c10::Device& device)
    : pooling_(pooling) {
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  weight_ = register_parameter("weight", at::randn({num_labels, hidden_size}, options) * 0.02);
  if (bias) bias_ = register_parameter("bias", at::zeros({num_labels}, options));
}

at::Tensor SequenceHead::forward(const at::Tensor& hidden, const at::Tensor& attention_mask) {
  const auto h = hidden.to(at::kFloat);
  const auto bias = bias_.defined() ? std::optional<at::Tensor>(bias_) : std::nullopt;
  const auto real = attention_mask.to(at::kBool);
  if (pooling_ == Pooling::kLast) {
    // The rightmost real token, so right and left padding both work.
    const auto positions = at::arange(h.size(1), attention_mask.options().dtype(at::kLong));
    const auto last = (positions * real).argmax(-1);
    const auto index = last.view({-1, 1, 1}).expand({-1, 1, h.size(2)});
    return at::linear(h.gather(1, index).squeeze(1), weight_, bias);
  }
  const auto logits = at::linear(h, weight_, bias);  // [B, T, C]
  const auto mask = real.unsqueeze(-1);
  if (pooling_ == Pooling::kMean)
    return (logits * mask).sum(1) / mask.sum(1).clamp_min(1).to(at::kFloat);
  return logits.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity()).amax(1);
}

}  // namespace ls
