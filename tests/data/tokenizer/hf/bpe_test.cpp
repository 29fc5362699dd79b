// BPE: the tokens of one word, as `tokenizers`' models.BPE gives them for the same vocabulary and
// merges (ids and byte offsets from the pip library's encode() on a model-only tokenizer).
#include "data/tokenizer/hf/bpe.h"

#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace ls::data::hf {
namespace {

using Tokens = std::vector<std::pair<int, uint32_t>>;  // (id, begin byte)

StringMap abc_vocab() {
  return {{"a", 0},   {"b", 1},  {"c", 2},     {"ab", 3},  {"bc", 4},
          {"abc", 5}, {"aa", 6}, {"[UNK]", 7}, {"aaa", 8}, {"abcab", 11}};
}

std::unique_ptr<Bpe> make_bpe(BpeOptions options,
                              std::vector<std::pair<std::string, std::string>> merges,
                              StringMap vocab = abc_vocab()) {
  auto bpe = std::make_unique<Bpe>(std::move(vocab), options);
  for (const auto& [left, right] : merges) EXPECT_TRUE(bpe->add_merge(left, right));
  return bpe;
}

const std::vector<std::pair<std::string, std::string>> kMerges{
    {"a", "b"}, {"b", "c"}, {"ab", "c"}, {"a", "a"}};

Tokens tokens_of(const Bpe& bpe, std::string_view word) {
  std::vector<Symbol> symbols;
  bpe.tokenize(word, symbols);
  Tokens out;
  for (const Symbol& s : symbols) out.emplace_back(s.id, s.begin);
  return out;
}

TEST(Bpe, MergesApplyLowestRankFirst) {
  EXPECT_EQ(tokens_of(*make_bpe({}, kMerges), "abc"), (Tokens{{5, 0}}));
  // b+c ranks first here, then a+bc.
  auto other = make_bpe({}, {{"b", "c"}, {"a", "b"}, {"a", "bc"}});
  EXPECT_EQ(tokens_of(*other, "abc"), (Tokens{{5, 0}}));
  EXPECT_EQ(tokens_of(*other, "abab"), (Tokens{{3, 0}, {3, 2}}));
}

TEST(Bpe, AMergeListedTwiceTakesItsLastRankAsTokenizersDoes) {
  // tokenizers with merges [a b, b c, a b] encodes "abc" as a + bc.
  const auto bpe = make_bpe({}, {{"a", "b"}, {"b", "c"}, {"a", "b"}});
  EXPECT_EQ(tokens_of(*bpe, "abc"), (Tokens{{0, 0}, {4, 1}}));
}

TEST(Bpe, EqualRanksMergeLeftmostFirst) {
  EXPECT_EQ(tokens_of(*make_bpe({}, kMerges), "aaaaa"), (Tokens{{6, 0}, {6, 2}, {0, 4}}));
}

TEST(Bpe, UnknownCharactersBecomeUnkFusedOrNotOrAreDropped) {
  BpeOptions unk;
  unk.unk_id = 7;
  EXPECT_EQ(tokens_of(*make_bpe(unk, kMerges), "axyb"), (Tokens{{0, 0}, {7, 1}, {7, 2}, {1, 3}}));
  unk.fuse_unk = true;
  EXPECT_EQ(tokens_of(*make_bpe(unk, kMerges), "axyb"), (Tokens{{0, 0}, {7, 1}, {1, 3}}));
  // Without an unk token the characters are dropped, and what is left merges.
  EXPECT_EQ(tokens_of(*make_bpe({}, kMerges), "axyb"), (Tokens{{3, 0}}));
}

TEST(Bpe, ByteFallbackSpellsUnknownCharactersInBytesWhenAllAreInTheVocabulary) {
  StringMap vocab = abc_vocab();
  vocab.emplace("<0xC3>", 9);
  vocab.emplace("<0xA9>", 10);
  BpeOptions options;
  options.unk_id = 7;
  options.byte_fallback = true;
  auto bpe = make_bpe(options, kMerges, vocab);
  EXPECT_EQ(tokens_of(*bpe, "a\u00e9b"), (Tokens{{0, 0}, {9, 1}, {10, 2}, {1, 3}}));
  // E2 82 AC (the euro sign) has no byte tokens here: <unk>.
  EXPECT_EQ(tokens_of(*bpe, "a\u20acb"), (Tokens{{0, 0}, {7, 1}, {1, 4}}));
}

TEST(Bpe, IgnoreMergesTakesAWordInTheVocabularyWhole) {
  BpeOptions ignore;
  ignore.ignore_merges = true;
  EXPECT_EQ(tokens_of(*make_bpe(ignore, kMerges), "abcab"), (Tokens{{11, 0}}));
  EXPECT_EQ(tokens_of(*make_bpe({}, kMerges), "abcab"), (Tokens{{5, 0}, {3, 3}}));
}

TEST(Bpe, ByteLevelVocabulariesAreReadInGpt2sAlphabetAndRunOnBytes) {
  // "Ġ" is the space byte, "Ã" and "©" the bytes C3 A9 of "é".
  StringMap vocab{{"h", 0},        {"i", 1},      {"\u0120", 2}, {"\u0120h", 3},
                  {"\u0120hi", 4}, {"\u00c3", 5}, {"\u00a9", 6}, {"\u00c3\u00a9", 7}};
  BpeOptions options;
  options.byte_level = true;
  auto bpe = make_bpe(options, {{"\u0120", "h"}, {"\u0120h", "i"}, {"\u00c3", "\u00a9"}}, vocab);
  EXPECT_EQ(tokens_of(*bpe, " hi"), (Tokens{{4, 0}}));
  EXPECT_EQ(tokens_of(*bpe, "h\u00e9"), (Tokens{{0, 0}, {7, 1}}));
}

TEST(Bpe, AMergeOfTokensOutsideTheVocabularyIsRefused) {
  Bpe bpe(abc_vocab(), {});
  EXPECT_FALSE(bpe.add_merge("a", "x"));
  EXPECT_FALSE(bpe.add_merge("c", "a"));  // "ca" is not a token
}

TEST(Bpe, RepeatedWordsGiveTheSameTokensFromTheCache) {
  auto bpe = make_bpe({}, kMerges);
  const Tokens first = tokens_of(*bpe, "abcaa");
  EXPECT_EQ(first, (Tokens{{5, 0}, {6, 3}}));
  EXPECT_EQ(tokens_of(*bpe, "abcaa"), first);
}

// A vocabulary grown by random merges over "abcd" (tokens up to 6 letters, some reachable by two
// different merges, e.g. "a"+"bc" and "ab"+"c"), and 'x' unknown.
std::unique_ptr<Bpe> random_bpe(std::mt19937& rng) {
  StringMap vocab{{"a", 0}, {"b", 1}, {"c", 2}, {"d", 3}, {"<unk>", 4}};
  std::vector<std::string> tokens{"a", "b", "c", "d"};
  std::vector<std::pair<std::string, std::string>> merges;
  while (merges.size() < 300) {
    const std::string left = tokens[rng() % tokens.size()];
    const std::string right = tokens[rng() % tokens.size()];
    const std::string joined = left + right;
    if (joined.size() > 6) continue;
    if (vocab.emplace(joined, static_cast<int>(vocab.size())).second) tokens.push_back(joined);
    merges.emplace_back(left, right);
  }
  BpeOptions options;
  options.unk_id = 4;
  return make_bpe(options, merges, vocab);
}

std::string random_word(std::mt19937& rng, size_t length, const char* letters = "abcdx") {
  const size_t count = std::strlen(letters);
  std::string word(length, 'a');
  for (char& c : word) c = letters[rng() % count];
  return word;
}

TEST(Bpe, TheHeapAndTheScanGiveTheSameTokensOnRandomWords) {
  std::mt19937 rng(7);
  for (int vocabulary = 0; vocabulary < 5; ++vocabulary) {
    const auto bpe = random_bpe(rng);
    for (int k = 0; k < 400; ++k) {
      const std::string word = random_word(rng, 1 + rng() % 300);
      std::vector<Symbol> fast, reference;
      bpe->merge_word(word, fast, Bpe::MergeMethod::kHeap);
      bpe->merge_word(word, reference, Bpe::MergeMethod::kScan);
      ASSERT_EQ(fast.size(), reference.size()) << word;
      for (size_t i = 0; i < fast.size(); ++i) {
        ASSERT_EQ(fast[i].id, reference[i].id) << word << " token " << i;
        ASSERT_EQ(fast[i].begin, reference[i].begin) << word << " token " << i;
      }
    }
  }
}

// CPU time, not wall time: other builds share the machine's cores.
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double best_seconds_to_merge(const Bpe& bpe, const std::string& word) {
  double best = 1e9;
  std::vector<Symbol> out;
  for (int run = 0; run < 3; ++run) {
    const double start = cpu_seconds();
    bpe.merge_word(word, out);
    best = std::min(best, cpu_seconds() - start);
  }
  EXPECT_FALSE(out.empty());
  return best;
}

TEST(Bpe, MergeTimeGrowsAboutLinearlyWithTheWordsLength) {
  // 100x the length may take up to 300x the time (n log n gives about 150x; the quadratic scan
  // took about 10000x).
  std::mt19937 rng(11);
  const auto bpe = random_bpe(rng);
  const std::string small = random_word(rng, 10'000, "abcd");
  const std::string large = random_word(rng, 1'000'000, "abcd");
  const double small_s = best_seconds_to_merge(*bpe, small);
  const double large_s = best_seconds_to_merge(*bpe, large);
  EXPECT_LT(large_s, 300 * small_s) << "10 KB: " << small_s << " s, 1 MB: " << large_s << " s";
}

}  // namespace
}  // namespace ls::data::hf
