// The evaluator's metrics on synthetic logits, without a model: every selection metric the config
// accepts is one the evaluator reports.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <tuple>

#include "core/base/error.h"
#include "core/train/config.h"
#include "core/train/evaluator.h"

// A named namespace, not an anonymous one: the unity build compiles the suite as one file.
namespace evaluator_metrics_test {

using ls::data::kIgnoreIndex;

const char* kMinimal = "model: {path: /models/llama}\ndata: {train: train.jsonl}\n";

// train.metric's choices, as the schema documents them: "... (auto \| accuracy \| ... \| loss) |".
std::vector<std::string> metric_choices() {
  std::istringstream docs(ls::config_docs_markdown());
  for (std::string row; std::getline(docs, row);) {
    if (!row.starts_with("| `train.metric` |")) continue;
    const size_t open = row.rfind('('), close = row.rfind(')');
    std::istringstream list(row.substr(open + 1, close - open - 1));
    std::vector<std::string> choices;
    for (std::string word; list >> word;)
      if (word != "\\|") choices.push_back(word);
    return choices;
  }
  return {};
}

// Two labelled examples of the config's kind, with logits that predict something for each.
struct Synthetic {
  ls::data::Dataset dataset;
  ls::data::LabelMap labels;
  at::Tensor logits;
};

Synthetic synthetic(ls::data::TaskType task, ls::data::ProblemType problem) {
  using ls::data::ProblemType;
  Synthetic s;
  s.dataset.task = task;
  s.dataset.problem = problem;
  s.dataset.examples.resize(2);
  for (auto& e : s.dataset.examples) e.labeled = true;
  auto [a, b] = std::tie(s.dataset.examples[0], s.dataset.examples[1]);
  if (task == ls::data::TaskType::kToken) {
    s.labels = ls::data::LabelMap({"O", "B-PER", "I-PER"});
    for (auto* e : {&a, &b}) {
      e->input_ids = {1, 5, 6, 2};
      e->word_ids = {-1, 0, 1, -1};
      e->labels = {kIgnoreIndex, 1, 2, kIgnoreIndex};
      e->word_labels = {1, 2};
      e->num_words = 2;
    }
    s.logits = at::randn({2, 4, 3});
  } else if (problem == ProblemType::kMultiLabel) {
    s.labels = ls::data::LabelMap({"a", "b", "c"});
    a.label_ids = {0}, b.label_ids = {1, 2};
    s.logits = at::randn({2, 3});
  } else if (problem == ProblemType::kRegression) {
    s.labels = ls::data::LabelMap({"target"});
    a.target = 1, b.target = 2;
    s.logits = at::randn({2, 1});
  } else {
    s.labels = ls::data::LabelMap({"neg", "pos"});
    a.label = 0, b.label = 1;
    s.logits = at::randn({2, 2});
  }
  s.dataset.num_labels = s.labels.size();
  return s;
}

ls::data::Batch all_rows(const ls::data::Dataset& dataset) {
  ls::data::Batch batch;
  for (int64_t i = 0; i < dataset.size(); ++i) batch.example_indices.push_back(i);
  return batch;
}

// A run selects the best evaluation by train.metric; one the evaluator does not report would end
// the run at its first evaluation. Each accepted (task.type, task.problem_type, train.metric) is
// scored here on synthetic logits.
TEST(EvaluatorMetrics, EverySelectionMetricTheConfigAcceptsIsOneTheEvaluatorReports) {
  const std::vector<std::string> metrics = metric_choices();
  ASSERT_GE(metrics.size(), 10u);
  int accepted = 0;
  for (const std::string type : {"sequence", "token"})
    for (const std::string problem : {"single_label", "multi_label", "regression"})
      for (const std::string& metric : metrics) {
        ls::Config config;
        try {
          config = ls::Config::parse(
              kMinimal, "cfg.yaml",
              {"task.type=" + type, "task.problem_type=" + problem, "train.metric=" + metric});
        } catch (const ls::UserError&) {
          continue;  // refused before anything runs: fine
        }
        ++accepted;
        const Synthetic s = synthetic(config.task.type, config.task.problem_type);
        ls::EvalResult result =
            ls::evaluate_logits(s.logits, all_rows(s.dataset), s.dataset, s.labels);
        result.metrics["loss"] = 0;  // evaluate() adds the loss to every labelled split's metrics
        EXPECT_TRUE(result.metrics.count(ls::selection_metric(config)))
            << type << " " << problem << " train.metric: " << metric << " selects "
            << ls::selection_metric(config) << ", which the evaluator does not report";
      }
  // sequence: single_label 4 (auto, loss, accuracy, macro_f1), multi_label 5, regression 6;
  // token: 3 (auto, loss, entity_f1).
  EXPECT_EQ(accepted, 18);
}

TEST(EvaluatorMetrics, ATokenTaskRefusesSequenceMetricsNamingTrainMetricAndTheValidOnes) {
  for (const std::string metric : {"accuracy", "macro_f1"}) {
    std::string error;
    try {
      ls::Config::parse(kMinimal, "cfg.yaml", {"task.type=token", "train.metric=" + metric});
    } catch (const ls::UserError& e) {
      error = e.what();
    }
    EXPECT_NE(error.find("train.metric: '" + metric + "' is not a token metric"), std::string::npos)
        << error;
    EXPECT_NE(error.find("auto, entity_f1, loss"), std::string::npos) << error;
  }
}

}  // namespace evaluator_metrics_test
