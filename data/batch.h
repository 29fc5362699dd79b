// Batch: what the trainer consumes, and collate(), which pads examples into one. This and
// loader.cpp are the only parts of data/ that see ATen.
//
// Padding is dynamic (to the longest example in the batch, optionally rounded up to a multiple),
// on the right by default or on the left. LLaMA's tokenizer has no pad piece, so the pad id is
// configured; padded positions have attention_mask 0 and label kIgnoreIndex, so which id pads
// does not change results unless the model is told to attend to padding.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "data/dataset.h"
#include "data/sampler.h"

namespace ls::data {

enum class PaddingSide { kRight, kLeft };

struct CollateOptions {
  int64_t pad_id = 0;
  PaddingSide padding_side = PaddingSide::kRight;
  int64_t pad_to_multiple_of = 1;  // e.g. 8 for tensor cores
  bool pin_memory = false;         // page-locked host tensors, for asynchronous copies to the GPU
};

struct Batch {
  at::Tensor input_ids;       // [B, T] int64
  at::Tensor attention_mask;  // [B, T] int64: 1 on ids, 0 on padding
  at::Tensor labels;          // single-label: sequence task [B] int64, token task [B, T] int64,
                              // kIgnoreIndex where nothing is to be learned; multi-label [B, C]
                              // float32 0/1; regression [B] float32; NaN rows are unlabeled
  at::Tensor word_ids;        // token task [B, T] int64: word index of each id, -1 elsewhere;
                              // undefined for sequence tasks
  std::vector<int64_t> example_indices;  // dataset index of each row: for predictions, and
                                         // the training step's keyed dropout masks
  int64_t epoch = 0;                     // which epoch, and which of its batches, this is
  int64_t index = 0;
  SamplerPosition next;  // the position after this batch: save it to resume after it

  int64_t size() const { return static_cast<int64_t>(example_indices.size()); }
};

// Word-level predictions of batch row `row`, from per-position class ids `predicted` ([B, T],
// any integer dtype, on the CPU): each word takes the prediction at its first sub-word. Words with
// no position in the batch (cut by truncation) get kIgnoreIndex. The result has one entry per word
// of the source sentence, aligned with Example::word_labels. Token tasks only.
std::vector<int32_t> word_predictions(const Dataset& dataset, const Batch& batch, int64_t row,
                                      const at::Tensor& predicted);

// Pads the examples at `indices` of `dataset` into a Batch (CPU tensors). An empty index list
// gives [0, 0] tensors (a rank's empty share of an evaluation epoch).
Batch collate(const Dataset& dataset, const std::vector<int64_t>& indices,
              const CollateOptions& options);

}  // namespace ls::data

namespace ls {

template <>
struct EnumNames<data::PaddingSide> {
  static constexpr std::string_view what = "padding side";
  static constexpr EnumName<data::PaddingSide> table[] = {{data::PaddingSide::kRight, "right"},
                                                          {data::PaddingSide::kLeft, "left"}};
};

}  // namespace ls
