// The metric table (see metric_table.h).
#include "core/eval/metric_table.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/base/error.h"

namespace ls {

const std::vector<MetricRule>& metric_rules() {
  using enum MetricDirection;
  static const std::vector<MetricRule> rules = {
      {"accuracy", kHigherIsBetter, "fraction of examples classified right"},
      {"macro_f1", kHigherIsBetter, "unweighted mean of per-label F1 (scikit-learn)"},
      {"entity_f1", kHigherIsBetter, "micro-averaged entity F1 (seqeval, train.ner_mode)"},
      {"micro_f1", kHigherIsBetter, "F1 over every (example, label) decision (scikit-learn)"},
      {"subset_accuracy", kHigherIsBetter, "fraction of examples whose whole label set is right"},
      {"pearson", kHigherIsBetter, "Pearson correlation (scipy.stats.pearsonr)"},
      {"spearman", kHigherIsBetter, "Spearman rank correlation (scipy.stats.spearmanr)"},
      {"mse", kLowerIsBetter, "mean squared error"},
      {"mae", kLowerIsBetter, "mean absolute error"},
      {"loss", kLowerIsBetter, "the training loss on the split"},
  };
  return rules;
}

const std::vector<TaskMetrics>& task_metrics_table() {
  using enum ProblemType;
  static const std::vector<TaskMetrics> table = {
      {TaskType::kSequence, kSingleLabel, {"macro_f1", "accuracy", "loss"}},
      {TaskType::kSequence, kMultiLabel, {"micro_f1", "macro_f1", "subset_accuracy", "loss"}},
      {TaskType::kSequence, kRegression, {"pearson", "spearman", "mse", "mae", "loss"}},
      {TaskType::kToken, kSingleLabel, {"entity_f1", "loss"}},
  };
  return table;
}

std::string TaskMetrics::describe() const {
  if (task == TaskType::kToken) return std::string(enum_name(task));
  return fmt::format("{} {}", enum_name(task), enum_name(problem));
}

const TaskMetrics& task_metrics(TaskType task, ProblemType problem) {
  if (task == TaskType::kToken) problem = ProblemType::kSingleLabel;
  for (const auto& row : task_metrics_table())
    if (row.task == task && row.problem == problem) return row;
  LS_ASSERT(false, "no metric table row for this task");
  return task_metrics_table().front();
}

std::string resolve_metric(std::string_view metric, TaskType task, ProblemType problem) {
  if (metric == "auto") return std::string(task_metrics(task, problem).selectable.front());
  return std::string(metric);
}

bool is_selectable(std::string_view metric, TaskType task, ProblemType problem) {
  const auto& selectable = task_metrics(task, problem).selectable;
  return metric == "auto" ||
         std::find(selectable.begin(), selectable.end(), metric) != selectable.end();
}

MetricDirection metric_direction(std::string_view metric) {
  for (const auto& rule : metric_rules())
    if (rule.name == metric) return rule.direction;
  LS_ASSERT(false, "'{}' is not a selectable metric", metric);
  return MetricDirection::kHigherIsBetter;
}

bool higher_is_better(std::string_view metric) {
  return metric_direction(metric) == MetricDirection::kHigherIsBetter;
}

std::string_view direction_name(MetricDirection direction) {
  return direction == MetricDirection::kHigherIsBetter ? "max" : "min";
}

bool improves(std::string_view metric, double candidate, double best) {
  return higher_is_better(metric) ? candidate > best : candidate < best;
}

std::string metric_table_markdown() {
  std::string out = "| task | selectable metrics (`auto` = the first) |\n|---|---|\n";
  for (const auto& row : task_metrics_table()) {
    std::string names;
    for (const auto& name : row.selectable)
      names += fmt::format("{}`{}`", names.empty() ? "" : ", ", name);
    out += fmt::format("| {} | {} |\n", row.describe(), names);
  }
  out += "\n| metric | better | meaning |\n|---|---|---|\n";
  for (const auto& rule : metric_rules())
    out += fmt::format("| `{}` | {} | {} |\n", rule.name,
                       rule.direction == MetricDirection::kHigherIsBetter ? "higher" : "lower",
                       rule.meaning);
  return out;
}

}  // namespace ls
