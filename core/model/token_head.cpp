// TokenHead (see token_head.h).
#include "core/model/token_head.h"

#include <ATen/ATen.h>

namespace ls {

TokenHead::TokenHead(int64_t hidden_size, int64_t num_labels, double dropout,
                     const c10::Device& device)
    : dropout_(dropout) {
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  weight_ = register_parameter("weight", at::randn({num_labels, hidden_size}, options) * 0.02);
  bias_ = register_parameter("bias", at::zeros({num_labels}, options));
}

at::Tensor TokenHead::forward(const at::Tensor& hidden, const at::Tensor& attention_mask) {
  auto h = hidden.to(at::kFloat);
  if (dropout_ > 0 && is_training()) h = dropout_site_.apply(h, dropout_);
  return at::linear(h, weight_, bias_);
}

}  // namespace ls
