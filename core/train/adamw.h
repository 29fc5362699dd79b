// AdamW with decoupled weight decay over the trainable tensors (LoRA, head). Two implementations
// of the same update: `fused` runs libtorch's at::_fused_adamw_ (the kernel behind
// torch.optim.AdamW(fused=True); CPU and CUDA) once per weight-decay group, the reference loops
// over tensors with the ops of the single-tensor torch.optim.AdamW. State (moments, step) is
// exposed as named tensors so the trainer can save it to safetensors for exact resume; either
// implementation resumes the other's state.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace ls {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  // One fused kernel launch per group instead of ~6 ops per tensor (see docs/FASTPATH.md).
  bool fused = true;
};

class AdamW {
 public:
  struct Param {
    std::string name;   // the parameter's checkpoint name; keys its state
    at::Tensor tensor;  // f32 master weight, updated in place
    bool decay = true;  // weight decay applies
  };

  AdamW(std::vector<Param> params, AdamWOptions options);

  // One update with learning rate `lr` from each tensor's .grad() (a missing grad counts as zero).
  void step(double lr);
  void zero_grad();
  long steps() const { return steps_; }
  const std::vector<Param>& params() const { return params_; }

  // "<name>.exp_avg", "<name>.exp_avg_sq" for every parameter.
  std::map<std::string, at::Tensor> state() const;
  void load_state(const std::map<std::string, at::Tensor>& state, long steps);

 private:
  std::vector<Param> params_;
  void fused_step(double lr);
  void reference_step(double lr);

  AdamWOptions options_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
  // The fused kernel's per-tensor step counters (float32 scalars on the tensor's device, as
  // torch.optim.AdamW(fused=True) keeps them); equal to steps_ on the fused path.
  std::vector<at::Tensor> fused_steps_;
  long steps_ = 0;
};

// Scales all gradients so that their global L2 norm is at most max_norm (as
// torch.nn.utils.clip_grad_norm_); returns the norm before clipping.
double clip_grad_norm(const std::vector<at::Tensor>& tensors, double max_norm);
// The same without reading the norm back: multi-tensor norm and scaling kernels, and the norm
// returned as a float32 scalar on the gradients' device (undefined when no tensor has a gradient),
// so the optimizer step can be queued before the host waits for anything.
at::Tensor clip_grad_norm_async(const std::vector<at::Tensor>& tensors, double max_norm);
// Its scaling step for a norm computed elsewhere (tensor parallelism: over the shards of a tp
// group): multiplies the gradients by max_norm / (norm + 1e-6) when that is below 1.
void clip_grads_to_norm(const std::vector<at::Tensor>& tensors, double norm, double max_norm);

}  // namespace ls
