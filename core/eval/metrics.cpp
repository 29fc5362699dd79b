// Metrics (see metrics.h). The chunking rules follow seqeval's get_entities (default mode) and
// its IOB2 scheme (strict mode) so that reported numbers equal what users compute in Python.
#include "core/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "core/base/error.h"

namespace ls {

bool Entity::operator<(const Entity& o) const {
  return std::tie(type, begin, end) < std::tie(o.type, o.begin, o.end);
}

double accuracy(const std::vector<int>& predicted, const std::vector<int>& gold) {
  LS_ASSERT(predicted.size() == gold.size(), "{} predictions for {} labels", predicted.size(),
            gold.size());
  if (gold.empty()) return 0.0;
  long correct = 0;
  for (size_t i = 0; i < gold.size(); ++i) correct += predicted[i] == gold[i];
  return static_cast<double>(correct) / gold.size();
}

double macro_f1(const std::vector<int>& predicted, const std::vector<int>& gold) {
  LS_ASSERT(predicted.size() == gold.size(), "{} predictions for {} labels", predicted.size(),
            gold.size());
  std::set<int> labels(gold.begin(), gold.end());
  labels.insert(predicted.begin(), predicted.end());
  if (labels.empty()) return 0.0;
  double sum = 0;
  for (int label : labels) {
    long tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < gold.size(); ++i) {
      tp += predicted[i] == label && gold[i] == label;
      fp += predicted[i] == label && gold[i] != label;
      fn += predicted[i] != label && gold[i] == label;
    }
    sum += tp == 0 ? 0.0 : 2.0 * tp / (2.0 * tp + fp + fn);
  }
  return sum / labels.size();
}

MultiLabelScores multilabel_scores(const std::vector<std::vector<int>>& predicted,
                                   const std::vector<std::vector<int>>& gold) {
  LS_ASSERT(predicted.size() == gold.size(), "{} predictions for {} labels", predicted.size(),
            gold.size());
  MultiLabelScores scores;
  if (gold.empty()) return scores;
  const size_t labels = gold[0].size();
  std::vector<long> tp(labels, 0), fp(labels, 0), fn(labels, 0);
  long exact = 0;
  for (size_t i = 0; i < gold.size(); ++i) {
    LS_ASSERT(gold[i].size() == labels && predicted[i].size() == labels,
              "row {}: {} / {} labels, expected {}", i, predicted[i].size(), gold[i].size(),
              labels);
    exact += predicted[i] == gold[i];
    for (size_t c = 0; c < labels; ++c) {
      const bool p = predicted[i][c] != 0, g = gold[i][c] != 0;
      tp[c] += p && g, fp[c] += p && !g, fn[c] += !p && g;
    }
  }
  auto f1 = [](long t, long f_p, long f_n) {
    return t == 0 ? 0.0 : 2.0 * t / (2.0 * t + f_p + f_n);
  };
  long all_tp = 0, all_fp = 0, all_fn = 0;
  double sum = 0;
  for (size_t c = 0; c < labels; ++c) {
    scores.per_label_f1.push_back(f1(tp[c], fp[c], fn[c]));
    sum += scores.per_label_f1.back();
    all_tp += tp[c], all_fp += fp[c], all_fn += fn[c];
  }
  scores.micro_f1 = f1(all_tp, all_fp, all_fn);
  scores.macro_f1 = labels ? sum / static_cast<double>(labels) : 0.0;
  scores.subset_accuracy = static_cast<double>(exact) / static_cast<double>(gold.size());
  return scores;
}

std::vector<double> average_ranks(const std::vector<double>& values) {
  std::vector<size_t> order(values.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    const double rank =
        (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;  // mean of i+1 .. j+1
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = rank;
    i = j + 1;
  }
  return ranks;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  LS_ASSERT(x.size() == y.size(), "{} values against {}", x.size(), y.size());
  const size_t n = x.size();
  if (n < 2) return 0.0;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= static_cast<double>(n), my /= static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx <= 0 || syy <= 0) return 0.0;
  return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

RegressionScores regression_scores(const std::vector<double>& predicted,
                                   const std::vector<double>& gold) {
  LS_ASSERT(predicted.size() == gold.size(), "{} predictions for {} targets", predicted.size(),
            gold.size());
  RegressionScores scores;
  if (gold.empty()) return scores;
  for (size_t i = 0; i < gold.size(); ++i) {
    const double e = predicted[i] - gold[i];
    scores.mse += e * e;
    scores.mae += std::abs(e);
  }
  scores.mse /= static_cast<double>(gold.size());
  scores.mae /= static_cast<double>(gold.size());
  scores.pearson = pearson(predicted, gold);
  scores.spearman = pearson(average_ranks(predicted), average_ranks(gold));
  return scores;
}

namespace {

// A tag split as seqeval does: prefix is the first character, type the rest after a '-'
// ("B-PER" -> B, PER; "O" -> O, "_"; "PER" -> P, ER is avoided by using the part after '-').
struct SplitTag {
  char prefix;
  std::string type;
};

SplitTag split(const std::string& tag) {
  if (tag.empty()) return {'O', "_"};
  std::string rest = tag.substr(1);
  auto dash = rest.find('-');
  std::string type = dash == std::string::npos ? rest : rest.substr(dash + 1);
  return {tag[0], type.empty() ? "_" : type};
}

bool end_of_chunk(char prev_tag, char tag, const std::string& prev_type, const std::string& type) {
  if (prev_tag == 'E' || prev_tag == 'S') return true;
  if ((prev_tag == 'B' || prev_tag == 'I') && (tag == 'B' || tag == 'S' || tag == 'O')) return true;
  return prev_tag != 'O' && prev_tag != '.' && prev_type != type;
}

bool start_of_chunk(char prev_tag, char tag, const std::string& prev_type,
                    const std::string& type) {
  if (tag == 'B' || tag == 'S') return true;
  if ((prev_tag == 'E' || prev_tag == 'S' || prev_tag == 'O') && (tag == 'E' || tag == 'I'))
    return true;
  return tag != 'O' && tag != '.' && prev_type != type;
}

std::vector<Entity> default_entities(const std::vector<std::string>& tags) {
  std::vector<Entity> chunks;
  char prev_tag = 'O';
  std::string prev_type;
  long begin = 0;
  for (size_t i = 0; i <= tags.size(); ++i) {
    SplitTag t = i < tags.size() ? split(tags[i]) : SplitTag{'O', "_"};
    if (end_of_chunk(prev_tag, t.prefix, prev_type, t.type))
      chunks.push_back({prev_type, begin, static_cast<long>(i) - 1});
    if (start_of_chunk(prev_tag, t.prefix, prev_type, t.type)) begin = static_cast<long>(i);
    prev_tag = t.prefix;
    prev_type = t.type;
  }
  return chunks;
}

// Strict IOB2: an entity is B-X followed by any number of I-X; an I- that does not continue an
// entity of its type starts nothing.
std::vector<Entity> strict_iob2_entities(const std::vector<std::string>& tags) {
  std::vector<Entity> entities;
  size_t i = 0;
  while (i < tags.size()) {
    SplitTag t = split(tags[i]);
    if (t.prefix != 'B') {
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < tags.size()) {
      SplitTag next = split(tags[end]);
      if (next.prefix != 'I' || next.type != t.type) break;
      ++end;
    }
    entities.push_back({t.type, static_cast<long>(i), static_cast<long>(end) - 1});
    i = end;
  }
  return entities;
}

void check_strict_tags(const std::vector<std::string>& tags) {
  for (const auto& tag : tags) {
    char p = tag.empty() ? 'O' : tag[0];
    if (p != 'B' && p != 'I' && p != 'O')
      fail("tag '{}' is not IOB2 (B-, I- or O), which train.ner_mode: strict requires", tag);
  }
}

}  // namespace

std::vector<Entity> extract_entities(const std::vector<std::string>& tags, NerMode mode) {
  if (mode == NerMode::kStrictIob2) {
    check_strict_tags(tags);
    return strict_iob2_entities(tags);
  }
  return default_entities(tags);
}

EntityScores entity_scores(const std::vector<std::vector<std::string>>& predicted,
                           const std::vector<std::vector<std::string>>& gold, NerMode mode) {
  LS_ASSERT(predicted.size() == gold.size(), "{} predicted sentences for {} gold", predicted.size(),
            gold.size());
  // Entities are keyed by sentence so that none spans two sentences.
  std::set<std::pair<size_t, Entity>> gold_set, predicted_set;
  for (size_t s = 0; s < gold.size(); ++s) {
    LS_ASSERT(predicted[s].size() == gold[s].size(), "sentence {}: {} predicted tags for {} gold",
              s, predicted[s].size(), gold[s].size());
    for (auto& e : extract_entities(gold[s], mode)) gold_set.insert({s, e});
    for (auto& e : extract_entities(predicted[s], mode)) predicted_set.insert({s, e});
  }
  EntityScores scores;
  scores.gold_entities = static_cast<long>(gold_set.size());
  scores.predicted_entities = static_cast<long>(predicted_set.size());
  for (const auto& e : predicted_set) scores.correct += gold_set.count(e);
  if (scores.predicted_entities)
    scores.precision = double(scores.correct) / scores.predicted_entities;
  if (scores.gold_entities) scores.recall = double(scores.correct) / scores.gold_entities;
  if (scores.precision + scores.recall > 0)
    scores.f1 = 2 * scores.precision * scores.recall / (scores.precision + scores.recall);
  return scores;
}

}  // namespace ls
