// Metrics on hand-checked cases; tests/core/eval/test_eval_metrics.py compares with the reference
// libraries on random ones.
#include "core/eval/metrics.h"

#include <gtest/gtest.h>

#include "core/base/error.h"

TEST(Metrics, AccuracyAndMacroF1) {
  EXPECT_DOUBLE_EQ(ls::accuracy({0, 1, 1, 2}, {0, 1, 2, 2}), 0.75);
  // label 0: f1 1; label 1: p 1/2 r 1 -> 2/3; label 2: p 1 r 1/2 -> 2/3
  EXPECT_NEAR(ls::macro_f1({0, 1, 1, 2}, {0, 1, 2, 2}), (1 + 2.0 / 3 + 2.0 / 3) / 3, 1e-12);
}

TEST(Metrics, DefaultModeTreatsIAfterOAsABeginning) {
  auto e = ls::extract_entities({"O", "I-PER", "I-PER", "O", "B-LOC"}, ls::NerMode::kDefault);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0], (ls::Entity{"PER", 1, 2}));
  EXPECT_EQ(e[1], (ls::Entity{"LOC", 4, 4}));
}

TEST(Metrics, StrictModeIgnoresEntitiesWithoutB) {
  auto e = ls::extract_entities({"O", "I-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"},
                                ls::NerMode::kStrictIob2);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], (ls::Entity{"LOC", 3, 4}));
  EXPECT_THROW(ls::extract_entities({"S-PER"}, ls::NerMode::kStrictIob2), ls::UserError);
}

TEST(Metrics, EntityScoresAreMicroAveragedAndNeverSpanSentences) {
  std::vector<std::vector<std::string>> gold = {{"B-PER", "I-PER"}, {"I-PER", "O"}};
  std::vector<std::vector<std::string>> pred = {{"B-PER", "I-PER"}, {"O", "O"}};
  auto s = ls::entity_scores(pred, gold, ls::NerMode::kDefault);
  EXPECT_EQ(s.gold_entities, 2);
  EXPECT_EQ(s.predicted_entities, 1);
  EXPECT_DOUBLE_EQ(s.precision, 1.0);
  EXPECT_DOUBLE_EQ(s.recall, 0.5);
  EXPECT_NEAR(s.f1, 2.0 / 3, 1e-12);
}
