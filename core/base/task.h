// What a task is: where labels go (one per sequence, or one per word), what a label is (HF's
// problem_type), and the label id of positions that carry none. Every layer uses these: data/
// makes labels with them, the model's heads and losses read them, evaluation scores by them.
#pragma once

#include <string_view>

#include "core/base/enum_names.h"

namespace ls {

// One label per example (sequence) or one tag per word (token).
enum class TaskType { kSequence, kToken };

// What a label is, as HF's `problem_type`: one class per example (or per token), a set of
// classes per example (multi-label), or a number (regression).
enum class ProblemType { kSingleLabel, kMultiLabel, kRegression };

// Label id of positions that carry no label (BOS, non-first sub-words, padding): PyTorch's
// cross-entropy ignore_index.
inline constexpr int kIgnoreIndex = -100;

// HF's config.problem_type spelling: single_label_classification, multi_label_classification,
// regression.
constexpr std::string_view hf_problem_type(ProblemType problem) {
  switch (problem) {
    case ProblemType::kSingleLabel:
      return "single_label_classification";
    case ProblemType::kMultiLabel:
      return "multi_label_classification";
    case ProblemType::kRegression:
      return "regression";
  }
  return "?";
}

template <>
struct EnumNames<TaskType> {
  static constexpr std::string_view what = "task";
  static constexpr EnumName<TaskType> table[] = {{TaskType::kSequence, "sequence"},
                                                 {TaskType::kToken, "token"}};
};

template <>
struct EnumNames<ProblemType> {
  static constexpr std::string_view what = "problem type";
  // HF's spellings parse too (head_config.json, --problem-type).
  static constexpr EnumName<ProblemType> table[] = {
      {ProblemType::kSingleLabel, "single_label"},
      {ProblemType::kMultiLabel, "multi_label"},
      {ProblemType::kRegression, "regression"},
      {ProblemType::kSingleLabel, "single_label_classification"},
      {ProblemType::kMultiLabel, "multi_label_classification"}};
};

}  // namespace ls
