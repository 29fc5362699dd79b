// Normalizers: the text each gives, as `tokenizers`' normalize_str gives it, and where its bytes
// came from when origins are tracked.
#include "data/tokenizer/hf/normalizers.h"

#include <gtest/gtest.h>

namespace ls::data::hf {
namespace {

std::string normalized(const Normalizer& n, std::string text) {
  Piece p{std::move(text), 0, {}, -1};
  n.apply(p);
  return p.text;
}

TEST(UnicodeNormalizer, ComposesAndDecomposesAsTheFourNormalForms) {
  EXPECT_EQ(normalized(UnicodeNormalizer(UnicodeForm::kNfc), "e\u0301 caf\u00e9"),
            "\u00e9 caf\u00e9");
  EXPECT_EQ(normalized(UnicodeNormalizer(UnicodeForm::kNfd), "\u00e9"), "e\u0301");
  EXPECT_EQ(normalized(UnicodeNormalizer(UnicodeForm::kNfkc), "\ufb01 \u2460"), "fi 1");
  EXPECT_EQ(normalized(UnicodeNormalizer(UnicodeForm::kNfkd), "\u00e9\u2460"), "e\u03011");
}

TEST(UnicodeNormalizer, EachStretchBetweenSpacesTakesTheOriginOfItsFirstByte) {
  Piece p = tracked_piece("ae\u0301 b");  // a e U+0301 (2 bytes) space b
  UnicodeNormalizer(UnicodeForm::kNfc).apply(p);
  EXPECT_EQ(p.text, "a\u00e9 b");
  EXPECT_EQ(p.orig, (std::vector<uint32_t>{0, 0, 0, 4, 5}));
}

TEST(PrependNormalizer, PrependsToTextButNotToNothing) {
  const PrependNormalizer prepend("\u2581");
  EXPECT_EQ(normalized(prepend, "hi"), "\u2581hi");
  EXPECT_EQ(normalized(prepend, ""), "");
}

TEST(ReplaceNormalizer, ReplacesEveryLiteralOrRegexMatch) {
  EXPECT_EQ(normalized(ReplaceNormalizer(Pattern::literal(" "), "\u2581"), "a b  c"),
            "a\u2581b\u2581\u2581c");
  // \s is Oniguruma's, which includes U+0085.
  EXPECT_EQ(normalized(ReplaceNormalizer(Pattern::regex("\\s+", "test"), " "), "a \t b\u0085c"),
            "a b c");
}

TEST(ReplaceNormalizer, ReplacementBytesTakeTheOriginOfTheReplacedText) {
  Piece p = tracked_piece("a b");
  ReplaceNormalizer(Pattern::literal(" "), "\u2581").apply(p);
  EXPECT_EQ(p.orig, (std::vector<uint32_t>{0, 1, 1, 1, 2}));
}

TEST(StripNormalizer, RemovesUnicodeWhiteSpaceFromTheChosenEnds) {
  EXPECT_EQ(normalized(StripNormalizer(true, true), " \t a b \u3000\u0085"), "a b");
  EXPECT_EQ(normalized(StripNormalizer(true, false), "  a  "), "a  ");
  EXPECT_EQ(normalized(StripNormalizer(false, true), "  a  "), "  a");
}

TEST(SequenceNormalizer, AppliesItsStepsInOrder) {
  std::vector<std::unique_ptr<Normalizer>> steps;
  steps.push_back(std::make_unique<PrependNormalizer>("\u2581"));
  steps.push_back(std::make_unique<ReplaceNormalizer>(Pattern::literal(" "), "\u2581"));
  EXPECT_EQ(normalized(SequenceNormalizer(std::move(steps)), "a b"), "\u2581a\u2581b");
}

}  // namespace
}  // namespace ls::data::hf
