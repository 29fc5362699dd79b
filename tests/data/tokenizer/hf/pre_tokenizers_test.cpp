// Pre-tokenizers: the words each cuts a text into, as `tokenizers`' pre_tokenize_str gives them
// (byte-level words as bytes: GPT-2's "Ġ" is a space here).
#include "data/tokenizer/hf/pre_tokenizers.h"

#include <gtest/gtest.h>

#include "core/base/error.h"

namespace ls::data::hf {
namespace {

using Words = std::vector<std::string>;

Words words_of(const PreTokenizer& pre_tokenizer, std::string text, size_t orig_begin = 0) {
  std::vector<Piece> out;
  pre_tokenizer.split(Piece{std::move(text), orig_begin, {}, -1}, out);
  Words words;
  for (const Piece& p : out) words.push_back(p.text);
  return words;
}

Words split_on_space(SplitBehavior behavior, bool invert) {
  return words_of(SplitPreTokenizer(Pattern::literal(" "), behavior, invert), "the  quick brown ");
}

TEST(SplitPreTokenizer, EachBehaviorPlacesTheMatchesAsTokenizersDoes) {
  EXPECT_EQ(split_on_space(SplitBehavior::kRemoved, false), (Words{"the", "quick", "brown"}));
  EXPECT_EQ(split_on_space(SplitBehavior::kRemoved, true), (Words{" ", " ", " ", " "}));
  const Words isolated{"the", " ", " ", "quick", " ", "brown", " "};
  EXPECT_EQ(split_on_space(SplitBehavior::kIsolated, false), isolated);
  EXPECT_EQ(split_on_space(SplitBehavior::kIsolated, true), isolated);
  EXPECT_EQ(split_on_space(SplitBehavior::kMergedWithPrevious, false),
            (Words{"the ", " ", "quick ", "brown "}));
  EXPECT_EQ(split_on_space(SplitBehavior::kMergedWithPrevious, true),
            (Words{"the", " ", " quick", " brown", " "}));
  EXPECT_EQ(split_on_space(SplitBehavior::kMergedWithNext, false),
            (Words{"the", " ", " quick", " brown", " "}));
  EXPECT_EQ(split_on_space(SplitBehavior::kMergedWithNext, true),
            (Words{"the ", " ", "quick ", "brown "}));
  const Words contiguous{"the", "  ", "quick", " ", "brown", " "};
  EXPECT_EQ(split_on_space(SplitBehavior::kContiguous, false), contiguous);
  EXPECT_EQ(split_on_space(SplitBehavior::kContiguous, true), contiguous);
}

TEST(SplitPreTokenizer, RegexMatchesAreLeftmostAndNonOverlapping) {
  const SplitPreTokenizer digits(Pattern::regex("\\p{N}{1,3}", "test"), SplitBehavior::kIsolated,
                                 false);
  EXPECT_EQ(words_of(digits, "ab12345c"), (Words{"ab", "123", "45", "c"}));
}

TEST(SplitPreTokenizer, WordsKeepTheOriginsOfTheirBytes) {
  std::vector<Piece> out;
  SplitPreTokenizer(Pattern::literal(" "), SplitBehavior::kRemoved, false)
      .split(tracked_piece("ab cd"), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].orig, (std::vector<uint32_t>{3, 4}));
  EXPECT_EQ(out[1].orig_begin, 3u);
}

TEST(DigitsPreTokenizer, CutsOutDigitRunsOrSingleDigits) {
  EXPECT_EQ(words_of(*digits_pre_tokenizer(false), "abc 1234 x56"),
            (Words{"abc ", "1234", " x", "56"}));
  EXPECT_EQ(words_of(*digits_pre_tokenizer(true), "abc 1234 x56"),
            (Words{"abc ", "1", "2", "3", "4", " x", "5", "6"}));
}

TEST(ByteLevelPreTokenizer, SplitsWithGpt2sRegexAfterAnOptionalPrefixSpace) {
  EXPECT_EQ(words_of(ByteLevelPreTokenizer(true, true), "Hello world's 123!!  x"),
            (Words{" Hello", " world", "'s", " 123", "!!", " ", " x"}));
  EXPECT_EQ(words_of(ByteLevelPreTokenizer(false, true), "Hello  world"),
            (Words{"Hello", " ", " world"}));
  EXPECT_EQ(words_of(ByteLevelPreTokenizer(true, false), "Hello world"), (Words{" Hello world"}));
}

TEST(MetaspacePreTokenizer, ReplacesSpacesAndPrependsPerTheScheme) {
  using Prepend = MetaspacePreTokenizer::Prepend;
  const std::string m = "\u2581";
  EXPECT_EQ(words_of(MetaspacePreTokenizer(m, Prepend::kAlways, true), "Hey  friend"),
            (Words{m + "Hey", m, m + "friend"}));
  EXPECT_EQ(words_of(MetaspacePreTokenizer(m, Prepend::kAlways, false), "Hey  friend"),
            (Words{m + "Hey" + m + m + "friend"}));
  EXPECT_EQ(words_of(MetaspacePreTokenizer(m, Prepend::kNever, true), "Hey  friend"),
            (Words{"Hey", m, m + "friend"}));
  // "first": only the piece that begins the input gets the prefix.
  const MetaspacePreTokenizer first(m, Prepend::kFirst, true);
  EXPECT_EQ(words_of(first, "Hey  friend"), (Words{m + "Hey", m, m + "friend"}));
  EXPECT_EQ(words_of(first, "Hey", 5), (Words{"Hey"}));
}

TEST(PreTokenizerChain, EachStepCutsEveryWordOfTheOneBefore) {
  PreTokenizerChain chain;
  chain.steps.push_back(std::make_unique<SplitPreTokenizer>(
      Pattern::regex(" ?\\p{L}+|\\s+", "test"), SplitBehavior::kIsolated, false));
  chain.steps.push_back(digits_pre_tokenizer(true));
  std::vector<Piece> words, scratch;
  chain.run(Piece{"ab 12 cd", 0, {}, -1}, words, scratch);
  Words texts;
  for (const Piece& w : words) texts.push_back(w.text);
  EXPECT_EQ(texts, (Words{"ab", " ", "1", "2", " cd"}));
}

// ---- Pattern: Oniguruma regexes on PCRE2
// ---------------------------------------------------------

using Ranges = std::vector<std::pair<size_t, size_t>>;

Ranges matches(const std::string& regex, std::string_view text) {
  Ranges out;
  Pattern::regex(regex, "test").find_all(text, out);
  return out;
}

TEST(Pattern, EmptyMatchesAreFoundAsOnigsFindIterFindsThem) {
  // tokenizers' Replace(regex, "|") gives "|Hello|World", "|b|b|", "|a|b|c|", "" for these.
  EXPECT_EQ(matches("(?=[A-Z])", "HelloWorld"), (Ranges{{0, 0}, {5, 5}}));
  EXPECT_EQ(matches("a*", "baab"), (Ranges{{0, 0}, {1, 3}, {4, 4}}));  // none right after "aa"
  EXPECT_EQ(matches("", "ab\u00e9"), (Ranges{{0, 0}, {1, 1}, {2, 2}, {4, 4}}));
  EXPECT_EQ(matches("a*", ""), Ranges{});
  Ranges literal;
  Pattern::literal("").find_all("abc", literal);
  EXPECT_EQ(literal, (Ranges{{0, 0}, {1, 1}, {2, 2}, {3, 3}}));
}

TEST(Pattern, LineAnchorsAndDotReadNewlinesAsOniguruma) {
  // Oniguruma: ^ and $ are line anchors, LF the only newline (`.` matches \r); tokenizers splits
  // "a\nb\r\nc\n" into a, b, c with ^. and into a, \r, c with .$ .
  EXPECT_EQ(matches("^.", "a\nb\r\nc\n"), (Ranges{{0, 1}, {2, 3}, {5, 6}}));
  EXPECT_EQ(matches(".$", "a\nb\r\nc\n"), (Ranges{{0, 1}, {3, 4}, {5, 6}}));
  EXPECT_EQ(matches("(?m)a.b", "a\nb"), (Ranges{{0, 3}}));  // Oniguruma's m: dotall
  EXPECT_EQ(matches("\\h+", "0fz G"), (Ranges{{0, 2}}));    // hex digits
  EXPECT_EQ(matches("\\v", "a\x0b\n"), (Ranges{{1, 2}}));   // VT alone
  EXPECT_EQ(matches("[\\S]+", "a\u0085b"), (Ranges{{0, 1}, {3, 4}}));
  EXPECT_EQ(matches("a{,2}", "aaa"), (Ranges{{0, 2}, {2, 3}}));
}

TEST(Pattern, RefusesOnigurumaConstructsPcre2ReadsOtherwiseNamingThem) {
  for (const auto& [regex, construct] :
       std::vector<std::pair<std::string, std::string>>{{"\\w+", "\\w"},
                                                        {"x\\b", "\\b"},
                                                        {"\\Qa\\E", "\\Q"},
                                                        {"\\C-a", "\\C"},
                                                        {"[[:alpha:]]", "POSIX class"},
                                                        {"[a-z&&[^a]]", "&& in a character class"},
                                                        {"[a[b]]", "class inside a class"},
                                                        {"(?x)a", "(?x)"},
                                                        {"a{2}?", "a{2}?"},
                                                        {"a{1,2}+", "{1,2}+"},
                                                        {"[\\H]", "\\H in a character class"}}) {
    try {
      Pattern::regex(regex, "f.json: pre_tokenizer.pattern");
      ADD_FAILURE() << regex << ": no error";
    } catch (const UserError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("f.json: pre_tokenizer.pattern: regex /" + regex + "/ uses ", 0), 0u)
          << message;
      EXPECT_NE(message.find(construct), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
  // What LLaMA-3's and Qwen2's regexes use compiles.
  EXPECT_NO_THROW(
      Pattern::regex("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
                     "test"));
}

TEST(MetaspacePreTokenizer, FirstMeansTheInputsFirstByteEvenAfterANormalizerDroppedIt) {
  using Prepend = MetaspacePreTokenizer::Prepend;
  const std::string m = "\u2581";
  const MetaspacePreTokenizer first(m, Prepend::kFirst, true);
  Piece stripped = tracked_piece(" He");
  apply_edits(stripped, {{0, 1, ""}});  // as a Replace(" ", "") leaves it: origins 1, 2
  std::vector<Piece> out;
  first.split(stripped, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "He");  // tokenizers: no prepend, the piece begins at input byte 1
}

}  // namespace
}  // namespace ls::data::hf
