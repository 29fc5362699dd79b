// The decoder layer's element-wise pieces (RMSNorm, RoPE, SwiGLU) as single autograd functions:
// one graph node each and a hand-written backward in a few ops, where autograd would record and
// replay every primitive. Their forwards run HF's ops in HF's order, so they give its bits. Each
// saves only its inputs (and RMSNorm its per-row rsqrt), so they also serve selective activation
// checkpointing. RMSNorm and RoPE run in every mode; SwiGLU only under selective (as the plain
// path it measured slower than autograd's two nodes). Also LoRA dropout's noise, drawn as
// at::dropout draws it, faster.
#pragma once

#include <ATen/core/Tensor.h>

#include "core/model/rope.h"

namespace ls {

// HF's LlamaRMSNorm: weight * (x32 * rsqrt(mean(x32^2) + eps)).to(x's dtype), x32 = float32(x).
// Saves x, weight and the float32 rsqrt per row.
at::Tensor fused_rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// x * cos + rotate_half(x) * sin with the sign of rotate_half folded into the tables
// (RopeTables::sin_rotated), so neither direction negates. Saves only the (shared) tables.
at::Tensor fused_rope(const at::Tensor& x, const RopeTables& tables);

// silu(gate) * up, saving only gate and up (silu is recomputed in backward); gradients with
// autograd's bits.
at::Tensor fused_swiglu(const at::Tensor& gate, const at::Tensor& up);

// Dropout's keep mask for `like` (CPU): the same draws, in the same order, and the same generator
// state afterwards as at::dropout's `bernoulli_(1 - p)`, which compares one float64 uniform per
// element with 1 - p; drawing those uniforms with uniform_ is faster than bernoulli_'s loop.
at::Tensor dropout_keep_mask(const at::Tensor& like, double p);
// at::dropout(x, p, train=true) on a CPU tensor, the same bits: x * (keep / (1 - p)).
at::Tensor dropout_cpu(const at::Tensor& x, double p);

}  // namespace ls
