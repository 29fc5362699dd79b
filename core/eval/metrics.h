// Evaluation metrics, with the semantics of the libraries users compare against:
// accuracy and macro-F1 as scikit-learn computes them, entity precision/recall/F1 as seqeval
// computes them (its default conlleval-style mode and its strict IOB2 mode), multi-label F1 and
// subset accuracy as scikit-learn on indicator matrices, Pearson and Spearman as scipy.stats.
#pragma once

#include <string>
#include <vector>

#include "core/base/enum_names.h"

namespace ls {

double accuracy(const std::vector<int>& predicted, const std::vector<int>& gold);

// Unweighted mean of per-label F1 over the labels that occur in gold or predictions
// (sklearn.metrics.f1_score(average="macro"), zero_division=0).
double macro_f1(const std::vector<int>& predicted, const std::vector<int>& gold);

// Multi-label, on 0/1 indicator rows (one entry per label): sklearn's f1_score(average="micro"
// and "macro", zero_division=0; macro averages over every label, present or not), per-label F1
// (average=None) and accuracy_score (subset accuracy: the whole set right).
struct MultiLabelScores {
  double micro_f1 = 0, macro_f1 = 0, subset_accuracy = 0;
  std::vector<double> per_label_f1;
};
MultiLabelScores multilabel_scores(const std::vector<std::vector<int>>& predicted,
                                   const std::vector<std::vector<int>>& gold);

// Regression: mean squared and absolute error, scipy.stats.pearsonr and spearmanr (ranks with
// ties averaged). A constant input has no correlation: 0 here (scipy returns NaN).
struct RegressionScores {
  double mse = 0, mae = 0, pearson = 0, spearman = 0;
};
RegressionScores regression_scores(const std::vector<double>& predicted,
                                   const std::vector<double>& gold);
// 1-based ranks, ties given the mean of the ranks they span (scipy.stats.rankdata "average").
std::vector<double> average_ranks(const std::vector<double>& values);
double pearson(const std::vector<double>& x, const std::vector<double>& y);

struct EntityScores {
  double precision = 0, recall = 0, f1 = 0;
  long gold_entities = 0, predicted_entities = 0, correct = 0;
};

struct Entity {
  std::string type;
  long begin = 0, end = 0;  // inclusive token positions
  bool operator<(const Entity& o) const;
  bool operator==(const Entity& o) const = default;
};

// Entity matching as seqeval: default (conlleval) or strict IOB2.
enum class NerMode { kDefault, kStrictIob2 };

template <>
struct EnumNames<NerMode> {
  static constexpr std::string_view what = "ner mode";
  static constexpr EnumName<NerMode> table[] = {{NerMode::kDefault, "default"},
                                                {NerMode::kStrictIob2, "strict"}};
};

// Entities of one tag sequence (IOB1/IOB2/IOE/IOBES prefixes in default mode; IOB2 in strict).
std::vector<Entity> extract_entities(const std::vector<std::string>& tags, NerMode mode);

// Micro-averaged entity scores over sentences (seqeval precision/recall/f1_score).
EntityScores entity_scores(const std::vector<std::vector<std::string>>& predicted,
                           const std::vector<std::vector<std::string>>& gold, NerMode mode);

}  // namespace ls
