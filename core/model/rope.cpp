// RoPE (see rope.h). The frequency code mirrors transformers' modeling_rope_utils operation for
// operation, so float32 results agree to the last bit, not just within tolerance.
#include "core/model/rope.h"

#include <ATen/ATen.h>

#include <cmath>
#include <tuple>

namespace ls {

at::Tensor rope_inverse_frequencies(const LlamaConfig& config) {
  const auto dim = config.head_dim;
  const auto& rope = config.rope;
  const auto exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  // `1.0 / (base ** e)` in Python is reciprocal() * 1.0.
  auto inv_freq = at::pow(rope.theta, exponents).reciprocal();
  switch (rope.type) {
    case RopeType::kDefault:
      return inv_freq;
    case RopeType::kLinear:
      return inv_freq / rope.factor;
    case RopeType::kLlama3: {
      // LLaMA-3.1: long wavelengths are slowed by `factor`, short ones kept, the band between
      // interpolated smoothly.
      const double context = static_cast<double>(rope.original_max_position_embeddings);
      const double low_freq_wavelen = context / rope.low_freq_factor;
      const double high_freq_wavelen = context / rope.high_freq_factor;
      const auto wavelen = inv_freq.reciprocal() * (2 * M_PI);
      auto scaled = at::where(wavelen > low_freq_wavelen, inv_freq / rope.factor, inv_freq);
      const auto smooth = (wavelen.reciprocal() * context - rope.low_freq_factor) /
                          (rope.high_freq_factor - rope.low_freq_factor);
      const auto smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled;
      const auto medium =
          (wavelen < high_freq_wavelen).logical_not() * (wavelen > low_freq_wavelen).logical_not();
      return at::where(medium, smoothed, scaled);
    }
  }
  return inv_freq;
}

RopeTables rope_tables(const at::Tensor& inv_freq, const at::Tensor& positions,
                       c10::ScalarType dtype) {
  // An outer product: one multiply per entry, the same bits as HF's batched matmul.
  const auto freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq.to(positions.device());
  const auto angles = at::cat({freqs, freqs}, -1).unsqueeze(1);
  RopeTables tables{angles.cos().to(dtype), angles.sin().to(dtype), {}, {}};
  std::tie(tables.sin_rotated, tables.sin_rotated_t) = rotated_sin_tables(tables.sin);
  return tables;
}

at::Tensor rope_positions(const at::Tensor& attention_mask) {
  const auto length = attention_mask.size(1);
  // argmax returns the first maximum: the first real token (0 for a row without any).
  const auto first = attention_mask.ne(0).to(at::kInt).argmax(1, /*keepdim=*/true);
  return at::arange(length, attention_mask.options().dtype(at::kLong)).unsqueeze(0) - first;
}

std::pair<at::Tensor, at::Tensor> rotated_sin_tables(const at::Tensor& sin) {
  const auto half = sin.size(-1) / 2;
  const auto first = sin.narrow(-1, 0, half), second = sin.narrow(-1, half, half);
  return {at::cat({-first, second}, -1), at::cat({second, -first}, -1)};
}

at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables) {
  const auto half = x.size(-1) / 2;
  const auto rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * tables.cos + rotated * tables.sin;
}

}  // namespace ls
