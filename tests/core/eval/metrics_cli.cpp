// Test helper for tests/core/eval/test_eval_metrics.py: reads cases as JSON lines on stdin
// ({"pred": [...], "gold": [...]} with ints for sequence labels or lists of tag lists for NER;
// with "kind": "multilabel" 0/1 indicator rows, with "kind": "regression" numbers)
// and prints ls-train's metrics for each as a JSON line, for comparison with scikit-learn/seqeval.
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/eval/metrics.h"

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    auto c = nlohmann::json::parse(line);
    nlohmann::json out;
    const std::string kind = c.value("kind", "");
    if (kind == "multilabel") {
      using Rows = std::vector<std::vector<int>>;
      auto s = ls::multilabel_scores(c["pred"].get<Rows>(), c["gold"].get<Rows>());
      out = {{"micro_f1", s.micro_f1},
             {"macro_f1", s.macro_f1},
             {"subset_accuracy", s.subset_accuracy},
             {"per_label_f1", s.per_label_f1}};
    } else if (kind == "regression") {
      auto s = ls::regression_scores(c["pred"].get<std::vector<double>>(),
                                     c["gold"].get<std::vector<double>>());
      out = {{"mse", s.mse}, {"mae", s.mae}, {"pearson", s.pearson}, {"spearman", s.spearman}};
    } else if (c["gold"].empty() || c["gold"][0].is_number()) {
      auto pred = c["pred"].get<std::vector<int>>(), gold = c["gold"].get<std::vector<int>>();
      out = {{"accuracy", ls::accuracy(pred, gold)}, {"macro_f1", ls::macro_f1(pred, gold)}};
    } else {
      using Tags = std::vector<std::vector<std::string>>;
      auto pred = c["pred"].get<Tags>(), gold = c["gold"].get<Tags>();
      for (auto [name, mode] : {std::pair{"default", ls::NerMode::kDefault},
                                std::pair{"strict", ls::NerMode::kStrictIob2}}) {
        auto s = ls::entity_scores(pred, gold, mode);
        out[name] = {{"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}};
      }
    }
    std::cout << out.dump() << "\n";
  }
}
