// collate(): examples -> padded int64 tensors (see batch.h).
#include "data/batch.h"

#include <ATen/ops/empty.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>

#include "core/base/error.h"

namespace ls::data {

Batch collate(const Dataset& dataset, const std::vector<int64_t>& indices,
              const CollateOptions& options) {
  LS_ASSERT(options.pad_to_multiple_of >= 1, "pad_to_multiple_of {}", options.pad_to_multiple_of);
  const bool token_task = dataset.task == TaskType::kToken;
  const int64_t rows = static_cast<int64_t>(indices.size());
  int64_t width = 0;
  for (int64_t index : indices) {
    LS_ASSERT(index >= 0 && index < dataset.size(), "example {} of {}", index, dataset.size());
    width =
        std::max<int64_t>(width, static_cast<int64_t>(dataset.examples[index].input_ids.size()));
  }
  const int64_t multiple = options.pad_to_multiple_of;
  width = (width + multiple - 1) / multiple * multiple;

  const auto long_options = at::TensorOptions().dtype(at::kLong).pinned_memory(options.pin_memory);
  auto make = [&](std::initializer_list<int64_t> shape, int64_t fill) {
    at::Tensor t = at::empty(shape, long_options);
    std::fill_n(t.data_ptr<int64_t>(), t.numel(), fill);
    return t;
  };
  Batch batch;
  batch.example_indices = indices;
  batch.input_ids = make({rows, width}, options.pad_id);
  batch.attention_mask = make({rows, width}, 0);
  const ProblemType problem = token_task ? ProblemType::kSingleLabel : dataset.problem;
  if (problem == ProblemType::kSingleLabel) {
    batch.labels = token_task ? make({rows, width}, kIgnoreIndex) : make({rows}, kIgnoreIndex);
  } else {
    // Float targets; NaN marks an unlabeled row.
    const int64_t columns = problem == ProblemType::kMultiLabel ? dataset.num_labels : 1;
    batch.labels = at::empty(
        {rows, columns}, at::TensorOptions().dtype(at::kFloat).pinned_memory(options.pin_memory));
    float* target = batch.labels.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r) {
      const Example& example = dataset.examples[indices[r]];
      float* row = target + r * columns;
      if (!example.labeled) {
        std::fill_n(row, columns, std::numeric_limits<float>::quiet_NaN());
      } else if (problem == ProblemType::kRegression) {
        row[0] = example.target;
      } else {
        std::fill_n(row, columns, 0.0f);
        for (int32_t id : example.label_ids) row[id] = 1.0f;
      }
    }
    if (problem == ProblemType::kRegression) batch.labels = batch.labels.view({rows});
  }
  if (token_task) batch.word_ids = make({rows, width}, -1);

  int64_t* ids = batch.input_ids.data_ptr<int64_t>();
  int64_t* mask = batch.attention_mask.data_ptr<int64_t>();
  int64_t* labels =
      problem == ProblemType::kSingleLabel ? batch.labels.data_ptr<int64_t>() : nullptr;
  int64_t* words = token_task ? batch.word_ids.data_ptr<int64_t>() : nullptr;
  for (int64_t r = 0; r < rows; ++r) {
    const Example& example = dataset.examples[indices[r]];
    const int64_t length = static_cast<int64_t>(example.input_ids.size());
    const int64_t offset =
        r * width + (options.padding_side == PaddingSide::kLeft ? width - length : 0);
    std::copy(example.input_ids.begin(), example.input_ids.end(), ids + offset);
    std::fill_n(mask + offset, length, 1);
    if (token_task) {
      LS_ASSERT(example.labels.size() == example.input_ids.size() &&
                    example.word_ids.size() == example.input_ids.size(),
                "example {}: {} ids but {} labels and {} word ids", indices[r], length,
                example.labels.size(), example.word_ids.size());
      std::copy(example.labels.begin(), example.labels.end(), labels + offset);
      std::copy(example.word_ids.begin(), example.word_ids.end(), words + offset);
    } else if (labels) {
      labels[r] = example.label;
    }
  }
  return batch;
}

std::vector<int32_t> word_predictions(const Dataset& dataset, const Batch& batch, int64_t row,
                                      const at::Tensor& predicted) {
  LS_ASSERT(dataset.task == TaskType::kToken, "word predictions of a sequence task");
  LS_ASSERT(predicted.dim() == 2 && predicted.size(0) == batch.size() &&
                predicted.size(1) == batch.word_ids.size(1),
            "predictions of shape [{}] for a batch of {} x {}", fmt::join(predicted.sizes(), ", "),
            batch.size(), batch.word_ids.size(1));
  const Example& example = dataset.examples.at(batch.example_indices.at(row));
  const at::Tensor classes = predicted[row].to(at::kLong).contiguous();
  const at::Tensor words = batch.word_ids[row].contiguous();
  const int64_t* p = classes.data_ptr<int64_t>();
  const int64_t* w = words.data_ptr<int64_t>();
  std::vector<int32_t> out(static_cast<size_t>(example.num_words), kIgnoreIndex);
  int64_t previous = -1;
  for (int64_t t = 0; t < words.numel(); ++t) {
    if (w[t] >= 0 && w[t] != previous)
      out.at(static_cast<size_t>(w[t])) = static_cast<int32_t>(p[t]);
    if (w[t] >= 0) previous = w[t];
  }
  return out;
}

}  // namespace ls::data
