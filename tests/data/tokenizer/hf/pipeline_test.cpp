// Pipeline: the stages strung together as a LLaMA-2-style tokenizer.json strings them (Prepend
// and Replace normalizer, BPE with byte fallback and fused <unk>, <s> and </s> added, LLaMA-2's
// decoder chain); ids, offsets and decoded text from pip `tokenizers` with the same parts.
#include "data/tokenizer/hf/pipeline.h"

#include <gtest/gtest.h>

#include "core/base/error.h"

namespace ls::data::hf {
namespace {

const std::string kMeta = "\u2581";

std::unique_ptr<Pipeline> llama2_style() {
  StringMap vocab{{"<unk>", 0},
                  {"<s>", 1},
                  {"</s>", 2},
                  {"<0xE2>", 3},
                  {"<0x82>", 4},
                  {"<0xAC>", 5},
                  {kMeta, 6},
                  {"H", 7},
                  {"e", 8},
                  {"l", 9},
                  {"o", 10},
                  {"w", 11},
                  {"r", 12},
                  {"d", 13},
                  {"\u00e9", 14},
                  {kMeta + "H", 15},
                  {"ll", 16},
                  {"llo", 17},
                  {kMeta + "Hello", 18},
                  {"He", 19},
                  {"Hello", 20},
                  {kMeta + "w", 21},
                  {"or", 22},
                  {kMeta + "wor", 23},
                  {kMeta + "world", 24},
                  {"ld", 25}};
  BpeOptions options;
  options.unk_id = 0;
  options.fuse_unk = true;
  options.byte_fallback = true;
  auto model = std::make_unique<Bpe>(std::move(vocab), options);
  for (const auto& [left, right] :
       std::vector<std::pair<std::string, std::string>>{{"l", "l"},
                                                        {"ll", "o"},
                                                        {"H", "e"},
                                                        {"He", "llo"},
                                                        {kMeta, "Hello"},
                                                        {kMeta, "H"},
                                                        {"o", "r"},
                                                        {kMeta, "w"},
                                                        {kMeta + "w", "or"},
                                                        {"l", "d"},
                                                        {kMeta + "wor", "ld"}})
    EXPECT_TRUE(model->add_merge(left, right));

  std::vector<std::unique_ptr<Normalizer>> normalize;
  normalize.push_back(std::make_unique<PrependNormalizer>(kMeta));
  normalize.push_back(std::make_unique<ReplaceNormalizer>(Pattern::literal(" "), kMeta));
  std::vector<AddedToken> added(2);
  added[0] = {"<s>", 1, true, false};
  added[1] = {"</s>", 2, true, false};
  PostProcessor post;
  post.add_template({{false, {1}}, {true, {}}});
  std::vector<std::unique_ptr<Decoder>> decode;
  decode.push_back(replace_decoder(kMeta, " "));
  decode.push_back(byte_fallback_decoder());
  decode.push_back(fuse_decoder());
  decode.push_back(strip_decoder(" ", 1, 0));
  return std::make_unique<Pipeline>(
      "test.json", std::make_unique<SequenceNormalizer>(std::move(normalize)), PreTokenizerChain{},
      std::move(model), std::move(added), std::move(post), sequence_decoder(std::move(decode)));
}

using Ids = std::vector<int>;

TEST(Pipeline, EncodesAsTokenizersDoesWithTheSameStages) {
  const auto pipeline = llama2_style();
  Ids ids;
  pipeline->encode("Hello world", ids, nullptr);
  EXPECT_EQ(ids, (Ids{18, 24}));
  ids.clear();
  pipeline->encode("Hello  \u00e9", ids, nullptr);
  EXPECT_EQ(ids, (Ids{18, 6, 6, 14}));
}

TEST(Pipeline, AddedTokensUnknownCharactersAndByteFallbackTogether) {
  const auto pipeline = llama2_style();
  Ids ids;
  std::vector<size_t> begins;
  pipeline->encode("Hello w\u00f6rld \u20ac</s>", ids, &begins);
  EXPECT_EQ(ids, (Ids{18, 21, 0, 12, 25, 6, 3, 4, 5, 2}));
  // Each id's first input byte; each fallback byte is its own piece.
  EXPECT_EQ(begins, (std::vector<size_t>{0, 5, 7, 9, 10, 12, 13, 14, 15, 16}));
}

TEST(Pipeline, DecodesThroughTheDecoderLeavingSpecialTokensOut) {
  const auto pipeline = llama2_style();
  EXPECT_EQ(pipeline->decode({1, 18, 24, 2, 3, 4, 5}), "Hello world\u20ac");
  EXPECT_EQ(pipeline->decode({18, 21, 0, 12, 25, 6, 3, 4, 5, 2}), "Hello w<unk>rld \u20ac");
  EXPECT_THROW(pipeline->decode({99}), UserError);
}

TEST(Pipeline, RefusesTextThatIsNotUtf8NamingTheByte) {
  const auto pipeline = llama2_style();
  Ids ids;
  try {
    pipeline->encode("ab\xff", ids, nullptr);
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "test.json: cannot encode text: invalid UTF-8 at byte 3");
  }
}

TEST(Pipeline, LooksTokensUpAndCountsAddedIdsInTheVocabulary) {
  const auto pipeline = llama2_style();
  EXPECT_EQ(pipeline->token_id("</s>"), 2);
  EXPECT_EQ(pipeline->token_id(kMeta + "world"), 24);
  EXPECT_EQ(pipeline->token_id(""), -1);
  EXPECT_EQ(pipeline->id_to_piece(18), kMeta + "Hello");
  EXPECT_EQ(pipeline->vocab_size(), 26);
  EXPECT_EQ(pipeline->post_processor().prefix_ids(), Ids{1});
}

}  // namespace
}  // namespace ls::data::hf
