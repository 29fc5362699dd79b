// What a task is: where labels go (one per sequence, or one per word) and what a label is (HF's
// problem_type), with their names (enum_names.h). Every layer uses these two enums.
#pragma once

#include <string_view>

#include "core/base/enum_names.h"

namespace ls::data {

// One label per example (sequence) or one tag per word (token).
enum class TaskType { kSequence, kToken };

// What a label is, as HF's `problem_type`: one class per example (or per token), a set of
// classes per example (multi-label), or a number (regression).
enum class ProblemType { kSingleLabel, kMultiLabel, kRegression };

// HF's config.problem_type spelling: single_label_classification, multi_label_classification,
// regression.
std::string_view hf_problem_type(ProblemType problem);

}  // namespace ls::data

namespace ls {

template <>
struct EnumNames<data::TaskType> {
  static constexpr std::string_view what = "task";
  static constexpr EnumName<data::TaskType> table[] = {{data::TaskType::kSequence, "sequence"},
                                                       {data::TaskType::kToken, "token"}};
};

template <>
struct EnumNames<data::ProblemType> {
  static constexpr std::string_view what = "problem type";
  // HF's spellings parse too (head_config.json, --problem-type).
  static constexpr EnumName<data::ProblemType> table[] = {
      {data::ProblemType::kSingleLabel, "single_label"},
      {data::ProblemType::kMultiLabel, "multi_label"},
      {data::ProblemType::kRegression, "regression"},
      {data::ProblemType::kSingleLabel, "single_label_classification"},
      {data::ProblemType::kMultiLabel, "multi_label_classification"}};
};

}  // namespace ls
