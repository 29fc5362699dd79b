// LsLlama: loading, adapters and the forward pass (see ls_llama.h).
#include "core/ls_llama.h"

#include <ATen/ATen.h>

#include <chrono>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/llama_config.h"
#include "core/peft_adapter.h"
#include "core/safetensors.h"
#include "core/shape_string.h"
#include "parallel/tp_linear.h"

namespace ls {
namespace fs = std::filesystem;

LsLlama::LsLlama(LlamaConfig config, const ModelOptions& options, const HeadOptions& head)
    : head_options_(head), device_(options.device) {
  const auto tensor_options = at::TensorOptions().dtype(options.dtype).device(options.device);
  model_ = register_module(
      "model", std::make_shared<LlamaModel>(std::move(config), options.attention,
                                            options.projection_factory, tensor_options));
  model_->set_activation_checkpointing(options.activation_checkpointing);
  head_ = register_module("score", make_head(model_->config().hidden_size, head, device_));
}

std::shared_ptr<LsLlama> LsLlama::from_pretrained(const fs::path& hf_dir,
                                                  const ModelOptions& options,
                                                  const HeadOptions& head, LoadStats* stats) {
  const auto start = std::chrono::steady_clock::now();
  if (!fs::is_directory(hf_dir)) fail("{}: not a directory", hf_dir.string());
  auto config = load_llama_config(hf_dir / "config.json");
  const auto checkpoint = Checkpoint::open_directory(hf_dir);
  auto model = std::make_shared<LsLlama>(std::move(config), options, head);
  model->model_->load(checkpoint, "model.");
  if (stats) {
    *stats = {};
    for (const auto& parameter : model->model_->parameters()) {
      ++stats->tensors;
      stats->bytes += static_cast<int64_t>(parameter.nbytes());
    }
    stats->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return model;
}

void LsLlama::add_lora(const LoraOptions& lora) {
  lora.validate("lora");
  int64_t attached = 0;
  for (const auto& ref : model_->projections()) {
    if (!lora.applies_to(ref.layer, ref.name, "model." + ref.path)) continue;
    ref.projection->add_lora(lora);
    ++attached;
  }
  if (attached == 0) fail("lora: target_modules match no projection of this model");
  lora_ = lora;
}

void LsLlama::set_head(std::shared_ptr<Head> head) {
  head->train(is_training());  // a new head follows the model's train/eval mode
  head_ = replace_module("score", std::move(head));
}

void LsLlama::load_adapter(const fs::path& adapter_dir) {
  const auto adapter = read_peft_adapter_config(adapter_dir / kAdapterConfigFile);
  const auto weights_file = adapter_dir / kAdapterWeightsFile;
  const auto checkpoint = Checkpoint::open_file(weights_file);
  if (adapter.task && *adapter.task != head_options_.task)
    fail("{}: task_type is for {} classification but the model was built for {}",
         (adapter_dir / kAdapterConfigFile).string(), task_type_name(*adapter.task),
         task_type_name(head_options_.task));

  // The head: its label count and bias come from the saved tensors.
  const auto head_weight = std::string(kPeftPrefix) + "score.weight";
  const auto& shape = checkpoint.file_of(head_weight).info(head_weight).shape;
  if (shape.size() != 2 || shape[1] != config().hidden_size)
    fail("{}: tensor '{}' has shape {} but the model's hidden size is {}", weights_file.string(),
         head_weight, shape_string(shape), config().hidden_size);
  auto head = head_options_;
  head.num_labels = shape[0];
  head.bias = checkpoint.contains(std::string(kPeftPrefix) + "score.bias");
  set_head(make_head(config().hidden_size, head, device_));
  head_options_ = head;

  add_lora(adapter.lora);
  for (const auto& ref : model_->projections())
    if (ref.projection->has_lora())
      ref.projection->load_lora(checkpoint, std::string(kPeftPrefix) + "model." + ref.path);
  for (const auto& item : head_->named_parameters())
    checkpoint.read_into(std::string(kPeftPrefix) + "score." + item.key(), item.value());
}

void LsLlama::save_adapter(const fs::path& adapter_dir, bool write) const {
  if (!lora_) fail("{}: this model has no LoRA adapter to save", adapter_dir.string());
  const auto unsharded = unsharded_trainable_parameters();
  if (!write) return;
  std::error_code ec;
  fs::create_directories(adapter_dir, ec);
  if (ec) fail("{}: cannot create directory: {}", adapter_dir.string(), ec.message());
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [name, tensor] : unsharded)
    tensors.emplace_back(peft_name(name), tensor.to(at::kFloat));
  write_safetensors(adapter_dir / kAdapterWeightsFile, tensors, {{"format", "pt"}});
  write_file_atomic(adapter_dir / kAdapterConfigFile,
                    peft_adapter_config_json(*lora_, head_options_.task));
}

at::Tensor LsLlama::hidden_states(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  return model_->forward(input_ids.to(device_), attention_mask.to(device_));
}

at::Tensor LsLlama::logits(const at::Tensor& hidden, const at::Tensor& attention_mask) {
  return head_->forward(hidden, attention_mask.to(hidden.device()));
}

std::vector<std::pair<std::string, at::Tensor>> LsLlama::trainable_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> trainable;
  for (const auto& item : named_parameters())
    if (item.value().requires_grad()) trainable.emplace_back(item.key(), item.value());
  return trainable;
}

std::vector<std::pair<std::string, at::Tensor>> LsLlama::unsharded_trainable_parameters() const {
  return parallel::unsharded_parameters(*this, /*trainable_only=*/true);
}

std::string LsLlama::peft_name(const std::string& name) {
  return kPeftPrefix + name;
}

void LsLlama::merge_lora() {
  for (const auto& ref : model_->projections()) ref.projection->merge_lora();
}

void LsLlama::unmerge_lora() {
  for (const auto& ref : model_->projections()) ref.projection->unmerge_lora();
}

}  // namespace ls
