// The metric table: for each kind of task, which metrics can select a checkpoint
// (train.metric), which one `auto` means, and which way each is better. One table, read by the
// config schema (train.metric's choices and validation), the trainer (selection and early
// stopping, and the direction it records with every validation record), the evaluator (it reports
// every selectable metric of its kind) and docs/CONFIG.md (a test compares the two). Torch-free.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/base/task.h"

namespace ls {

enum class MetricDirection { kHigherIsBetter, kLowerIsBetter };

// A selectable metric: its name in metrics.jsonl and EvalResult::metrics, and its direction.
struct MetricRule {
  std::string_view name;
  MetricDirection direction;
  std::string_view meaning;
};

// One kind of task: the metrics it reports that may select a checkpoint, `auto`'s choice first.
struct TaskMetrics {
  TaskType task;
  ProblemType problem;
  std::vector<std::string_view> selectable;  // selectable[0] is the default
  std::string describe() const;              // "sequence single_label", "token"
};

// Every selectable metric, in the order train.metric's choices list them.
const std::vector<MetricRule>& metric_rules();
// The kinds of task: sequence single_label, multi_label, regression, and token.
const std::vector<TaskMetrics>& task_metrics_table();
// The row of a task; token tasks are single_label.
const TaskMetrics& task_metrics(TaskType task, ProblemType problem);

// `auto` resolved: the task's default metric; any other name is returned as it is.
std::string resolve_metric(std::string_view metric, TaskType task, ProblemType problem);
bool is_selectable(std::string_view metric, TaskType task, ProblemType problem);
// The direction of a selectable metric; a name outside the table is a programming error.
MetricDirection metric_direction(std::string_view metric);
bool higher_is_better(std::string_view metric);
// "max" or "min": how metrics.jsonl's validation records name a direction (selection_mode).
std::string_view direction_name(MetricDirection direction);
// Whether `candidate` beats `best` under `metric`'s direction.
bool improves(std::string_view metric, double candidate, double best);

// The table as Markdown (task, metrics, default, and each metric's direction): docs/CONFIG.md's
// "Selection metrics" section, which a test keeps equal to it.
std::string metric_table_markdown();

}  // namespace ls
