// Rotary position embeddings in HF's layout: the head dimension is split in halves and rotated
// with `rotate_half` (not interleaved pairs), with frequencies from the config's rope type.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

#include "core/model/llama_config.h"

namespace ls {

// The inverse frequencies [head_dim / 2] (float32) exactly as transformers computes them for the
// rope types default, linear and llama3.
at::Tensor rope_inverse_frequencies(const LlamaConfig& config);

struct RopeTables {
  at::Tensor cos;  // [B, 1, T, head_dim], in the activations' dtype
  at::Tensor sin;
  // rotate_half's signs folded into sin, for fused_rope: [-s1, s2] (forward), [s2, -s1] (its
  // transpose, backward), s1 and s2 the halves of sin.
  at::Tensor sin_rotated, sin_rotated_t;
};

// cos/sin for integer `positions` [B, T]; computed in float32, then cast to `dtype` (as HF does).
RopeTables rope_tables(const at::Tensor& inv_freq, const at::Tensor& positions,
                       c10::ScalarType dtype);

// The position of every token of a batch, [B, T] int64 from its attention mask [B, T]: the
// distance from the row's first real token, t - first(row). With right padding that is 0..T-1 in
// every row, what HF uses without explicit position_ids. With left padding a row gets the
// positions it would have alone (HF's generate passes these as position_ids; a plain HF forward
// would count from the first pad). RoPE sees only differences of positions, so the shift changes
// rounding, not the math: in bf16 the tables at shifted positions round differently. The padding
// before a row's first token gets negative positions; it is masked, and with attend_to_padding
// the relative positions are those of 0..T-1.
at::Tensor rope_positions(const at::Tensor& attention_mask);

// {sin_rotated, sin_rotated_t} of RopeTables from sin.
std::pair<at::Tensor, at::Tensor> rotated_sin_tables(const at::Tensor& sin);

// x [B, heads, T, head_dim] -> x * cos + rotate_half(x) * sin.
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables);

}  // namespace ls
