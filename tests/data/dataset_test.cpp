// Dataset building over a LLaMA-style tokenizer trained at test time: LLaMA semantics (BOS,
// optional EOS), sub-word label alignment whose ids equal tokenizing the joined sentence,
// truncation and its counts, label errors, and the BIO check.
#include "data/dataset.h"

#include <gtest/gtest.h>

#include "pipeline_test_util.h"

namespace ls::data {
namespace {

using testing::llama_style_model;
using testing::user_error;

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? " " : "") + words[i];
  return out;
}

DatasetOptions token_options(int max_length = 0) {
  DatasetOptions options;
  options.task = TaskType::kToken;
  options.max_length = max_length;
  return options;
}

TEST(Tokenizer, HasLlamaSemantics) {
  const Tokenizer tokenizer(llama_style_model());
  const std::vector<int> ids = tokenizer.encode("EU rejects German call");
  EXPECT_EQ(ids.front(), tokenizer.bos_id());
  EXPECT_NE(ids.back(), tokenizer.eos_id());
  EXPECT_EQ(std::vector<int>(ids.begin() + 1, ids.end()),
            tokenizer.encode_plain("EU rejects German call"));
  const Tokenizer with_eos(llama_style_model(), {.add_bos = false, .add_eos = true});
  const std::vector<int> eos_ids = with_eos.encode("EU");
  EXPECT_NE(eos_ids.front(), tokenizer.bos_id());
  EXPECT_EQ(eos_ids.back(), tokenizer.eos_id());
  EXPECT_EQ(tokenizer.pad_id(), -1);  // like LLaMA: padding needs a configured id
  // Digits are split one per piece, and whitespace runs survive (no normalization).
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("1996  -08\t22")), "1996  -08\t22");
}

TEST(Tokenizer, ATiktokenFileIsNamedAsSuchAndOtherGarbageAsNotSentencepiece) {
  const ScratchDir dir;
  const std::string tiktoken = dir.write("tokenizer.model", "IQ== 0\nIg== 1\nIw== 2\n");
  EXPECT_HAS(user_error([&] { Tokenizer{tiktoken}; }),
             "tokenizer.model: a tiktoken BPE file (as LLaMA-3's original/tokenizer.model), not a "
             "sentencepiece model: use the model's tokenizer.json");
  const std::string garbage = dir.write("other.model", "not a model at all\n");
  EXPECT_HAS(user_error([&] { Tokenizer{garbage}; }), "other.model: not a sentencepiece model");
}

TEST(WordAlignment, IdsEqualTokenizingTheJoinedSentence) {
  const Tokenizer tokenizer(llama_style_model());
  const std::vector<std::vector<std::string>> sentences = {
      {"EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."},
      {"Peter", "Blackburn"},
      {"BRUSSELS", "1996-08-22"},
      {"Zürich", "北京", "😀", "naïve", "x"},  // byte fallback inside words
      {"unseen", "wordsXYZ", "qqq"}};
  for (const auto& words : sentences) {
    const WordEncoding encoding = tokenizer.encode_words(words);
    EXPECT_EQ(encoding.ids, tokenizer.encode(join(words))) << join(words);
    ASSERT_EQ(encoding.word_ids.size(), encoding.ids.size());
    EXPECT_EQ(encoding.word_ids.front(), -1);  // BOS
    // Word ids rise by one from 0 to the last word: every word has its pieces, in order.
    int expected = 0;
    for (size_t i = 1; i < encoding.word_ids.size(); ++i) {
      const int word = encoding.word_ids[i];
      if (word != expected - 1) {
        EXPECT_EQ(word, expected) << join(words) << " at " << i;
        ++expected;
      }
    }
    EXPECT_EQ(expected, static_cast<int>(words.size())) << join(words);
    // Each word's pieces decode back to the word.
    for (int w = 0; w < static_cast<int>(words.size()); ++w) {
      std::vector<int> pieces;
      for (size_t i = 0; i < encoding.ids.size(); ++i)
        if (encoding.word_ids[i] == w) pieces.push_back(encoding.ids[i]);
      EXPECT_EQ(tokenizer.decode(pieces), words[w]);
    }
  }
}

TEST(WordAlignment, FirstSubwordCarriesTheLabelOthersAndBosIgnored) {
  const Tokenizer tokenizer(llama_style_model());
  const RawDataset raw = parse_raw_dataset(
      "ner.jsonl",
      "{\"tokens\": [\"Zürich\", \"rejects\", \"北京\"], \"ner_tags\": [\"B-LOC\", \"O\", "
      "\"B-LOC\"]}\n",
      TaskType::kToken, {});
  const LabelMap labels({"O", "B-LOC", "I-LOC"});
  for (bool all_subwords : {false, true}) {
    DatasetOptions options = token_options();
    options.label_all_subwords = all_subwords;
    const Dataset dataset = build_dataset(raw, tokenizer, labels, options);
    const Example& example = dataset.examples.at(0);
    ASSERT_EQ(example.labels.size(), example.input_ids.size());
    EXPECT_EQ(example.num_words, 3);
    EXPECT_EQ(example.word_labels, (std::vector<int32_t>{1, 0, 1}));
    EXPECT_EQ(example.labels[0], kIgnoreIndex);  // BOS
    const int word_labels[] = {1, 0, 1};
    int previous = -1;
    int labelled_words = 0;
    for (size_t i = 1; i < example.labels.size(); ++i) {
      const int word = example.word_ids[i];
      const bool first = word != previous;
      if (first || all_subwords) {
        EXPECT_EQ(example.labels[i], word_labels[word]) << "position " << i;
        labelled_words += first;
      } else {
        EXPECT_EQ(example.labels[i], kIgnoreIndex) << "position " << i;
      }
      previous = word;
    }
    EXPECT_EQ(labelled_words, 3);
    EXPECT_GT(example.input_ids.size(), 4u);  // some words really are several sub-words
  }
}

TEST(Truncation, CutsToMaxLengthAndCountsIt) {
  const Tokenizer tokenizer(llama_style_model());
  const RawDataset raw = parse_raw_dataset(
      "train.jsonl",
      "{\"text\": \"the movie is a disaster from start to finish\", \"label\": \"neg\"}\n"
      "{\"text\": \"fine\", \"label\": \"pos\"}\n",
      TaskType::kSequence, {});
  DatasetOptions options;
  options.max_length = 5;
  const Dataset dataset = build_dataset(raw, tokenizer, infer_label_map(raw), options);
  EXPECT_EQ(dataset.stats.truncated, 1);
  EXPECT_EQ(dataset.examples[0].input_ids.size(), 5u);
  EXPECT_TRUE(dataset.examples[0].truncated);
  EXPECT_EQ(
      dataset.examples[0].full_length,
      static_cast<int>(tokenizer.encode("the movie is a disaster from start to finish").size()));
  EXPECT_EQ(dataset.stats.longest, dataset.examples[0].full_length);
  EXPECT_FALSE(dataset.examples[1].truncated);
  EXPECT_EQ(dataset.examples[0].label, 0);  // "neg" < "pos"
  EXPECT_EQ(dataset.examples[1].label, 1);
  EXPECT_HAS(dataset.summary(), "1 truncated to 5");

  // With EOS on, the cut keeps EOS last.
  const Tokenizer eos(llama_style_model(), {.add_bos = true, .add_eos = true});
  const Dataset with_eos = build_dataset(raw, eos, infer_label_map(raw), options);
  EXPECT_EQ(with_eos.examples[0].input_ids.back(), eos.eos_id());
  EXPECT_EQ(with_eos.examples[0].input_ids.size(), 5u);
}

TEST(Truncation, TokenTaskCountsTheWordsItCuts) {
  const Tokenizer tokenizer(llama_style_model());
  const RawDataset raw = parse_raw_dataset(
      "train.conll", "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\nto O\nboycott O\n",
      TaskType::kToken, {});
  const Dataset dataset = build_dataset(raw, tokenizer, infer_label_map(raw), token_options(4));
  const Example& example = dataset.examples.at(0);
  EXPECT_EQ(example.input_ids.size(), 4u);
  EXPECT_EQ(example.labels.size(), 4u);
  EXPECT_EQ(example.word_ids.size(), 4u);
  EXPECT_EQ(example.word_labels.size(), 6u);  // gold tags of every word, cut ones too
  const int kept_words = example.word_ids.back() + 1;
  EXPECT_EQ(dataset.stats.words_cut, 6 - kept_words);
  EXPECT_EQ(dataset.stats.truncated, 1);
}

TEST(Labels, MultiLabelMapIsTheUnionAndUnknownLabelsNameFileAndLine) {
  const Tokenizer tokenizer(llama_style_model());
  DatasetOptions options;
  options.reader.problem = ProblemType::kMultiLabel;
  const RawDataset train = parse_raw_dataset(
      "train.jsonl",
      "{\"text\": \"a\", \"label\": [\"toxic\", \"insult\", \"toxic\"]}\n"
      "{\"text\": \"b\", \"label\": [\"threat\"]}\n{\"text\": \"c\", \"label\": []}\n",
      TaskType::kSequence, options.reader);
  const LabelMap labels = infer_label_map(train, ProblemType::kMultiLabel);
  EXPECT_EQ(labels.names(), (std::vector<std::string>{"insult", "threat", "toxic"}));
  const Dataset dataset = build_dataset(train, tokenizer, labels, options);
  EXPECT_EQ(dataset.examples[0].label_ids, (std::vector<int32_t>{0, 2}));  // a repeat counts once
  EXPECT_TRUE(dataset.examples[2].labeled);
  EXPECT_TRUE(dataset.examples[2].label_ids.empty());
  const LabelCounts counts = count_labels(dataset);
  EXPECT_EQ(counts.per_class, (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(counts.total, 3);
  const RawDataset validation =
      parse_raw_dataset("validation.jsonl",
                        "{\"text\": \"a\", \"label\": [\"toxic\"]}\n{\"text\": \"b\", \"label\": "
                        "[\"toxic\", \"rude\"]}\n",
                        TaskType::kSequence, options.reader);
  EXPECT_HAS(
      user_error([&] { build_dataset(validation, tokenizer, labels, options); }),
      "validation.jsonl:2: unknown label \"rude\" (the label map has 3: insult, threat, toxic)");
}

TEST(Labels, RegressionTargetsAndTheirStatistics) {
  const Tokenizer tokenizer(llama_style_model());
  DatasetOptions options;
  options.reader.problem = ProblemType::kRegression;
  const RawDataset train = parse_raw_dataset(
      "sts.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 3.0}\n",
      TaskType::kSequence, options.reader);
  const LabelMap labels = infer_label_map(train, ProblemType::kRegression);
  EXPECT_EQ(labels.names(), std::vector<std::string>{"target"});
  const Dataset dataset = build_dataset(train, tokenizer, labels, options);
  EXPECT_FLOAT_EQ(dataset.examples[1].target, 3.0f);
  const TargetStats stats = target_stats(dataset);
  EXPECT_DOUBLE_EQ(stats.mean, 2.0);
  EXPECT_DOUBLE_EQ(stats.std, 1.0);  // population std, as the normalisation uses
}

TEST(Labels, UnknownLabelInValidationNamesFileAndLine) {
  const Tokenizer tokenizer(llama_style_model());
  const RawDataset train = parse_raw_dataset(
      "train.jsonl",
      "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \"neg\"}\n",
      TaskType::kSequence, {});
  const RawDataset validation = parse_raw_dataset(
      "validation.jsonl",
      "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \"neutral\"}\n",
      TaskType::kSequence, {});
  const LabelMap labels = infer_label_map(train);
  EXPECT_HAS(user_error([&] { build_dataset(validation, tokenizer, labels, {}); }),
             "validation.jsonl:2: unknown label \"neutral\" (the label map has 2: neg, pos)");

  const RawDataset conll =
      parse_raw_dataset("dev.conll", "EU B-ORG\n\nParis B-LOC\n", TaskType::kToken, {});
  EXPECT_HAS(user_error([&] {
               build_dataset(conll, tokenizer, LabelMap({"O", "B-ORG"}), token_options());
             }),
             "dev.conll:3: unknown label \"B-LOC\"");
}

TEST(Labels, IntegerTagsIndexTheConfiguredList) {
  const Tokenizer tokenizer(llama_style_model());
  const RawDataset raw = parse_raw_dataset(
      "ner.jsonl", "{\"tokens\": [\"Peter\", \"Blackburn\"], \"ner_tags\": [1, 2]}\n",
      TaskType::kToken, {});
  const Dataset dataset =
      build_dataset(raw, tokenizer, LabelMap({"O", "B-PER", "I-PER"}), token_options());
  std::vector<int> first_subword_labels;
  for (size_t i = 0; i < dataset.examples[0].labels.size(); ++i)
    if (dataset.examples[0].labels[i] != kIgnoreIndex)
      first_subword_labels.push_back(dataset.examples[0].labels[i]);
  EXPECT_EQ(first_subword_labels, (std::vector<int>{1, 2}));
}

TEST(Labels, UnlabeledSplitGetsIgnoreIndex) {
  const Tokenizer tokenizer(llama_style_model());
  ReaderOptions reader;
  reader.labeled = false;
  const RawDataset raw =
      parse_raw_dataset("test.jsonl", "{\"text\": \"fine\"}\n", TaskType::kSequence, reader);
  const Dataset dataset = build_dataset(raw, tokenizer, LabelMap({"neg", "pos"}), {});
  EXPECT_EQ(dataset.examples[0].label, kIgnoreIndex);
}

TEST(Bio, CountsITagsThatDoNotContinueAnEntity) {
  const Tokenizer tokenizer(llama_style_model());
  const RawDataset raw = parse_raw_dataset("train.conll",
                                           "Peter B-PER\nBlackburn I-PER\n\n"  // fine
                                           "EU O\nrejects I-ORG\n\n"           // I after O
                                           "German I-MISC\n\n"                 // I first
                                           "Paris B-LOC\nlamb I-PER\n",        // type changes
                                           TaskType::kToken, {});
  const Dataset dataset = build_dataset(raw, tokenizer, infer_label_map(raw), token_options());
  EXPECT_EQ(dataset.stats.bio_warnings, 3);
  EXPECT_EQ(dataset.stats.first_bio_warning,
            "train.conll:4: word 2 'rejects' tagged I-ORG after O");
  EXPECT_HAS(dataset.summary(), "3 I- tags do not continue an entity");
}

TEST(Pretokenized, TakesIdsAsGivenAndChecksTheVocabulary) {
  const Tokenizer tokenizer(llama_style_model());
  const RawDataset raw = parse_raw_dataset(
      "ids.jsonl", "{\"input_ids\": [1, 50, 60], \"label\": 1}\n", TaskType::kSequence, {});
  const Dataset dataset = build_dataset(raw, tokenizer, LabelMap({"a", "b"}), {});
  EXPECT_EQ(dataset.examples[0].input_ids, (std::vector<int32_t>{1, 50, 60}));
  EXPECT_EQ(dataset.examples[0].label, 1);

  const RawDataset outside = parse_raw_dataset(
      "ids.jsonl", "{\"input_ids\": [1, 99999], \"label\": 1}\n", TaskType::kSequence, {});
  EXPECT_HAS(user_error([&] {
               build_dataset(outside, tokenizer, LabelMap({"a", "b"}), {});
             }),
             "ids.jsonl:1: token id 99999 is outside the tokenizer's vocabulary");

  const RawDataset token = parse_raw_dataset(
      "ids.jsonl", "{\"input_ids\": [1, 50, 60], \"ner_tags\": [-100, \"B-PER\", 0]}\n",
      TaskType::kToken, {});
  const Dataset tagged = build_dataset(token, tokenizer, LabelMap({"O", "B-PER"}), token_options());
  EXPECT_EQ(tagged.examples[0].labels, (std::vector<int32_t>{kIgnoreIndex, 1, 0}));
  EXPECT_EQ(tagged.examples[0].word_ids, (std::vector<int32_t>{0, 1, 2}));
}

TEST(Pretokenized, NeedsNoTokenizerAndChecksIdsAgainstTheModelsVocabulary) {
  const RawDataset raw = parse_raw_dataset(
      "ids.jsonl", "{\"input_ids\": [1, 50, 60], \"label\": 1}\n", TaskType::kSequence, {});
  DatasetOptions options;
  options.vocab_size = 61;  // config.json's vocab_size, larger than no tokenizer at all
  const Dataset dataset = build_dataset(raw, nullptr, LabelMap({"a", "b"}), options);
  EXPECT_EQ(dataset.examples[0].input_ids, (std::vector<int32_t>{1, 50, 60}));

  options.vocab_size = 60;
  EXPECT_HAS(user_error([&] {
               build_dataset(raw, nullptr, LabelMap({"a", "b"}), options);
             }),
             "ids.jsonl:1: token id 60 is outside the model's vocabulary of 60");
  // With a tokenizer too, the model's vocabulary is the one that counts.
  const Tokenizer tokenizer(llama_style_model());
  EXPECT_HAS(user_error([&] {
               build_dataset(raw, tokenizer, LabelMap({"a", "b"}), options);
             }),
             "outside the model's vocabulary of 60");
}

TEST(Threads, ResultDoesNotDependOnTheThreadCount) {
  const Tokenizer tokenizer(llama_style_model());
  std::string text;
  for (int i = 0; i < 3000; ++i)
    text += "{\"text\": \"sentence " + std::to_string(i) +
            " of the movie\", \"label\": " + std::to_string(i % 3) + "}\n";
  text += "{\"text\": \"late\", \"label\": 7}\n";
  const RawDataset raw = parse_raw_dataset("many.jsonl", text, TaskType::kSequence, {});
  const LabelMap labels({"0", "1", "2", "7"});
  DatasetOptions one, four;
  one.num_threads = 1;
  four.num_threads = 4;
  const Dataset a = build_dataset(raw, tokenizer, labels, one);
  const Dataset b = build_dataset(raw, tokenizer, labels, four);
  ASSERT_EQ(a.size(), b.size());
  for (int64_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a.examples[i].input_ids, b.examples[i].input_ids);
    EXPECT_EQ(a.examples[i].label, b.examples[i].label);
  }
  // The first error in file order is reported, whichever thread meets it.
  const RawDataset bad = parse_raw_dataset(
      "bad.jsonl", "{\"text\": \"x\", \"label\": \"nope\"}\n" + text, TaskType::kSequence, {});
  EXPECT_HAS(user_error([&] { build_dataset(bad, tokenizer, labels, four); }),
             "bad.jsonl:1: unknown label \"nope\"");
}

}  // namespace
}  // namespace ls::data
