// Activation checkpointing for the decoder layers: trade recomputation in backward for memory.
//   full:      a layer keeps only its input; backward runs the layer again (same RNG state, so
//              the same dropout masks) and differentiates that.
//   selective: the layer runs normally, but its cheap elementwise ops (RMSNorm, RoPE, SwiGLU;
//              core/model/fused_ops.h) save only their inputs and recompute their internals in
//              backward, so GEMM and attention outputs stay, the float32 norm intermediates and
//              the SwiGLU/RoPE temporaries do not. (RMSNorm and RoPE do so in every mode.)
//              LoRA on a single-device projection keeps its dropout mask instead of float32
//              copies of its input (add_lora_delta's `recompute`, core/model/lora.h).
// Both give the gradients of the plain layer (equal up to float rounding order).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace ls {

// y = layer(x) without keeping the layer's activations. `params`: the trainable tensors the
// layer reads (their gradients come out of this function's backward, so they must be listed).
// Backward replays the CPU and x's device generators from the forward, so dropout inside the
// layer draws the same masks.
at::Tensor checkpointed_layer(std::function<at::Tensor(const at::Tensor&)> layer,
                              const at::Tensor& x, const std::vector<at::Tensor>& params);

}  // namespace ls
