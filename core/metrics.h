// Evaluation metrics, with the semantics of the libraries users compare against:
// accuracy and macro-F1 as scikit-learn computes them, entity precision/recall/F1 as seqeval
// computes them (its default conlleval-style mode and its strict IOB2 mode).
#pragma once

#include <string>
#include <vector>

namespace ls {

double accuracy(const std::vector<int>& predicted, const std::vector<int>& gold);

// Unweighted mean of per-label F1 over the labels that occur in gold or predictions
// (sklearn.metrics.f1_score(average="macro"), zero_division=0).
double macro_f1(const std::vector<int>& predicted, const std::vector<int>& gold);

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

enum class NerMode { kDefault, kStrictIob2 };

// Entities of one tag sequence (IOB1/IOB2/IOE/IOBES prefixes in default mode; IOB2 in strict).
std::vector<Entity> extract_entities(const std::vector<std::string>& tags, NerMode mode);

// Micro-averaged entity scores over sentences (seqeval precision/recall/f1_score).
EntityScores entity_scores(const std::vector<std::vector<std::string>>& predicted,
                           const std::vector<std::vector<std::string>>& gold, NerMode mode);

}  // namespace ls
