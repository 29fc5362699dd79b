// Label heads: what turns final hidden states into label logits, and the loss on them. One small
// interface; each head is one file (sequence_head, token_head). Heads are registered by the
// classifier as `score`, the name HF and PEFT give them, and keep float32 weights whatever the
// base dtype (they are trained). The head's shape is the problem's: C outputs for single- and
// multi-label, 1 for regression; the loss (loss.h) is chosen by the problem type, so the same
// pooling and projection serve all three.
#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/model/choices.h"
#include "core/model/keyed_dropout.h"
#include "core/model/loss.h"

namespace ls {

class Head : public torch::nn::Module {
 public:
  // hidden [B, T, H] (any float dtype), attention_mask [B, T] -> float32 logits: [B, C] for a
  // sequence head, [B, T, C] for a token head.
  virtual at::Tensor forward(const at::Tensor& hidden, const at::Tensor& attention_mask) = 0;
  virtual TaskType task() const = 0;
  virtual int64_t num_labels() const = 0;
  virtual bool has_bias() const = 0;
  // The problem's mean loss (loss.h): cross-entropy over labels != -100 ([B] or [B, T] int64),
  // BCE over [B, C] float targets, or MSE over [B] float targets.
  at::Tensor loss(const at::Tensor& logits, const at::Tensor& labels) const {
    return loss_.mean(logits, labels);
  }
  const LossFunction& loss_function() const { return loss_; }
  void set_loss_function(LossFunction loss) { loss_ = std::move(loss); }
  // Where a head with dropout takes its masks from (keyed_dropout.h); the model sets it.
  void set_dropout_site(DropoutSite site) { dropout_site_ = std::move(site); }

 protected:
  DropoutSite dropout_site_;

 private:
  LossFunction loss_;
};

struct HeadOptions {
  TaskType task = TaskType::kSequence;
  ProblemType problem = ProblemType::kSingleLabel;  // token heads: single-label only
  int64_t num_labels = 2;                           // outputs: classes, or 1 for regression
  LossOptions loss;        // class weights, label smoothing, regression target normalisation
  double threshold = 0.5;  // multi-label: a label is predicted when sigmoid(logit) >= threshold
  Pooling pooling = Pooling::kLast;  // sequence heads
  double dropout = 0.1;              // token heads (HF's default classifier dropout)
  bool bias = false;                 // sequence: false as HF; token heads always have one
};

// A freshly initialised head (weights normal(0, 0.02), bias zero, as HF initialises them) on
// `device`, float32.
std::shared_ptr<Head> make_head(int64_t hidden_size, const HeadOptions& options,
                                const c10::Device& device);

// Mean single-label cross-entropy, no weights (the default head's loss).
at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& labels);

}  // namespace ls
