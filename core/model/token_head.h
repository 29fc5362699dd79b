// TokenHead: one label per token (NER with LS-unLLaMA). Dropout, then a linear map with bias, as
// HF's LlamaForTokenClassification.
#pragma once

#include "core/model/head.h"

namespace ls {

class TokenHead : public Head {
 public:
  TokenHead(int64_t hidden_size, int64_t num_labels, double dropout, const c10::Device& device);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& attention_mask) override;
  TaskType task() const override { return TaskType::kToken; }
  int64_t num_labels() const override { return weight_.size(0); }
  bool has_bias() const override { return true; }

 private:
  at::Tensor weight_;
  at::Tensor bias_;
  double dropout_;
};

}  // namespace ls
