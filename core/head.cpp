// Head names, the shared loss and the head factory (see head.h).
#include "core/head.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "core/sequence_head.h"
#include "core/shape_string.h"
#include "core/token_head.h"

namespace ls {

TaskType parse_task_type(std::string_view name, std::string_view where) {
  if (name == "sequence") return TaskType::kSequence;
  if (name == "token") return TaskType::kToken;
  fail("{}: unknown task '{}' (expected sequence or token)", where, name);
}

Pooling parse_pooling(std::string_view name, std::string_view where) {
  if (name == "last") return Pooling::kLast;
  if (name == "mean") return Pooling::kMean;
  if (name == "max") return Pooling::kMax;
  fail("{}: unknown pooling '{}' (expected last, mean or max)", where, name);
}

std::string task_type_name(TaskType task) {
  return task == TaskType::kSequence ? "sequence" : "token";
}

std::string pooling_name(Pooling pooling) {
  switch (pooling) {
    case Pooling::kLast:
      return "last";
    case Pooling::kMean:
      return "mean";
    case Pooling::kMax:
      return "max";
  }
  return "?";
}

at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& labels) {
  const auto classes = logits.size(-1);
  if (labels.numel() * classes != logits.numel())
    fail("labels {} do not match logits {}", shape_string(labels.sizes()),
         shape_string(logits.sizes()));
  const auto valid = labels.ne(kIgnoreIndex);
  if (valid.any().item<bool>()) {
    const auto real = labels.masked_select(valid);
    const auto [low, high] = at::aminmax(real);
    if (low.item<int64_t>() < 0 || high.item<int64_t>() >= classes)
      fail("labels: label {} is outside [0, {}) (use -100 to ignore a position)",
           low.item<int64_t>() < 0 ? low.item<int64_t>() : high.item<int64_t>(), classes);
  }
  return at::cross_entropy_loss(logits.reshape({-1, classes}).to(at::kFloat), labels.reshape({-1}),
                                /*weight=*/{}, at::Reduction::Mean, kIgnoreIndex);
}

at::Tensor Head::loss(const at::Tensor& logits, const at::Tensor& labels) const {
  return cross_entropy(logits, labels);
}

std::shared_ptr<Head> make_head(int64_t hidden_size, const HeadOptions& options,
                                const c10::Device& device) {
  if (options.num_labels < 1)
    fail("head: number of labels must be positive, got {}", options.num_labels);
  if (options.task == TaskType::kSequence)
    return std::make_shared<SequenceHead>(hidden_size, options.num_labels, options.pooling,
                                          options.bias, device);
  return std::make_shared<TokenHead>(hidden_size, options.num_labels, options.dropout, device);
}

}  // namespace ls
