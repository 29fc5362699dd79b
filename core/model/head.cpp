// Head names, the shared loss and the head factory (see head.h).
#include "core/model/head.h"

#include <ATen/ATen.h>

#include "core/base/error.h"
#include "core/base/shape_string.h"
#include "core/model/sequence_head.h"
#include "core/model/token_head.h"

namespace ls {

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
         enum_name(options.problem));
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
