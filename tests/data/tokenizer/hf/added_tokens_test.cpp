// Added tokens: where they are found in a text, as `tokenizers`' AddedVocabulary finds them
// (expected spans from encode(...).offsets of the same tokens in the pip library).
#include "data/tokenizer/hf/added_tokens.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "data/tokenizer/hf/normalizers.h"

namespace ls::data::hf {
namespace {

// A piece as "text" or "[id:text]" for an added token.
std::vector<std::string> split_raw(const AddedVocabulary& added, const std::string& text) {
  std::vector<Piece> out;
  added.split_raw(Piece{text, 0, {}, -1}, out);
  std::vector<std::string> pieces;
  for (const Piece& p : out)
    pieces.push_back(p.added_id < 0 ? p.text : fmt::format("[{}:{}]", p.added_id, p.text));
  return pieces;
}

AddedToken token(std::string content, int id) {
  AddedToken t;
  t.content = std::move(content);
  t.id = id;
  t.special = true;
  t.normalized = false;
  return t;
}

using Pieces = std::vector<std::string>;

TEST(AddedVocabulary, TheLongestTokenAtAPlaceWinsAndMatchesDoNotOverlap) {
  const AddedVocabulary added({token("<|a|>", 1), token("<|a|>b", 2)}, nullptr);
  EXPECT_EQ(split_raw(added, "x<|a|>by<|a|>"), (Pieces{"x", "[2:<|a|>b]", "y", "[1:<|a|>]"}));
}

TEST(AddedVocabulary, SingleWordTokensMatchOnlyBetweenNonWordCharacters) {
  AddedToken ab = token("ab", 7);
  ab.single_word = true;
  const AddedVocabulary added({ab}, nullptr);
  EXPECT_EQ(split_raw(added, "ab cab abc ab"), (Pieces{"[7:ab]", " cab abc ", "[7:ab]"}));
}

TEST(AddedVocabulary, LstripAndRstripTakeTheWhiteSpaceBesideTheToken) {
  AddedToken left = token("<mask>", 4), right = left, both = left;
  left.lstrip = true;
  right.rstrip = true;
  both.lstrip = both.rstrip = true;
  EXPECT_EQ(split_raw(AddedVocabulary({left}, nullptr), "a  <mask> b"),
            (Pieces{"a", "[4:  <mask>]", " b"}));
  EXPECT_EQ(split_raw(AddedVocabulary({right}, nullptr), "a <mask>  b"),
            (Pieces{"a ", "[4:<mask>  ]", "b"}));
  EXPECT_EQ(split_raw(AddedVocabulary({both}, nullptr), "a <mask> b"),
            (Pieces{"a", "[4: <mask> ]", "b"}));
}

TEST(AddedVocabulary, NormalizedTokensAreFoundInNormalizedTextOnly) {
  AddedToken normalized = token("He\u0301", 9);  // its content is normalized too
  normalized.special = false;
  normalized.normalized = true;
  const UnicodeNormalizer nfc(UnicodeForm::kNfc);
  const AddedVocabulary added({normalized}, &nfc);
  EXPECT_EQ(split_raw(added, "xH\u00e9y"), (Pieces{"xH\u00e9y"}));  // not in raw text
  std::vector<Piece> out;
  added.split_normalized(Piece{"xH\u00e9y", 0, {}, -1}, out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].added_id, 9);
  EXPECT_EQ(out[1].text, "H\u00e9");
}

TEST(AddedVocabulary, FindsTokensByIdAndByContent) {
  const AddedVocabulary added({token("<s>", 1), token("</s>", 2)}, nullptr);
  ASSERT_NE(added.find(2), nullptr);
  EXPECT_EQ(added.find(2)->content, "</s>");
  EXPECT_EQ(added.find(3), nullptr);
  EXPECT_EQ(added.id_of("<s>"), 1);
  EXPECT_EQ(added.id_of("<unk>"), -1);
}

TEST(AddedVocabulary, PiecesKeepTheInputOffsetsOfTheirBytes) {
  const AddedVocabulary added({token("<s>", 1)}, nullptr);
  std::vector<Piece> out;
  added.split_raw(tracked_piece("ab<s>c"), out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].orig_begin, 2u);
  EXPECT_EQ(out[2].orig, (std::vector<uint32_t>{5}));
}

}  // namespace
}  // namespace ls::data::hf
