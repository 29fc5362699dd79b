// SequenceHead: one label per sequence (LS-LLaMA classification). A linear map of the hidden
// states (no bias, as HF's LlamaForSequenceClassification), pooled over each sequence.
#pragma once

#include "core/model/head.h"

namespace ls {

class SequenceHead : public Head {
 public:
  SequenceHead(int64_t hidden_size, int64_t num_labels, Pooling pooling, bool bias,
               const c10::Device& device);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& attention_mask) override;
  TaskType task() const override { return TaskType::kSequence; }
  int64_t num_labels() const override { return weight_.size(0); }
  bool has_bias() const override { return bias_.defined(); }
  Pooling pooling() const { return pooling_; }

 private:
  at::Tensor weight_;
  at::Tensor bias_;
  Pooling pooling_;
};

}  // namespace ls
