// The loss of each problem type, with HF's semantics (LlamaForSequenceClassification's
// `problem_type`), written as a SUM over targets and a NORMALIZER, so that a loss split over
// micro-batches and data-parallel ranks is still the mean of the global batch:
//   loss = (sum over all micro-batches and ranks) / (normalizer over all of them).
//
//   single_label  cross-entropy, torch semantics for class weights w and label smoothing e:
//                 sum = S_i (1-e) w[y_i] (-log p_i[y_i]) + e/C S_c w[c] (-log p_i[c])
//                 normalizer = S_i w[y_i]  (no weights: the labelled positions)
//   multi_label   BCE with logits on every (example, label) pair, optional pos_weight q:
//                 sum = S_ic -(q[c] y log s(x) + (1-y) log(1-s(x))), normalizer = rows x C
//   regression    MSE of the one output against (y - target_mean) / target_std:
//                 sum = S_i (x_i - t_i)^2, normalizer = labelled rows
// Unlabeled entries (kIgnoreIndex in int64 labels, NaN in float targets) count nowhere. Nothing
// here reads device memory back to the host: the mean is one tensor expression.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>
#include <vector>

#include "core/base/task.h"

namespace ls {

struct LossOptions {
  // Single-label: cross-entropy weight per class. Multi-label: BCE pos_weight per label. Empty:
  // none. The length must equal the number of labels.
  std::vector<double> class_weights;
  double label_smoothing = 0;  // single-label only, torch's `label_smoothing`
  double target_mean = 0;      // regression: targets are normalised as (y - mean) / std
  double target_std = 1;
};

class LossFunction {
 public:
  LossFunction() = default;
  // `outputs`: columns of the logits (classes; 1 for regression). Weights live on `device`.
  LossFunction(ProblemType problem, LossOptions options, int64_t outputs, c10::Device device);

  at::Tensor sum(const at::Tensor& logits, const at::Tensor& labels) const;
  // A float32 scalar on the labels' device (the CPU for a host batch: no device sync).
  at::Tensor normalizer(const at::Tensor& labels) const;
  at::Tensor mean(const at::Tensor& logits, const at::Tensor& labels) const;

  ProblemType problem() const { return problem_; }
  const LossOptions& options() const { return options_; }

 private:
  const at::Tensor& weights_on(const c10::Device& device) const;
  void check_shapes(const at::Tensor& logits, const at::Tensor& labels) const;

  ProblemType problem_ = ProblemType::kSingleLabel;
  LossOptions options_;
  int64_t outputs_ = 0;
  at::Tensor weights_;      // on the model's device; undefined without class weights
  at::Tensor weights_cpu_;  // the same on the CPU (normalizers of host batches)
};

}  // namespace ls
