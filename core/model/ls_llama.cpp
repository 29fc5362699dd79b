// LsLlama: loading, adapters and the forward pass (see ls_llama.h).
#include "core/model/ls_llama.h"

#include <ATen/ATen.h>

#include <chrono>

#include "core/base/error.h"
#include "core/base/shape_string.h"
#include "core/io/checkpoint.h"
#include "core/model/llama_config.h"
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
  head_->set_dropout_site(DropoutSite{dropout_, dropout_site_id(-1, "score"), 0, {}});
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
    ref.projection->set_dropout_site(
        DropoutSite{dropout_, dropout_site_id(ref.layer, ref.name), 0, {}});
    ++attached;
  }
  if (attached == 0) fail("lora: target_modules match no projection of this model");
  lora_ = lora;
}

void LsLlama::set_head(std::shared_ptr<Head> head) {
  head->train(is_training());  // a new head follows the model's train/eval mode
  head->set_dropout_site(DropoutSite{dropout_, dropout_site_id(-1, "score"), 0, {}});
  head_ = replace_module("score", std::move(head));
}

void LsLlama::set_head(const HeadOptions& options) {
  set_head(make_head(config().hidden_size, options, device_));
  head_options_ = options;
}

at::Tensor LsLlama::hidden_states(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  return model_->forward(input_ids.to(device_), attention_mask.to(device_));
}

void LsLlama::set_dropout_keys(const at::Tensor& row_keys) {
  dropout_->set(row_keys.to(device_, /*non_blocking=*/true));
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
