// Test helper for tests/python/test_train_metrics.py: reads cases as JSON lines on stdin
// ({"pred": [...], "gold": [...]} with ints for sequence labels or lists of tag lists for NER)
// and prints ls-train's metrics for each as a JSON line, for comparison with scikit-learn/seqeval.
#include <nlohmann/json.hpp>

#include <iostream>

#include "core/metrics.h"

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    auto c = nlohmann::json::parse(line);
    nlohmann::json out;
    if (c["gold"].empty() || c["gold"][0].is_number()) {
      auto pred = c["pred"].get<std::vector<int>>(), gold = c["gold"].get<std::vector<int>>();
      out = {{"accuracy", ls::accuracy(pred, gold)}, {"macro_f1", ls::macro_f1(pred, gold)}};
    } else {
      using Tags = std::vector<std::vector<std::string>>;
      auto pred = c["pred"].get<Tags>(), gold = c["gold"].get<Tags>();
      for (auto [name, mode] : {std::pair{"default", ls::NerMode::kDefault}, std::pair{"strict", ls::NerMode::kStrictIob2}}) {
        auto s = ls::entity_scores(pred, gold, mode);
        out[name] = {{"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}};
      }
    }
    std::cout << out.dump() << "\n";
  }
}
