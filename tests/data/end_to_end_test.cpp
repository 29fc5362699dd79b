// The pipeline from real-format files (tests/fixtures/formats: CoNLL-2003, WNUT-17 as HF datasets
// exports it, SST-2 TSV, MNLI CSV) to batches on two data-parallel ranks.
#include <gtest/gtest.h>

#include <set>

#include "data/dataset.h"
#include "data/loader.h"
#include "pipeline_test_util.h"

namespace ls::data {
namespace {

using testing::llama_style_model;

std::string fixture(const std::string& name) {
  return std::string(LS_PIPELINE_FIXTURES) + "/" + name;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& word : words) out += (out.empty() ? "" : " ") + word;
  return out;
}

TEST(Files, Conll2003) {
  const Tokenizer tokenizer(llama_style_model());
  DatasetOptions options;
  options.task = TaskType::kToken;
  const RawDataset raw =
      read_raw_dataset(fixture("conll2003_sample.txt"), options.task, options.reader);
  ASSERT_EQ(raw.records.size(), 5u);
  EXPECT_EQ(join(raw.records[1].words), "Peter Blackburn");
  EXPECT_EQ(raw.records[4].line, 52);  // after the second -DOCSTART-
  const LabelMap labels = infer_label_map(raw);
  EXPECT_EQ(labels.names(),
            (std::vector<std::string>{"O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-ORG", "I-PER"}));
  const Dataset dataset = build_dataset(raw, tokenizer, labels, options);
  EXPECT_EQ(dataset.stats.bio_warnings, 0);
  EXPECT_EQ(dataset.examples[0].word_labels, (std::vector<int32_t>{3, 0, 2, 0, 0, 0, 2, 0, 0}));
  int64_t longer = 0;
  for (size_t i = 0; i < raw.records.size(); ++i) {
    const Example& example = dataset.examples[i];
    const std::vector<int> full = tokenizer.encode(join(raw.records[i].words));
    EXPECT_EQ(example.full_length, static_cast<int32_t>(full.size()));
    // The ids are those of the joined sentence, cut at max_length.
    EXPECT_EQ(std::vector<int>(example.input_ids.begin(), example.input_ids.end()),
              std::vector<int>(full.begin(), full.begin() + std::min<size_t>(full.size(), 64)));
    longer += full.size() > 64;
  }
  EXPECT_GT(longer, 0);
  EXPECT_EQ(dataset.stats.truncated, longer);
}

TEST(Files, Wnut17IntegerTagsWithALabelList) {
  const Tokenizer tokenizer(llama_style_model());
  const LabelMap labels({"O", "B-corporation", "I-corporation", "B-creative-work",
                         "I-creative-work", "B-group", "I-group", "B-location", "I-location",
                         "B-person", "I-person", "B-product", "I-product"});
  DatasetOptions options;
  options.task = TaskType::kToken;
  options.max_length = 0;
  const Dataset dataset = load_dataset(fixture("wnut_sample.jsonl"), tokenizer, labels, options);
  ASSERT_EQ(dataset.size(), 5);
  const Example& first = dataset.examples[0];
  EXPECT_EQ(first.num_words, 27);
  EXPECT_EQ(labels.name(first.word_labels[14]), "B-location");  // Empire
  EXPECT_EQ(labels.name(first.word_labels[16]), "I-location");  // Building
  EXPECT_EQ(labels.name(dataset.examples[4].word_labels[0]), "B-person");
}

TEST(Files, Sst2Tsv) {
  const Tokenizer tokenizer(llama_style_model());
  DatasetOptions options;
  options.reader.text_fields = {"sentence"};
  const RawDataset raw = read_raw_dataset(fixture("sst2_sample.tsv"), options.task, options.reader);
  ASSERT_EQ(raw.records.size(), 10u);
  EXPECT_EQ(raw.records[0].text, "hide new secretions from the parental units ");  // kept as is
  const LabelMap labels = infer_label_map(raw);
  EXPECT_EQ(labels.names(), (std::vector<std::string>{"0", "1"}));
  const Dataset dataset = build_dataset(raw, tokenizer, labels, options);
  EXPECT_EQ(dataset.examples[2].label, 1);
  EXPECT_EQ(dataset.examples[1].label, 0);
}

TEST(Files, MnliCsvPairs) {
  ReaderOptions reader;
  reader.text_fields = {"premise", "hypothesis"};
  reader.pair_separator = " ";
  const RawDataset raw = read_raw_dataset(fixture("mnli_sample.csv"), TaskType::kSequence, reader);
  ASSERT_EQ(raw.records.size(), 10u);
  EXPECT_EQ(raw.records[4].text.substr(raw.records[4].text.find("The tennis")),
            "The tennis shoes have a range of prices, \"cheap\" to dear.");
  EXPECT_NE(raw.records[9].text.find("square,\nthe Place"), std::string::npos);
  EXPECT_EQ(raw.records[9].line, 11);
  EXPECT_EQ(infer_label_map(raw).names(),
            (std::vector<std::string>{"contradiction", "entailment", "neutral"}));
}

TEST(EndToEnd, TwoRanksSeeDisjointEqualSharesOfCorrectBatches) {
  const Tokenizer tokenizer(llama_style_model());
  DatasetOptions options;
  options.task = TaskType::kToken;
  options.max_length = 16;
  const RawDataset raw =
      read_raw_dataset(fixture("conll2003_sample.txt"), options.task, options.reader);
  // Five sentences are too few for shards: repeat the file's records.
  RawDataset many = raw;
  for (int copy = 0; copy < 9; ++copy)
    many.records.insert(many.records.end(), raw.records.begin(), raw.records.end());
  const Dataset dataset = build_dataset(many, tokenizer, infer_label_map(raw), options);
  ASSERT_EQ(dataset.size(), 50);

  std::vector<std::multiset<int64_t>> seen(2);
  std::vector<int64_t> batches(2, 0);
  for (int rank = 0; rank < 2; ++rank) {
    SamplerOptions sampler_options;
    sampler_options.batch_size = 4;
    sampler_options.group_by_length = true;
    sampler_options.dp_rank = rank;
    sampler_options.dp_size = 2;
    const Sampler sampler(dataset.lengths(), sampler_options);
    CollateOptions collate_options;
    collate_options.pad_id = 2;
    BatchLoader loader(dataset, sampler, collate_options, {}, 1);
    while (auto batch = loader.next()) {
      ++batches[rank];
      const auto lengths = batch->attention_mask.sum(1);
      for (int64_t r = 0; r < batch->size(); ++r) {
        const int64_t index = batch->example_indices[r];
        const Example& example = dataset.examples[index];
        seen[rank].insert(index);
        EXPECT_EQ(lengths[r].item<int64_t>(), static_cast<int64_t>(example.input_ids.size()));
        for (size_t t = 0; t < example.labels.size(); ++t) {
          EXPECT_EQ(batch->labels[r][t].item<int64_t>(), example.labels[t]);
          EXPECT_EQ(batch->input_ids[r][t].item<int64_t>(), example.input_ids[t]);
        }
      }
    }
  }
  EXPECT_EQ(batches[0], batches[1]);
  EXPECT_EQ(seen[0].size(), 25u);
  EXPECT_EQ(seen[1].size(), 25u);
  for (int64_t index : seen[0]) EXPECT_EQ(seen[1].count(index), 0u) << index;
  EXPECT_EQ(std::set<int64_t>(seen[0].begin(), seen[0].end()).size(), 25u);  // no repeats
}

}  // namespace
}  // namespace ls::data
