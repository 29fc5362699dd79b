// Predictor::prepare without a model (prepare_inputs, core/infer/predictor.h): an input over the
// character cap is refused with a message naming it and the cap, or cut before tokenizing so that
// the model reads exactly the ids of the whole input cut at max_length.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "core/infer/predictor.h"
#include "tests/data/pipeline_test_util.h"

// A named namespace, not an anonymous one: the unity build compiles the suite as one file.
namespace prepare_test {

using ls::InputLimits;
using ls::PredictInput;

// The LLaMA-style sentencepiece model of the data tests (BPE, byte fallback, whitespace kept).
const ls::data::Tokenizer& tokenizer() {
  static const ls::data::Tokenizer instance(
      ls::data::testing::llama_style_model(),
      ls::data::TokenizerOptions{.add_bos = true, .add_eos = true});
  return instance;
}

ls::data::DatasetOptions options(ls::TaskType task, int max_length) {
  ls::data::DatasetOptions out;
  out.task = task;
  out.max_length = max_length;
  out.num_threads = 1;
  return out;
}

const ls::data::LabelMap kClasses({"neg", "pos"});
const ls::data::LabelMap kTags({"O", "B-LOC"});

// A long text with what pre-tokenizers treat specially: repeated and mixed whitespace, newlines
// after punctuation, digits, multi-byte characters.
std::string long_text(size_t words) {
  const std::vector<std::string> pieces = {
      "Paris", "is",         "the",  "capital", "of",    "France.\n\n", "Zürich",
      "—",     "1996-08-22", "lamb", ".",       "\t",    "thriller",    "that",
      "never", "lets",       "up!!", "  ",      "日本語"};
  std::string text;
  for (size_t i = 0; i < words; ++i) text += pieces[i % pieces.size()] + " ";
  return text + "end";
}

ls::PreparedInputs prepare(const std::vector<PredictInput>& inputs, ls::TaskType task,
                           int max_length, const InputLimits& limits = {}) {
  return ls::prepare_inputs(inputs, tokenizer(), task == ls::TaskType::kToken ? kTags : kClasses,
                            options(task, max_length), std::nullopt, limits);
}

size_t code_points(const std::string& text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

PredictInput text(std::string value) {
  PredictInput input;
  input.text = std::move(value);
  return input;
}

TEST(PrepareInputs, ACutTextGivesExactlyTheWholeTextsIdsCutAtMaxLength) {
  for (const size_t words : {200u, 2000u})
    for (const int max_length : {8, 64}) {
      const std::string whole = long_text(words);
      const auto full = prepare({text(whole)}, ls::TaskType::kSequence, max_length);
      // The cap of the service's default rule and a tighter one that still holds max_length ids.
      for (const size_t max_chars : {static_cast<size_t>(max_length) * 250, size_t{400}}) {
        const auto cut = prepare({text(whole)}, ls::TaskType::kSequence, max_length,
                                 InputLimits{.max_chars = max_chars, .truncate = true});
        const auto& a = full.dataset.examples[0];
        const auto& b = cut.dataset.examples[0];
        EXPECT_EQ(b.input_ids, a.input_ids) << words << " words, cap " << max_chars;
        EXPECT_TRUE(b.truncated);
        // Over the cap, the cut is what was tokenized (the whole text has more ids).
        if (code_points(whole) > max_chars) {
          EXPECT_LT(b.full_length, a.full_length);
        }
        EXPECT_EQ(cut.raw.records[0].text, whole);  // the record keeps what was sent
      }
    }
}

// A cut that leaves too few ids to be sure of (or no whitespace to cut at) tokenizes the whole
// input: still exactly its ids.
TEST(PrepareInputs, ACutTooShortToBeExactFallsBackToTheWholeInput) {
  const std::string whole = long_text(300);
  const std::string one_word(3000, 'x');
  for (const std::string& input : {whole, one_word}) {
    const auto full = prepare({text(input)}, ls::TaskType::kSequence, 64);
    const auto cut = prepare({text(input)}, ls::TaskType::kSequence, 64,
                             InputLimits{.max_chars = 40, .truncate = true});
    EXPECT_EQ(cut.dataset.examples[0].input_ids, full.dataset.examples[0].input_ids);
    EXPECT_EQ(cut.dataset.examples[0].full_length, full.dataset.examples[0].full_length);
  }
}

TEST(PrepareInputs, AWordListIsCutByWholeWordsToTheSameIdsAndWordIds) {
  std::vector<std::string> words;
  std::istringstream split(long_text(1500));
  for (std::string word; split >> word;) words.push_back(word);
  PredictInput input;
  input.is_words = true;
  input.words = words;
  for (const PredictInput& sent : {input, text(long_text(1500))}) {
    const auto full = prepare({sent}, ls::TaskType::kToken, 32);
    const auto cut =
        prepare({sent}, ls::TaskType::kToken, 32, InputLimits{.max_chars = 1000, .truncate = true});
    const auto& a = full.dataset.examples[0];
    const auto& b = cut.dataset.examples[0];
    EXPECT_LT(b.full_length, a.full_length);  // the cut was tokenized
    EXPECT_LT(b.num_words, a.num_words);
    EXPECT_EQ(b.input_ids, a.input_ids);
    EXPECT_EQ(b.word_ids, a.word_ids);
    EXPECT_TRUE(b.truncated);
    // Every word stays in the record, so "truncated_words" counts all those that lost their tag.
    EXPECT_EQ(cut.raw.records[0].words, words);
  }
}

TEST(PrepareInputs, AnInputOverTheCapWithoutTruncateIsRefusedNamingItsLengthAndTheCap) {
  const std::string long_one(1048576, 'a');
  std::string error;
  try {
    prepare({text("short"), text(long_one)}, ls::TaskType::kSequence, 64,
            InputLimits{.max_chars = 8000});
  } catch (const ls::InputTooLong& e) {
    error = e.what();
  }
  EXPECT_EQ(error,
            "inputs[1]: 1048576 characters, more than --max-input-chars 8000; send \"truncate\": "
            "true to cut it");
  // Characters are code points, not bytes: 3 x 3-byte characters fit a cap of 3.
  EXPECT_NO_THROW(
      prepare({text("日本語")}, ls::TaskType::kSequence, 64, InputLimits{.max_chars = 3}));
  EXPECT_THROW(prepare({text("日本語!")}, ls::TaskType::kSequence, 64, InputLimits{.max_chars = 3}),
               ls::InputTooLong);
  // A token task's words count as joined by single spaces.
  PredictInput words;
  words.is_words = true;
  words.words = {"ab", "cd"};
  EXPECT_NO_THROW(prepare({words}, ls::TaskType::kToken, 64, InputLimits{.max_chars = 5}));
  EXPECT_THROW(prepare({words}, ls::TaskType::kToken, 64, InputLimits{.max_chars = 4}),
               ls::InputTooLong);
}

TEST(PrepareInputs, InputsWithinTheCapAreTokenizedAsWithoutOne) {
  const std::string sentence = "Paris is the capital of France .";
  const auto plain = prepare({text(sentence)}, ls::TaskType::kSequence, 64);
  const auto capped = prepare({text(sentence)}, ls::TaskType::kSequence, 64,
                              InputLimits{.max_chars = sentence.size()});
  EXPECT_EQ(capped.dataset.examples[0].input_ids, plain.dataset.examples[0].input_ids);
  EXPECT_FALSE(capped.dataset.examples[0].truncated);
}

}  // namespace prepare_test
