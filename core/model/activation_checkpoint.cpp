// Activation checkpointing (see activation_checkpoint.h). Each op is a torch::autograd::Function
// whose forward runs with grad mode off (so nothing is recorded) and whose backward rebuilds what
// it needs from the few tensors it saved.
#include "core/model/activation_checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/core/Generator.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <mutex>
#include <utility>

#include "core/base/error.h"

namespace ls {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The generator states a recompute must start from: the CPU generator always (LoRA dropout on
// CPU tensors, and the default for anything else), plus the device's when x is not on the CPU.
struct RngStates {
  at::Tensor cpu, device;

  static RngStates take(const c10::Device& device) {
    RngStates states;
    states.cpu = state_of(at::globalContext().defaultGenerator(c10::kCPU));
    if (!device.is_cpu()) states.device = state_of(at::globalContext().defaultGenerator(device));
    return states;
  }
  void restore(const c10::Device& device) const {
    set_state(at::globalContext().defaultGenerator(c10::kCPU), cpu);
    if (device_defined()) set_state(at::globalContext().defaultGenerator(device), this->device);
  }
  bool device_defined() const { return device.defined(); }

 private:
  static at::Tensor state_of(at::Generator generator) {
    std::lock_guard<std::mutex> lock(generator.mutex());
    return generator.get_state();
  }
  static void set_state(at::Generator generator, const at::Tensor& state) {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state);
  }
};

struct LayerClosure : torch::CustomClassHolder {
  std::function<at::Tensor(const at::Tensor&)> run;
};

class CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, at::TensorList params,
                            c10::intrusive_ptr<LayerClosure> closure) {
    const auto rng = RngStates::take(x.device());
    ctx->saved_data["cpu_rng"] = rng.cpu;
    if (rng.device_defined()) ctx->saved_data["device_rng"] = rng.device;
    ctx->saved_data["layer"] = c10::IValue::make_capsule(closure);
    variable_list saved{x};
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    return closure->run(x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto count = saved.size();
    variable_list result(count + 1);  // + the closure, which has no gradient
    std::vector<size_t> wanted;
    for (size_t i = 0; i < count; ++i)
      if (ctx->needs_input_grad(i)) wanted.push_back(i);
    if (wanted.empty() || !grads[0].defined()) return result;

    auto closure = ctx->saved_data["layer"].toCapsule();
    auto& layer = static_cast<LayerClosure&>(*closure);
    const auto device = saved[0].device();
    RngStates forward_rng;
    forward_rng.cpu = ctx->saved_data["cpu_rng"].toTensor();
    if (ctx->saved_data.find("device_rng") != ctx->saved_data.end())
      forward_rng.device = ctx->saved_data["device_rng"].toTensor();
    const auto now = RngStates::take(device);

    const auto input = saved[0].detach().requires_grad_(ctx->needs_input_grad(0));
    at::Tensor output;
    {
      at::AutoGradMode grad_on(true);
      forward_rng.restore(device);
      try {
        output = layer.run(input);
      } catch (...) {
        now.restore(device);
        throw;
      }
      now.restore(device);
    }
    variable_list inputs;
    for (auto i : wanted) inputs.push_back(i == 0 ? input : saved[i]);
    const auto computed = torch::autograd::grad({output}, inputs, {grads[0]},
                                                /*retain_graph=*/false, /*create_graph=*/false,
                                                /*allow_unused=*/true);
    for (size_t j = 0; j < wanted.size(); ++j) result[wanted[j]] = computed[j];
    return result;
  }
};

}  // namespace

at::Tensor checkpointed_layer(std::function<at::Tensor(const at::Tensor&)> layer,
                              const at::Tensor& x, const std::vector<at::Tensor>& params) {
  auto closure = c10::make_intrusive<LayerClosure>();
  closure->run = std::move(layer);
  return CheckpointedLayer::apply(x, at::TensorList(params), closure);
}

}  // namespace ls
