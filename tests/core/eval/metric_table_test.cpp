// The metric table (core/eval/metric_table.h): every selectable metric has a direction, `auto`
// resolves to each task's first metric, errors and losses are minimised, and docs/CONFIG.md's
// "Selection metrics" section is the table itself.
#include "core/eval/metric_table.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/support/test_util.h"

// A named namespace, not an anonymous one: the unity build compiles the suite as one file.
namespace metric_table_test {

TEST(MetricTable, EverySelectableMetricHasARuleAndEveryRuleIsSelectableSomewhere) {
  std::set<std::string_view> selectable, ruled;
  for (const auto& row : ls::task_metrics_table())
    for (auto name : row.selectable) selectable.insert(name);
  for (const auto& rule : ls::metric_rules()) ruled.insert(rule.name);
  EXPECT_EQ(selectable, ruled);
}

TEST(MetricTable, AutoIsEachTasksFirstMetricAsTheConfigDocumentsIt) {
  using ls::ProblemType, ls::TaskType;
  EXPECT_EQ(ls::resolve_metric("auto", TaskType::kSequence, ProblemType::kSingleLabel), "macro_f1");
  EXPECT_EQ(ls::resolve_metric("auto", TaskType::kSequence, ProblemType::kMultiLabel), "micro_f1");
  EXPECT_EQ(ls::resolve_metric("auto", TaskType::kSequence, ProblemType::kRegression), "pearson");
  EXPECT_EQ(ls::resolve_metric("auto", TaskType::kToken, ProblemType::kSingleLabel), "entity_f1");
  EXPECT_EQ(ls::resolve_metric("mae", TaskType::kSequence, ProblemType::kRegression), "mae");
}

TEST(MetricTable, LossesAndErrorsAreMinimisedScoresMaximised) {
  for (const char* lower : {"loss", "mse", "mae"}) {
    EXPECT_FALSE(ls::higher_is_better(lower)) << lower;
    EXPECT_TRUE(ls::improves(lower, 0.1, 0.2)) << lower;
    EXPECT_EQ(ls::direction_name(ls::metric_direction(lower)), "min");
  }
  for (const char* higher : {"accuracy", "macro_f1", "entity_f1", "pearson", "spearman"}) {
    EXPECT_TRUE(ls::higher_is_better(higher)) << higher;
    EXPECT_FALSE(ls::improves(higher, 0.1, 0.2)) << higher;
    EXPECT_EQ(ls::direction_name(ls::metric_direction(higher)), "max");
  }
  EXPECT_FALSE(ls::improves("accuracy", 0.5, 0.5)) << "a tie is no improvement";
}

TEST(MetricTable, TokenTasksAreSingleLabelAndOfferOnlyEntityF1AndLoss) {
  using ls::ProblemType, ls::TaskType;
  EXPECT_TRUE(ls::is_selectable("entity_f1", TaskType::kToken, ProblemType::kSingleLabel));
  EXPECT_FALSE(ls::is_selectable("accuracy", TaskType::kToken, ProblemType::kSingleLabel));
  EXPECT_FALSE(ls::is_selectable("entity_f1", TaskType::kSequence, ProblemType::kSingleLabel));
  EXPECT_TRUE(ls::is_selectable("auto", TaskType::kSequence, ProblemType::kRegression));
}

// After changing the table, paste metric_table_markdown() (`ls_train --metric-docs`) between the
// markers.
TEST(MetricTable, DocsConfigCarriesTheTableItself) {
  const auto section = ls::test::generated_doc_section("docs/CONFIG.md", "metric-table");
  ASSERT_TRUE(section) << "docs/CONFIG.md lacks the metric-table marker lines";
  EXPECT_EQ(*section, ls::metric_table_markdown())
      << "docs/CONFIG.md's metric table is stale: paste `ls_train --metric-docs` between the "
         "markers";
}

}  // namespace metric_table_test
