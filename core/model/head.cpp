// Head names, the shared loss and the head factory (see head.h).
#include "core/model/head.h"

#include <ATen/ATen.h>

#include "core/base/error.h"
#include "core/base/shape_string.h"
#include "core/model/sequence_head.h"
#include "core/model/token_head.h"

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
  return LossFunction(ProblemType::kSingleLabel, {}, logits.size(-1), logits.device())
      .mean(logits, labels);
}

std::shared_ptr<Head> make_head(int64_t hidden_size, const HeadOptions& options,
                                const c10::Device& device) {
  if (options.num_labels < 1)
    fail("head: number of labels must be positive, got {}", options.num_labels);
  if (options.task == TaskType::kToken && options.problem != ProblemType::kSingleLabel)
    fail("task.problem_type: {} needs task.type: sequence (token heads are single_label)",
         data::to_string(options.problem));
  LossFunction loss(options.problem, options.loss, options.num_labels, device);
  std::shared_ptr<Head> head;
  if (options.task == TaskType::kSequence)
    head = std::make_shared<SequenceHead>(hidden_size, options.num_labels, options.pooling,
                                          options.bias, device);
  else
    head = std::make_shared<TokenHead>(hidden_size, options.num_labels, options.dropout, device);
  head->set_loss_function(std::move(loss));
  return head;
}

}  // namespace ls
