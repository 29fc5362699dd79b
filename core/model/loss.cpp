// Losses per problem type (see loss.h).
#include "core/model/loss.h"

#include <ATen/ATen.h>

#include "core/base/error.h"
#include "core/base/shape_string.h"

namespace ls {

namespace {}

LossFunction::LossFunction(ProblemType problem, LossOptions options, int64_t outputs,
                           c10::Device device)
    : problem_(problem), options_(std::move(options)), outputs_(outputs) {
  if (problem_ == ProblemType::kRegression && outputs_ != 1)
    fail("task.problem_type: regression has one output, the head has {}", outputs_);
  if (!options_.class_weights.empty()) {
    if (problem_ == ProblemType::kRegression)
      fail("task.class_weights: regression has no classes to weight");
    if (static_cast<int64_t>(options_.class_weights.size()) != outputs_)
      fail(
          "task.class_weights: {} weights for {} labels (one weight per label, in label-map order)",
          options_.class_weights.size(), outputs_);
    weights_cpu_ = at::tensor(options_.class_weights, at::kDouble).to(at::kFloat);
    weights_ = weights_cpu_.to(device);
  }
  if (options_.label_smoothing != 0 && problem_ != ProblemType::kSingleLabel)
    fail("task.label_smoothing: only single_label cross-entropy is smoothed");
  if (options_.label_smoothing < 0 || options_.label_smoothing >= 1)
    fail("task.label_smoothing: {} is outside [0, 1)", options_.label_smoothing);
  if (!(options_.target_std > 0)) fail("regression target std {} must be > 0", options_.target_std);
}

const at::Tensor& LossFunction::weights_on(const c10::Device& device) const {
  return device.is_cpu() ? weights_cpu_ : weights_;
}

void LossFunction::check_shapes(const at::Tensor& logits, const at::Tensor& labels) const {
  const auto columns = logits.size(-1);
  bool ok = false;
  switch (problem_) {
    case ProblemType::kSingleLabel:
      ok = labels.numel() * columns == logits.numel() && !at::isFloatingType(labels.scalar_type());
      break;
    case ProblemType::kMultiLabel:
      ok = labels.sizes() == logits.sizes() && at::isFloatingType(labels.scalar_type());
      break;
    case ProblemType::kRegression:
      ok = columns == 1 && labels.numel() == logits.numel() &&
           at::isFloatingType(labels.scalar_type());
      break;
  }
  if (!ok)
    fail("{} labels {} ({}) do not match logits {}", enum_name(problem_),
         shape_string(labels.sizes()), c10::toString(labels.scalar_type()),
         shape_string(logits.sizes()));
}

at::Tensor LossFunction::sum(const at::Tensor& logits, const at::Tensor& labels) const {
  check_shapes(logits, labels);
  const auto x = logits.to(at::kFloat);
  switch (problem_) {
    case ProblemType::kSingleLabel: {
      const auto flat = labels.reshape({-1});
      // A bad id is a caller's mistake worth one clear message; the check reads the labels, so
      // it runs only where they are host memory (the trainer's batches are mapped in range by
      // the data pipeline; on a GPU torch's own kernel assert still catches one).
      if (flat.device().is_cpu() && flat.numel() > 0) {
        const auto real = flat.masked_select(flat.ne(kIgnoreIndex));
        if (real.numel() > 0) {
          const auto low = real.min().item<int64_t>(), high = real.max().item<int64_t>();
          if (low < 0 || high >= outputs_)
            fail("labels: label {} is outside [0, {}) (use -100 to ignore a position)",
                 low < 0 ? low : high, outputs_);
        }
      }
      const auto& w = weights_on(x.device());
      return at::cross_entropy_loss(x.reshape({-1, outputs_}), flat,
                                    w.defined() ? std::optional<at::Tensor>(w) : std::nullopt,
                                    at::Reduction::None, kIgnoreIndex, options_.label_smoothing)
          .sum();
    }
    case ProblemType::kMultiLabel: {
      const auto real = labels.isnan().logical_not();
      const auto& w = weights_on(x.device());
      return at::binary_cross_entropy_with_logits(
                 x, labels.to(at::kFloat).nan_to_num(0), real.to(at::kFloat),
                 w.defined() ? std::optional<at::Tensor>(w) : std::nullopt, at::Reduction::None)
          .sum();
    }
    case ProblemType::kRegression: {
      const auto y = labels.reshape({-1}).to(at::kFloat);
      const auto real = y.isnan().logical_not();
      const auto target = (y.nan_to_num(0) - options_.target_mean) / options_.target_std;
      return ((x.reshape({-1}) - target).square() * real).sum();
    }
  }
  return {};
}

at::Tensor LossFunction::normalizer(const at::Tensor& labels) const {
  if (problem_ != ProblemType::kSingleLabel)
    return labels.isnan().logical_not().sum().to(at::kFloat);
  const auto flat = labels.reshape({-1});
  const auto real = flat.ne(kIgnoreIndex);
  const auto& w = weights_on(flat.device());
  if (!w.defined()) return real.sum().to(at::kFloat);
  // torch's weighted mean: divided by the weights of the targets.
  return (w.index_select(0, flat.clamp(0, outputs_ - 1)) * real).sum();
}

at::Tensor LossFunction::mean(const at::Tensor& logits, const at::Tensor& labels) const {
  return sum(logits, labels) / normalizer(labels.to(logits.device()));
}

}  // namespace ls
