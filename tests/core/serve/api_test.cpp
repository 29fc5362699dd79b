// The request parsers and the JSON answers of every schema ls_serve speaks (core/serve/api.h):
// its own /v1/predict, HF Inference API / TEI and vLLM, without a socket or a model.
#include "core/serve/api.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <regex>

#include "core/base/error.h"
#include "core/infer/predictor.h"

namespace ls::serve {
namespace {

// The UserError message parse_predict_body raises for `body` (empty when it parses).
std::string parse_error(const std::string& body, bool token_task) {
  try {
    parse_predict_body(body, token_task);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(PredictBody, TextsParseInOrder) {
  const auto inputs = parse_predict_body(R"({"inputs": ["a good film", "dull"]})", false);
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0].text, "a good film");
  EXPECT_FALSE(inputs[0].is_words);
  EXPECT_EQ(inputs[1].text, "dull");
}

TEST(PredictBody, ASequenceTaskTakesTextPairsAsObjects) {
  const auto inputs = parse_predict_body(
      R"({"inputs": [{"text": "a man sleeps", "text_pair": "a person rests"}, "joined"]})", false);
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0].text, "a man sleeps");
  EXPECT_EQ(inputs[0].text_pair, "a person rests");
  EXPECT_FALSE(inputs[1].text_pair.has_value());
  EXPECT_NE(parse_error(R"({"inputs": [{"text": "a"}]})", false).find("inputs[0]: expected"),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"inputs": [{"text": "a", "text_pair": "b"}]})", true)
                .find("inputs[0]: expected"),
            std::string::npos);
}

TEST(PredictBody, TokenTasksTakeWordListsAndTextsMixed) {
  const auto inputs =
      parse_predict_body(R"({"inputs": [["jordan", "said"], "peru borders"]})", true);
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_TRUE(inputs[0].is_words);
  EXPECT_EQ(inputs[0].words, (std::vector<std::string>{"jordan", "said"}));
  EXPECT_FALSE(inputs[1].is_words);
  EXPECT_EQ(inputs[1].text, "peru borders");
}

TEST(PredictBody, EveryBadBodyIsAUserErrorSayingWhatIsWrong) {
  EXPECT_NE(parse_error("{not json", false).find("malformed JSON"), std::string::npos);
  EXPECT_NE(parse_error("{\"inputs\": [\"\xff\"]}", false).find("malformed JSON"),
            std::string::npos);
  EXPECT_NE(parse_error("[1, 2]", false).find("a JSON object with \"inputs\""), std::string::npos);
  EXPECT_NE(parse_error(R"({"texts": ["a"]})", false).find("\"inputs\""), std::string::npos);
  EXPECT_NE(parse_error(R"({"inputs": "a"})", false).find("must be an array"), std::string::npos);
  EXPECT_NE(parse_error(R"({"inputs": []})", false).find("is empty"), std::string::npos);
  EXPECT_NE(parse_error(R"({"inputs": ["a", 3]})", false).find("inputs[1]: expected a string"),
            std::string::npos);
}

TEST(PredictBody, AWordListIsRefusedForASequenceTaskAndANonStringWordForATokenTask) {
  EXPECT_NE(parse_error(R"({"inputs": [["a", "b"]]})", false).find("inputs[0]: expected a string"),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"inputs": ["ok", ["a", 1]]})", true)
                .find("inputs[1]: every word must be a string"),
            std::string::npos);
  EXPECT_EQ(parse_error(R"({"inputs": [["a", "b"]]})", true), "");
}

TEST(PredictBody, TruncateIsAnOptionalBooleanAndNumbersOutOfRangeAreUserErrors) {
  EXPECT_EQ(parse_error(R"({"inputs": ["a"], "truncate": true})", false), "");
  EXPECT_NE(parse_error(R"({"inputs": ["a"], "truncate": "yes"})", false)
                .find("\"truncate\" must be true or false"),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"inputs": ["a"], "x": 1e400})", false).find("malformed JSON"),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"inputs": ["a"], "x": -1e400})", false).find("malformed JSON"),
            std::string::npos);
}

TEST(Answers, AnErrorIsOneJsonObjectWithItsStatus) {
  const Answer answer = error_answer(413, "too many");
  EXPECT_EQ(answer.status, 413);
  EXPECT_EQ(answer.content_type, "application/json");
  EXPECT_EQ(answer.body, "{\"error\":\"too many\"}\n");
}

TEST(Answers, PredictionsAreWrappedInOrderAndInvalidUtf8IsReplacedNotThrown) {
  const Answer answer = predictions_answer({nlohmann::json{{"label", "a"}}, nlohmann::json(1.5)});
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(nlohmann::json::parse(answer.body),
            (nlohmann::json{{"predictions", {{{"label", "a"}}, 1.5}}}));
  EXPECT_NO_THROW(json_answer(200, nlohmann::json{{"x", "\xff"}}));
}

}  // namespace
}  // namespace ls::serve

namespace ls::serve {
namespace {

using nlohmann::json;

ModelSummary sentiment() {
  ModelSummary model;
  model.labels = {"negative", "neutral", "positive"};
  model.name = "sst3";
  model.path = "/runs/sst3";
  model.max_length = 64;
  model.dtype = "float32";
  return model;
}

ModelSummary ner() {
  ModelSummary model = sentiment();
  model.task = TaskType::kToken;
  model.labels = {"O", "B-LOC", "I-LOC", "B-PER"};
  model.name = "conll";
  return model;
}

// The UserError message parse_request raises (empty when it parses).
std::string request_error(Api api, const std::string& body, const ModelSummary& model) {
  try {
    parse_request(api, body, model);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

// The answer's body as JSON.
json answer_of(Api api, const std::string& body, std::vector<Output> outputs,
               const ModelSummary& model, int64_t prompt_tokens = 0) {
  const Answer answer =
      client_answer(api, parse_request(api, body, model), std::move(outputs), model, prompt_tokens);
  EXPECT_EQ(answer.status, 200);
  return json::parse(answer.body);
}

Output sequence_output(std::vector<float> logits) {
  return Output{json{{"label", "whatever"}}, std::move(logits)};
}

std::vector<double> softmax(const std::vector<double>& x) {
  double sum = 0;
  for (double v : x) sum += std::exp(v);
  std::vector<double> out;
  for (double v : x) out.push_back(std::exp(v) / sum);
  return out;
}

TEST(ClientRequests, OwnSchemaCarriesTheTruncateFlag) {
  const ClientRequest request =
      parse_request(Api::kLs, R"({"inputs": ["a", "b"], "truncate": true})", sentiment());
  ASSERT_EQ(request.inputs.size(), 2u);
  EXPECT_TRUE(request.truncate);
  EXPECT_FALSE(parse_request(Api::kLs, R"({"inputs": ["a"]})", sentiment()).truncate);
}

TEST(ClientRequests, HfTakesABareStringOrAListAndItsParameters) {
  const ClientRequest one = parse_request(Api::kHf, R"({"inputs": "a good film"})", sentiment());
  ASSERT_EQ(one.inputs.size(), 1u);
  EXPECT_TRUE(one.single);
  EXPECT_EQ(one.inputs[0].text, "a good film");
  EXPECT_FALSE(one.top_k.has_value());
  EXPECT_EQ(one.function, ScoreFunction::kDefault);

  const ClientRequest many = parse_request(
      Api::kHf,
      R"({"inputs": ["a", "b", "c"], "parameters": {"top_k": 2, "function_to_apply": "sigmoid"},
          "truncate": true})",
      sentiment());
  ASSERT_EQ(many.inputs.size(), 3u);
  EXPECT_FALSE(many.single);
  EXPECT_EQ(many.top_k, 2u);
  EXPECT_EQ(many.function, ScoreFunction::kSigmoid);
  EXPECT_TRUE(many.truncate);
  // What huggingface_hub sends for unset parameters (None is dropped, but null is accepted).
  EXPECT_EQ(
      request_error(Api::kHf, R"({"inputs": "a", "parameters": {"top_k": null}})", sentiment()),
      "");
  EXPECT_EQ(parse_request(Api::kHf, R"({"inputs": "a", "raw_scores": true})", sentiment()).function,
            ScoreFunction::kNone);

  const ClientRequest tokens =
      parse_request(Api::kHf,
                    R"({"inputs": "Paris", "parameters": {"aggregation_strategy": "none",
          "ignore_labels": [], "stride": 16}})",
                    ner());
  EXPECT_EQ(tokens.aggregation, Aggregation::kNone);
  EXPECT_TRUE(tokens.ignore_labels.empty());
  EXPECT_EQ(parse_request(Api::kHf, R"({"inputs": "x"})", ner()).ignore_labels,
            std::vector<std::string>{"O"});
}

TEST(ClientRequests, APairRunTakesTeisPairsAndThePipelinesPairObjects) {
  ModelSummary nli = sentiment();
  nli.pairs = true;
  const ClientRequest one = parse_request(Api::kHf, R"({"inputs": ["a man", "a person"]})", nli);
  ASSERT_EQ(one.inputs.size(), 1u);
  EXPECT_TRUE(one.single);
  EXPECT_EQ(one.inputs[0].text, "a man");
  EXPECT_EQ(one.inputs[0].text_pair, "a person");

  const ClientRequest batch = parse_request(
      Api::kHf, R"({"inputs": [["a", "b"], ["joined"], {"text": "c", "text_pair": "d"}, "e"]})",
      nli);
  ASSERT_EQ(batch.inputs.size(), 4u);
  EXPECT_EQ(batch.inputs[0].text_pair, "b");
  EXPECT_FALSE(batch.inputs[1].text_pair.has_value());
  EXPECT_EQ(batch.inputs[2].text, "c");
  EXPECT_EQ(batch.inputs[2].text_pair, "d");
  EXPECT_EQ(batch.inputs[3].text, "e");

  const ClientRequest object =
      parse_request(Api::kHf, R"({"inputs": {"text": "a", "text_pair": "b"}})", nli);
  EXPECT_TRUE(object.single);
  EXPECT_EQ(object.inputs[0].text_pair, "b");

  // A run on single texts: two strings are two texts.
  const ClientRequest two = parse_request(Api::kHf, R"({"inputs": ["a", "b"]})", sentiment());
  EXPECT_EQ(two.inputs.size(), 2u);
  EXPECT_FALSE(two.inputs[0].text_pair.has_value());
  EXPECT_NE(request_error(Api::kHf, R"({"inputs": [["a", "b", "c"]]})", nli)
                .find("inputs[0]: expected a string, [text, text_pair]"),
            std::string::npos);
}

TEST(ClientRequests, EveryWrongKeyIsAUserErrorNamingIt) {
  const ModelSummary model = sentiment();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"inputs": "a", "parameters": {"top_k": "2"}})",
       "\"parameters.top_k\" must be an integer"},
      {R"({"inputs": "a", "parameters": {"top_k": 0}})", "\"parameters.top_k\" must be at least 1"},
      {R"({"inputs": "a", "parameters": {"top_k": 1e400}})", "malformed JSON"},
      {R"({"inputs": "a", "parameters": {"function_to_apply": "relu"}})",
       "\"parameters.function_to_apply\" must be one of \"softmax\", \"sigmoid\", \"none\", got "
       "\"relu\""},
      {R"({"inputs": "a", "parameters": {"aggregation_strategy": 3}})",
       "\"parameters.aggregation_strategy\" must be one of"},
      {R"({"inputs": "a", "parameters": {"ignore_labels": "O"}})",
       "\"parameters.ignore_labels\" must be an array"},
      {R"({"inputs": "a", "parameters": [1]})", "\"parameters\" must be an object"},
      {R"({"inputs": "a", "raw_scores": 1})", "\"raw_scores\" must be true or false"},
      {R"({"inputs": "a", "truncate": "no"})", "\"truncate\" must be true or false"},
      {R"({"inputs": "a", "truncation_direction": "left"})", "\"truncation_direction\" must be"},
      {R"({"inputs": 5})", "\"inputs\" must be a string or an array, got number"},
      {R"({"inputs": []})", "\"inputs\" is empty"},
      {R"({"inputs": ["a", 5]})", "inputs[1]: expected a string"},
      {R"({"text": "a"})", "the body must be a JSON object with \"inputs\""},
      {R"("a")", "the body must be a JSON object with \"inputs\""},
  };
  for (const auto& [body, expected] : cases) {
    const std::string error = request_error(Api::kHf, body, model);
    EXPECT_NE(error.find(expected), std::string::npos) << body << " -> " << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
  EXPECT_NE(request_error(Api::kHf, R"({"inputs": [["a", "b"]]})", ner())
                .find("inputs[0]: expected a string, got an array of 2 items"),
            std::string::npos);
}

TEST(HfAnswers, ASequenceAnswerIsOneListPerInputSortedBestFirstWithSoftmaxByDefault) {
  const std::vector<float> logits = {0.5f, -1.0f, 2.0f};
  const json answer =
      answer_of(Api::kHf, R"({"inputs": "a"})", {sequence_output(logits)}, sentiment());
  // One inner list even for a bare string: huggingface_hub reads the answer's first element.
  ASSERT_TRUE(answer.is_array());
  ASSERT_EQ(answer.size(), 1u);
  const json& labels = answer[0];
  ASSERT_EQ(labels.size(), 3u);
  const std::vector<double> p = softmax({0.5, -1.0, 2.0});
  EXPECT_EQ(labels[0]["label"], "positive");
  EXPECT_EQ(labels[1]["label"], "negative");
  EXPECT_EQ(labels[2]["label"], "neutral");
  EXPECT_NEAR(labels[0]["score"].get<double>(), p[2], 1e-6);
  EXPECT_NEAR(labels[1]["score"].get<double>(), p[0], 1e-6);
  EXPECT_NEAR(labels[2]["score"].get<double>(), p[1], 1e-6);
  EXPECT_EQ(labels[0].size(), 2u);  // {"label", "score"} only
}

TEST(HfAnswers, TopKAndFunctionToApplyAndRawScoresShapeTheScores) {
  const std::vector<float> logits = {0.5f, -1.0f, 2.0f};
  const ModelSummary model = sentiment();
  json top = answer_of(Api::kHf, R"({"inputs": ["a", "b"], "parameters": {"top_k": 1}})",
                       {sequence_output(logits), sequence_output({3.0f, 0.0f, 0.0f})}, model);
  ASSERT_EQ(top.size(), 2u);
  ASSERT_EQ(top[0].size(), 1u);
  EXPECT_EQ(top[0][0]["label"], "positive");
  EXPECT_EQ(top[1][0]["label"], "negative");

  const json none =
      answer_of(Api::kHf, R"({"inputs": "a", "parameters": {"function_to_apply": "none"}})",
                {sequence_output(logits)}, model);
  EXPECT_FLOAT_EQ(none[0][0]["score"].get<float>(), 2.0f);
  EXPECT_FLOAT_EQ(none[0][2]["score"].get<float>(), -1.0f);
  const json raw = answer_of(Api::kHf, R"({"inputs": "a", "raw_scores": true})",
                             {sequence_output(logits)}, model);
  EXPECT_EQ(raw, none);
  const json sigmoid =
      answer_of(Api::kHf, R"({"inputs": "a", "parameters": {"function_to_apply": "sigmoid"}})",
                {sequence_output(logits)}, model);
  EXPECT_NEAR(sigmoid[0][0]["score"].get<double>(), 1 / (1 + std::exp(-2.0)), 1e-6);
  EXPECT_NEAR(sigmoid[0][2]["score"].get<double>(), 1 / (1 + std::exp(1.0)), 1e-6);
}

TEST(HfAnswers, MultiLabelDefaultsToSigmoidAndRegressionToThePrediction) {
  ModelSummary genres = sentiment();
  genres.problem = ProblemType::kMultiLabel;
  genres.labels = {"acting", "music"};
  const json multi =
      answer_of(Api::kHf, R"({"inputs": "a"})", {sequence_output({-2.0f, 1.0f})}, genres);
  EXPECT_EQ(multi[0][0]["label"], "music");
  EXPECT_NEAR(multi[0][0]["score"].get<double>(), 1 / (1 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(multi[0][1]["score"].get<double>(), 1 / (1 + std::exp(2.0)), 1e-6);

  ModelSummary stars = sentiment();
  stars.problem = ProblemType::kRegression;
  stars.labels = {"target"};
  // The head's raw output is 0.5; the run normalised its targets, so the prediction is 3.7.
  const Output output{json{{"prediction", 3.7f}}, {0.5f}};
  const json regression = answer_of(Api::kHf, R"({"inputs": "a"})", {output}, stars);
  EXPECT_EQ(regression, json::parse(R"([[{"label": "target", "score": 3.700000047683716}]])"));
}

// A NER answer over "Anna  Müller visits\tZürich 日本 ." (two spaces, a tab, multi-byte
// characters): words and their tags, each word's tag probability.
struct NerCase {
  std::string text = "Anna  Müller visits\tZürich 日本 .";
  Output output{json{{"tags", {"B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"}}},
                {0.9f, 0.7f, 0.99f, 0.8f, 0.6f, 0.95f}};
  std::string body(const std::string& parameters = "{}") const {
    return json{{"inputs", text}, {"parameters", json::parse(parameters)}}.dump();
  }
};

TEST(HfAnswers, NerGroupsWordsIntoEntitiesWithCharacterOffsetsAsThePipelineDoes) {
  const NerCase c;
  const json answer = answer_of(Api::kHf, c.body(), {c.output}, ner());
  // One text: a flat list. Offsets are code points (Python str indices).
  ASSERT_TRUE(answer.is_array());
  ASSERT_EQ(answer.size(), 2u);
  EXPECT_EQ(answer[0]["entity_group"], "PER");
  EXPECT_EQ(answer[0]["word"], "Anna  Müller");
  EXPECT_EQ(answer[0]["start"], 0);
  EXPECT_EQ(answer[0]["end"], 12);
  EXPECT_NEAR(answer[0]["score"].get<double>(), (0.9 + 0.7) / 2, 1e-6);
  EXPECT_EQ(answer[1]["entity_group"], "LOC");
  EXPECT_EQ(answer[1]["word"], "Zürich 日本");
  EXPECT_EQ(answer[1]["start"], 20);
  EXPECT_EQ(answer[1]["end"], 29);
  EXPECT_NEAR(answer[1]["score"].get<double>(), (0.8 + 0.6) / 2, 1e-6);
  EXPECT_EQ(answer[1].size(), 5u);  // entity_group, score, word, start, end
  // "first", "average" and "max" agree on word-level predictions.
  for (const char* strategy : {"first", "average", "max"})
    EXPECT_EQ(
        answer_of(Api::kHf, c.body(std::string(R"({"aggregation_strategy": ")") + strategy + "\"}"),
                  {c.output}, ner()),
        answer);
}

TEST(HfAnswers, NerWithoutAggregationAnswersWordByWordAndHonoursIgnoreLabels) {
  const NerCase c;
  const json words =
      answer_of(Api::kHf, c.body(R"({"aggregation_strategy": "none"})"), {c.output}, ner());
  ASSERT_EQ(words.size(), 4u);  // the O words are ignored
  EXPECT_EQ(words[1], json::parse(R"({"entity": "I-PER", "score": 0.699999988079071, "index": 1,
                                      "word": "Müller", "start": 6, "end": 12})"));
  EXPECT_EQ(words[3]["word"], "日本");
  EXPECT_EQ(words[3]["start"], 27);
  EXPECT_EQ(words[3]["end"], 29);
  EXPECT_EQ(words[3]["index"], 4);

  const json all =
      answer_of(Api::kHf, c.body(R"({"aggregation_strategy": "none", "ignore_labels": []})"),
                {c.output}, ner());
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[5]["word"], ".");
  EXPECT_EQ(all[5]["start"], 30);
  const json no_loc =
      answer_of(Api::kHf, c.body(R"({"ignore_labels": ["O", "LOC"]})"), {c.output}, ner());
  ASSERT_EQ(no_loc.size(), 1u);
  EXPECT_EQ(no_loc[0]["entity_group"], "PER");
}

// The pipeline's grouping: an I- tag after O or another type starts its own group; a B- tag
// always does.
TEST(HfAnswers, NerGroupsFollowTheBioPrefixes) {
  const Output output{json{{"tags", {"I-LOC", "O", "I-LOC", "B-LOC", "B-PER", "I-LOC"}}},
                      {1, 1, 1, 1, 1, 1}};
  const json groups = answer_of(Api::kHf, json{{"inputs", "a b c d e f"}}.dump(), {output}, ner());
  std::vector<std::string> words;
  for (const json& g : groups)
    words.push_back(g["entity_group"].get<std::string>() + ":" + g["word"].get<std::string>());
  EXPECT_EQ(words, (std::vector<std::string>{"LOC:a", "LOC:c", "LOC:d", "PER:e", "LOC:f"}));
}

TEST(HfAnswers, NerForAListOfTextsIsAListOfListsAndCoversOnlyTheKeptWords) {
  const NerCase c;
  // The second text was cut by max_length after two words: only those have tags.
  const Output cut{json{{"tags", {"B-LOC", "O"}}, {"truncated", true}}, {0.5f, 0.5f}};
  const json answer = answer_of(Api::kHf, json{{"inputs", {c.text, "Paris is nice"}}}.dump(),
                                {c.output, cut}, ner());
  ASSERT_EQ(answer.size(), 2u);
  EXPECT_EQ(answer[0].size(), 2u);
  ASSERT_EQ(answer[1].size(), 1u);
  EXPECT_EQ(answer[1][0]["word"], "Paris");
}

TEST(SplitWords, OffsetsAreCodePointsOfTheOriginalString) {
  const auto words = split_words("  Zürich\t\t日本 a\r\n");
  ASSERT_EQ(words.size(), 3u);
  EXPECT_EQ(words[0].word, "Zürich");
  EXPECT_EQ(words[0].start, 2u);
  EXPECT_EQ(words[0].end, 8u);
  EXPECT_EQ(words[1].word, "日本");
  EXPECT_EQ(words[1].start, 10u);
  EXPECT_EQ(words[1].end, 12u);
  EXPECT_EQ(words[2].start, 13u);
  EXPECT_EQ(words[2].end, 14u);
  EXPECT_TRUE(split_words(" \v\f ").empty());
}

TEST(VllmRequests, InputIsAStringOrStringsAndTheModelMustBeThisOne) {
  const ClientRequest one =
      parse_request(Api::kVllm, R"({"model": "sst3", "input": "a"})", sentiment());
  EXPECT_TRUE(one.single);
  EXPECT_EQ(one.model, "sst3");
  EXPECT_EQ(parse_request(Api::kVllm, R"({"input": ["a", "b"]})", sentiment()).inputs.size(), 2u);
  EXPECT_THROW(parse_request(Api::kVllm, R"({"model": "gpt", "input": "a"})", sentiment()),
               UnknownModel);
  EXPECT_NE(request_error(Api::kVllm, R"({"input": ["a", 1]})", sentiment())
                .find("input[1]: expected a string, got number"),
            std::string::npos);
  EXPECT_NE(request_error(Api::kVllm, R"({"inputs": ["a"]})", sentiment()).find("with \"input\""),
            std::string::npos);
  EXPECT_NE(request_error(Api::kVllm, R"({"input": "a", "model": 3})", sentiment())
                .find("\"model\" must be a string"),
            std::string::npos);
  // truncate_prompt_tokens: -1 or at least max_length (this model reads the first max_length ids).
  EXPECT_TRUE(
      parse_request(Api::kVllm, R"({"input": "a", "truncate_prompt_tokens": -1})", sentiment())
          .truncate);
  EXPECT_EQ(
      request_error(Api::kVllm, R"({"input": "a", "truncate_prompt_tokens": 64})", sentiment()),
      "");
  EXPECT_NE(
      request_error(Api::kVllm, R"({"input": "a", "truncate_prompt_tokens": 10})", sentiment())
          .find("\"truncate_prompt_tokens\": 10"),
      std::string::npos);
  // vLLM does not tag tokens: a NER run says where to go instead.
  EXPECT_NE(request_error(Api::kVllm, R"({"input": "a"})", ner()).find("use POST /"),
            std::string::npos);
}

TEST(VllmAnswers, AClassificationResponseHasVllmsFieldsAndSoftmaxProbsInLabelOrder) {
  const auto before = std::chrono::system_clock::now();
  const json answer = answer_of(
      Api::kVllm, R"({"input": ["a", "b"]})",
      {sequence_output({0.5f, -1.0f, 2.0f}), sequence_output({1.0f, 0.0f, 0.0f})}, sentiment(), 17);
  EXPECT_TRUE(
      std::regex_match(answer["id"].get<std::string>(), std::regex("classify-[0-9a-f]{32}")))
      << answer["id"];
  EXPECT_EQ(answer["object"], "list");
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(before.time_since_epoch()).count();
  EXPECT_LE(std::abs(answer["created"].get<int64_t>() - now), 1);
  EXPECT_EQ(answer["model"], "sst3");
  EXPECT_EQ(answer["usage"], json::parse(R"({"prompt_tokens": 17, "total_tokens": 17,
                                             "completion_tokens": 0,
                                             "prompt_tokens_details": null})"));
  ASSERT_EQ(answer["data"].size(), 2u);
  const json& first = answer["data"][0];
  EXPECT_EQ(first["index"], 0);
  EXPECT_EQ(first["label"], "positive");
  EXPECT_EQ(first["num_classes"], 3);
  const std::vector<double> p = softmax({0.5, -1.0, 2.0});
  ASSERT_EQ(first["probs"].size(), 3u);
  for (size_t c = 0; c < 3; ++c) EXPECT_NEAR(first["probs"][c].get<double>(), p[c], 1e-6);
  EXPECT_EQ(first.size(), 4u);
  EXPECT_EQ(answer["data"][1]["index"], 1);
  EXPECT_EQ(answer["data"][1]["label"], "negative");
  EXPECT_EQ(answer.size(), 6u);
  // Two answers, two ids.
  const json again = answer_of(Api::kVllm, R"({"input": "a"})",
                               {sequence_output({0.5f, -1.0f, 2.0f})}, sentiment(), 3);
  EXPECT_NE(again["id"], answer["id"]);
  EXPECT_EQ(again["data"].size(), 1u);
}

TEST(VllmAnswers, UseActivationFalseGivesTheLogits) {
  const json answer = answer_of(Api::kVllm, R"({"input": "a", "use_activation": false})",
                                {sequence_output({0.5f, -1.0f, 2.0f})}, sentiment());
  EXPECT_EQ(answer["data"][0]["probs"], json::parse("[0.5, -1.0, 2.0]"));
}

TEST(OwnAnswers, TheOwnSchemaAnswersTheObjectsInOrder) {
  const json answer = answer_of(
      Api::kLs, R"({"inputs": ["a", "b"]})",
      {Output{json{{"label", "x"}}, {1.0f}}, Output{json{{"label", "y"}}, {2.0f}}}, sentiment());
  EXPECT_EQ(answer, json::parse(R"({"predictions": [{"label": "x"}, {"label": "y"}]})"));
}

TEST(ModelDescriptions, TeiInfoHasTeisFieldsAndTheLabelMaps) {
  const json info = tei_info(sentiment(), ServeLimits{.max_concurrent_requests = 32,
                                                      .max_input_chars = 16000,
                                                      .max_batch_size = 8,
                                                      .max_inputs = 256,
                                                      .tokenization_workers = 32,
                                                      .version = "0.1.0"});
  EXPECT_EQ(info, json::parse(R"({
    "model_id": "sst3", "model_sha": null, "model_dtype": "float32", "served_model_name": "sst3",
    "model_type": {"classifier": {
      "id2label": {"0": "negative", "1": "neutral", "2": "positive"},
      "label2id": {"negative": 0, "neutral": 1, "positive": 2}}},
    "max_concurrent_requests": 32, "max_input_length": 64, "max_batch_tokens": 512,
    "max_batch_requests": 8, "max_client_batch_size": 256, "auto_truncate": false,
    "tokenization_workers": 32, "version": "0.1.0", "sha": null, "docker_label": null})"));
}

TEST(ModelDescriptions, VllmModelsListsThisModelAsAModelCard) {
  const json models = vllm_models(sentiment());
  EXPECT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 1u);
  json card = models["data"][0];
  EXPECT_GT(card["created"].get<int64_t>(), 1700000000);
  ASSERT_EQ(card["permission"].size(), 1u);
  EXPECT_EQ(card["permission"][0]["object"], "model_permission");
  EXPECT_TRUE(std::regex_match(card["permission"][0]["id"].get<std::string>(),
                               std::regex("modelperm-[0-9a-f]{32}")));
  card.erase("created");
  card.erase("permission");
  EXPECT_EQ(card, json::parse(R"({"id": "sst3", "object": "model", "owned_by": "ls-train",
                                  "root": "/runs/sst3", "parent": null,
                                  "max_model_len": 64})"));
}

}  // namespace
}  // namespace ls::serve
