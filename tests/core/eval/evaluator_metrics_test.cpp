// The evaluator's metrics on synthetic logits, without a model: every selection metric the config
// accepts is one the evaluator reports, NER scores count the words truncation cut, and a prediction
// is described by the same object in ls_predict's lines and ls_serve's answers.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <sstream>
#include <tuple>

#include "core/base/error.h"
#include "core/eval/evaluator.h"
#include "core/run/config.h"
#include "data/batch.h"

// A named namespace, not an anonymous one: the unity build compiles the suite as one file.
namespace evaluator_metrics_test {

using ls::kIgnoreIndex;

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

Synthetic synthetic(ls::TaskType task, ls::ProblemType problem) {
  using ls::ProblemType;
  Synthetic s;
  s.dataset.task = task;
  s.dataset.problem = problem;
  s.dataset.examples.resize(2);
  for (auto& e : s.dataset.examples) e.labeled = true;
  auto [a, b] = std::tie(s.dataset.examples[0], s.dataset.examples[1]);
  if (task == ls::TaskType::kToken) {
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

// Every example in one batch, padded as the loader pads.
ls::data::Batch all_rows(const ls::data::Dataset& dataset,
                         ls::data::PaddingSide side = ls::data::PaddingSide::kRight) {
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < dataset.size(); ++i) indices.push_back(i);
  ls::data::CollateOptions options;
  options.padding_side = side;
  return ls::data::collate(dataset, indices, options);
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

// Two NER sentences, "John lives in Paris" cut after "lives" by max_length and "Mary Ann sings"
// whole, with logits that predict every kept word's gold tag.
struct NerWithACutSentence {
  ls::data::Dataset dataset;
  ls::data::LabelMap labels{{"O", "B-PER", "I-PER", "B-LOC"}};
  at::Tensor logits;
  NerWithACutSentence();
};

NerWithACutSentence::NerWithACutSentence() {
  dataset.task = ls::TaskType::kToken;
  dataset.num_labels = labels.size();
  dataset.examples.resize(2);
  auto [cut, whole] = std::tie(dataset.examples[0], dataset.examples[1]);
  cut.input_ids = {1, 10, 11, 2};  // BOS John lives EOS: max_length 4 dropped "in Paris"
  cut.word_ids = {-1, 0, 1, -1};
  cut.labels = {kIgnoreIndex, 1, 0, kIgnoreIndex};
  cut.word_labels = {1, 0, 0, 3};
  cut.num_words = 4, cut.truncated = true, cut.labeled = true;
  whole.input_ids = {1, 12, 13, 14, 2};
  whole.word_ids = {-1, 0, 1, 2, -1};
  whole.labels = {kIgnoreIndex, 1, 2, 0, kIgnoreIndex};
  whole.word_labels = {1, 2, 0};
  whole.num_words = 3, whole.labeled = true;
  // Logits that predict every kept word's gold tag.
  at::Tensor logits = at::zeros({2, 5, 4});
  logits[0][1][1] = 5, logits[0][2][0] = 5;
  logits[1][1][1] = 5, logits[1][2][2] = 5, logits[1][3][0] = 5;
  this->logits = logits;
}

// seqeval on the full sentences: gold [B-PER O O B-LOC], [B-PER I-PER O]; the first was cut after
// two words (in, Paris), which count as predicted O. precision 1, recall 2/3, f1 0.8, accuracy
// 6/7 (seqeval.metrics on these lists gives the same). Scoring only the kept words would claim
// recall 1.
TEST(EvaluatorMetrics, NerScoresCountAGoldEntityCutByTruncationAsMissed) {
  const NerWithACutSentence ner;
  const auto& [dataset, labels, logits] = std::tie(ner.dataset, ner.labels, ner.logits);
  const ls::EvalResult result = ls::evaluate_logits(logits, all_rows(dataset), dataset, labels);
  EXPECT_DOUBLE_EQ(result.metrics.at("entity_precision"), 1.0);
  EXPECT_DOUBLE_EQ(result.metrics.at("entity_recall"), 2.0 / 3);
  EXPECT_DOUBLE_EQ(result.metrics.at("entity_f1"), 0.8);
  EXPECT_DOUBLE_EQ(result.metrics.at("tag_accuracy"), 6.0 / 7);
  EXPECT_EQ(result.metrics.at("truncated_words"), 2.0);
  EXPECT_EQ(result.predictions[0].tags, (std::vector<int>{1, 0}));  // kept words only
}

// Token logits map back to words from where each row's tokens start: with left padding the short
// row's tokens sit at the end. The same logits, shifted as collate shifts the ids, must give the
// same tags and scores on either side; a wrong offset reads the padding's logits instead.
TEST(EvaluatorMetrics, LeftPaddedTokenLogitsMapToTheSameWordsAsRightPadded) {
  ls::data::Dataset dataset;
  dataset.task = ls::TaskType::kToken;
  const ls::data::LabelMap labels({"O", "B-PER", "I-PER", "B-LOC"});
  dataset.num_labels = labels.size();
  dataset.examples.resize(2);
  auto [longer, shorter] = std::tie(dataset.examples[0], dataset.examples[1]);
  longer.input_ids = {1, 10, 11, 12, 13, 2};  // BOS Anna Maria visits Rome EOS
  longer.word_ids = {-1, 0, 1, 2, 3, -1};
  longer.labels = {kIgnoreIndex, 1, 2, 0, 3, kIgnoreIndex};
  longer.word_labels = {1, 2, 0, 3};
  longer.num_words = 4, longer.labeled = true;
  shorter.input_ids = {1, 14, 15};  // BOS Paris sleeps
  shorter.word_ids = {-1, 0, 1};
  shorter.labels = {kIgnoreIndex, 3, 0};
  shorter.word_labels = {3, 0};
  shorter.num_words = 2, shorter.labeled = true;

  // Right-padded logits that predict every gold tag; the padding predicts I-PER everywhere.
  const at::Tensor right = at::zeros({2, 6, 4});
  right.select(2, 2).fill_(1);
  for (int64_t row = 0; row < 2; ++row) {
    const auto& e = dataset.examples[row];
    for (size_t t = 0; t < e.labels.size(); ++t)
      if (e.labels[t] != kIgnoreIndex) right[row][static_cast<int64_t>(t)][e.labels[t]] = 5;
  }
  // The same per-token logits, each row shifted as left padding shifts its ids.
  const at::Tensor left = at::zeros_like(right);
  left.select(2, 2).fill_(1);
  left[0].copy_(right[0]);
  left[1].narrow(0, 3, 3).copy_(right[1].narrow(0, 0, 3));

  const auto right_batch = all_rows(dataset, ls::data::PaddingSide::kRight);
  const auto left_batch = all_rows(dataset, ls::data::PaddingSide::kLeft);
  ASSERT_EQ(left_batch.input_ids[1][3].item<int64_t>(), 1);  // BOS after three pads
  const auto from_right = ls::evaluate_logits(right, right_batch, dataset, labels);
  const auto from_left = ls::evaluate_logits(left, left_batch, dataset, labels);
  EXPECT_DOUBLE_EQ(from_right.metrics.at("entity_f1"), 1.0);
  EXPECT_DOUBLE_EQ(from_right.metrics.at("tag_accuracy"), 1.0);
  EXPECT_EQ(from_left.metrics, from_right.metrics);
  ASSERT_EQ(from_left.predictions.size(), 2u);
  EXPECT_EQ(from_left.predictions[1].tags, (std::vector<int>{3, 0}));
  EXPECT_EQ(from_left.predictions[0].tags, (std::vector<int>{1, 2, 0, 3}));
  for (size_t row = 0; row < 2; ++row)
    EXPECT_EQ(from_left.predictions[row].scores, from_right.predictions[row].scores);
}

// A word split into several pieces is tagged at its first piece (as training labels it), whether
// only the first piece carries the label or every piece does (data.label_all_subwords). The other
// pieces here predict another tag more strongly: an evaluator reading the last piece (or any but
// the first) gets every multi-piece word wrong.
TEST(EvaluatorMetrics, MultiPieceWordsAreTaggedAtTheirFirstPieceWithOrWithoutLabelAllSubwords) {
  const ls::data::LabelMap labels({"O", "B-PER", "I-PER", "B-LOC"});
  for (const bool all_subwords : {false, true}) {
    SCOPED_TRACE(all_subwords ? "label_all_subwords" : "first sub-word labelled");
    ls::data::Dataset dataset;
    dataset.task = ls::TaskType::kToken;
    dataset.num_labels = labels.size();
    dataset.examples.resize(1);
    ls::data::Example& e = dataset.examples[0];
    // BOS Johannes|burg|er is Ann|-|Marie EOS: words B-LOC, O, B-PER.
    e.input_ids = {1, 20, 21, 22, 23, 24, 25, 26, 2};
    e.word_ids = {-1, 0, 0, 0, 1, 2, 2, 2, -1};
    const int32_t kIgnore = kIgnoreIndex;
    e.labels = all_subwords ? std::vector<int32_t>{kIgnore, 3, 3, 3, 0, 1, 1, 1, kIgnore}
                            : std::vector<int32_t>{kIgnore, 3,       kIgnore, kIgnore, 0,
                                                   1,       kIgnore, kIgnore, kIgnore};
    e.word_labels = {3, 0, 1};
    e.num_words = 3, e.labeled = true;
    EXPECT_EQ(ls::gold_word_tags(e), (std::vector<int>{3, 0, 1}));
    at::Tensor logits = at::zeros({1, 9, 4});
    for (int64_t t : {1, 4, 5}) logits[0][t][e.labels[static_cast<size_t>(t)]] = 5;  // first pieces
    for (int64_t t : {2, 3, 6, 7}) logits[0][t][2] = 9;  // the other pieces: I-PER, more sure
    const ls::EvalResult result = ls::evaluate_logits(logits, all_rows(dataset), dataset, labels);
    ASSERT_EQ(result.predictions.size(), 1u);
    EXPECT_EQ(result.predictions[0].tags, (std::vector<int>{3, 0, 1}));
    EXPECT_DOUBLE_EQ(result.metrics.at("entity_f1"), 1.0);
    EXPECT_DOUBLE_EQ(result.metrics.at("tag_accuracy"), 1.0);
  }
}

// The scores other answer formats start from (ls_serve's HF and vLLM routes): a sequence kind's
// raw logits, whatever its probabilities are made of.
TEST(EvaluatorMetrics, SequenceScoresAreTheRawLogitsOfEveryClass) {
  for (const ls::ProblemType problem : {ls::ProblemType::kSingleLabel, ls::ProblemType::kMultiLabel,
                                        ls::ProblemType::kRegression}) {
    const Synthetic s = synthetic(ls::TaskType::kSequence, problem);
    const auto result = ls::evaluate_logits(s.logits, all_rows(s.dataset), s.dataset, s.labels);
    ASSERT_EQ(result.predictions.size(), 2u);
    for (int64_t row = 0; row < 2; ++row) {
      const at::Tensor logits = s.logits[row].contiguous();
      const std::vector<float> expected(logits.data_ptr<float>(),
                                        logits.data_ptr<float>() + logits.numel());
      const ls::Prediction& p = result.predictions[static_cast<size_t>(row)];
      EXPECT_EQ(p.scores, expected);
      if (problem != ls::ProblemType::kMultiLabel) continue;
      for (size_t c = 0; c < expected.size(); ++c) {
        EXPECT_FLOAT_EQ(p.probabilities[c], 1 / (1 + std::exp(-expected[c])));
      }
    }
  }
}

// A token prediction scores each kept word with the probability of its tag at its first
// sub-word: 5 against three zeros, e^5 / (e^5 + 3).
TEST(EvaluatorMetrics, TokenScoresAreEachKeptWordsTagProbability) {
  const NerWithACutSentence ner;
  const auto result =
      ls::evaluate_logits(ner.logits, all_rows(ner.dataset), ner.dataset, ner.labels);
  const float p = static_cast<float>(std::exp(5.0) / (std::exp(5.0) + 3));
  ASSERT_EQ(result.predictions.size(), 2u);
  ASSERT_EQ(result.predictions[0].scores.size(), 2u);  // the kept words only
  ASSERT_EQ(result.predictions[1].scores.size(), 3u);
  for (const auto& prediction : result.predictions)
    for (float score : prediction.scores) EXPECT_FLOAT_EQ(score, p);
}

// ls_predict's lines and ls_serve's answers are the same objects: the tags' entity spans over the
// kept words, a cut input marked, gold only where asked; a line adds "line" and "gold".
TEST(EvaluatorMetrics, PredictionObjectsAreTheJsonlLinesWithoutLineAndGold) {
  NerWithACutSentence ner;
  ner.dataset.examples[0].line = 3, ner.dataset.examples[1].line = 9;
  ls::data::RawDataset raw;
  raw.task = ls::TaskType::kToken;
  raw.records.resize(2);
  raw.records[0].words = {"John", "lives", "in", "Paris"};
  raw.records[1].words = {"Mary", "Ann", "sings"};
  const ls::EvalResult result =
      ls::evaluate_logits(ner.logits, all_rows(ner.dataset), ner.dataset, ner.labels);
  const auto objects = ls::prediction_objects(result, raw, ner.dataset, ner.labels, false);
  ASSERT_EQ(objects.size(), 2u);
  EXPECT_EQ(objects[0],
            nlohmann::json::parse(R"({"words": ["John", "lives"], "tags": ["B-PER", "O"],
      "entities": [{"type": "PER", "start": 0, "end": 1, "text": "John"}],
      "truncated": true, "truncated_words": 2})"));
  EXPECT_EQ(objects[1], nlohmann::json::parse(R"({"words": ["Mary", "Ann", "sings"],
      "tags": ["B-PER", "I-PER", "O"],
      "entities": [{"type": "PER", "start": 0, "end": 2, "text": "Mary Ann"}]})"));

  std::istringstream lines(ls::predictions_jsonl(result, raw, ner.dataset, ner.labels));
  std::vector<nlohmann::json> parsed;
  for (std::string line; std::getline(lines, line);) parsed.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[0]["line"], 3);
  EXPECT_EQ(parsed[1]["line"], 9);
  EXPECT_EQ(parsed[0]["gold"], nlohmann::json({"B-PER", "O"}));
  EXPECT_EQ(parsed[1]["gold"], nlohmann::json({"B-PER", "I-PER", "O"}));
  for (size_t i = 0; i < 2; ++i) {
    parsed[i].erase("line");
    parsed[i].erase("gold");
    EXPECT_EQ(parsed[i], objects[i]);
  }
}

}  // namespace evaluator_metrics_test
