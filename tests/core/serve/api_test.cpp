// The /v1/predict body parser and the JSON answers (core/serve/api.h), without a socket.
#include "core/serve/api.h"

#include <gtest/gtest.h>

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
