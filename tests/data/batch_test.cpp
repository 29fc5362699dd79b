// collate (padding, masks, labels, word ids) and BatchLoader (order, resume, shutdown, errors).
#include "data/batch.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "data/loader.h"
#include "pipeline_test_util.h"

namespace ls::data {
namespace {

using testing::user_error;

// A dataset made by hand: example i has ids 10*i+1 .. 10*i+len(i).
Dataset make_dataset(TaskType task, const std::vector<int>& lengths) {
  Dataset dataset;
  dataset.path = "made.jsonl";
  dataset.task = task;
  for (size_t i = 0; i < lengths.size(); ++i) {
    Example example;
    for (int k = 0; k < lengths[i]; ++k) {
      example.input_ids.push_back(static_cast<int32_t>(10 * i + k + 1));
      if (task == TaskType::kToken) {
        example.labels.push_back(k == 0 ? kIgnoreIndex : k % 3);
        example.word_ids.push_back(k - 1);
      }
    }
    example.label = static_cast<int32_t>(i % 2);
    dataset.examples.push_back(std::move(example));
  }
  return dataset;
}

std::vector<int64_t> row(const at::Tensor& t, int64_t r) {
  const at::Tensor c = t[r].contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(Collate, MultiLabelRowsAreIndicatorsAndRegressionTargetsNumbersNanWhenUnlabeled) {
  Dataset dataset = make_dataset(TaskType::kSequence, {2, 3, 1});
  dataset.problem = ProblemType::kMultiLabel;
  dataset.num_labels = 3;
  dataset.examples[0].label_ids = {0, 2};
  dataset.examples[0].labeled = true;
  dataset.examples[1].labeled = true;  // the empty set: a labelled row of zeros
  const Batch multi = collate(dataset, {0, 1, 2}, {});
  ASSERT_EQ(multi.labels.sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(multi.labels.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(multi.labels.narrow(0, 0, 2),
                        at::tensor({1.f, 0.f, 1.f, 0.f, 0.f, 0.f}).view({2, 3})));
  EXPECT_TRUE(multi.labels[2].isnan().all().item<bool>());

  dataset.problem = ProblemType::kRegression;
  dataset.examples[0].target = 2.5f;
  dataset.examples[1].target = -1.0f;
  const Batch regression = collate(dataset, {1, 2, 0}, {});
  ASSERT_EQ(regression.labels.sizes(), (std::vector<int64_t>{3}));
  EXPECT_FLOAT_EQ(regression.labels[0].item<float>(), -1.0f);
  EXPECT_TRUE(std::isnan(regression.labels[1].item<float>()));
  EXPECT_FLOAT_EQ(regression.labels[2].item<float>(), 2.5f);
}

TEST(Collate, PadsRightWithMaskAndIgnoredLabels) {
  const Dataset dataset = make_dataset(TaskType::kToken, {3, 1, 4});
  CollateOptions options;
  options.pad_id = 0;
  const Batch batch = collate(dataset, {0, 1, 2}, options);
  EXPECT_EQ(batch.input_ids.sizes(), (at::IntArrayRef{3, 4}));
  EXPECT_EQ(batch.input_ids.scalar_type(), at::kLong);
  EXPECT_EQ(batch.attention_mask.scalar_type(), at::kLong);
  EXPECT_EQ(batch.labels.scalar_type(), at::kLong);
  EXPECT_EQ(row(batch.input_ids, 1), (std::vector<int64_t>{11, 0, 0, 0}));
  EXPECT_EQ(row(batch.attention_mask, 1), (std::vector<int64_t>{1, 0, 0, 0}));
  EXPECT_EQ(row(batch.input_ids, 0), (std::vector<int64_t>{1, 2, 3, 0}));
  EXPECT_EQ(row(batch.labels, 0), (std::vector<int64_t>{kIgnoreIndex, 1, 2, kIgnoreIndex}));
  EXPECT_EQ(row(batch.word_ids, 0), (std::vector<int64_t>{-1, 0, 1, -1}));
  EXPECT_EQ(row(batch.input_ids, 2), (std::vector<int64_t>{21, 22, 23, 24}));
  EXPECT_EQ(batch.example_indices, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(batch.attention_mask.sum().item<int64_t>(), 3 + 1 + 4);
}

TEST(Collate, PadsLeftWithAConfiguredIdAndRoundsTheWidth) {
  const Dataset dataset = make_dataset(TaskType::kSequence, {3, 1});
  CollateOptions options;
  options.pad_id = 2;  // e.g. LLaMA's EOS
  options.padding_side = PaddingSide::kLeft;
  options.pad_to_multiple_of = 8;
  const Batch batch = collate(dataset, {1, 0}, options);
  EXPECT_EQ(batch.input_ids.sizes(), (at::IntArrayRef{2, 8}));
  EXPECT_EQ(row(batch.input_ids, 0), (std::vector<int64_t>{2, 2, 2, 2, 2, 2, 2, 11}));
  EXPECT_EQ(row(batch.attention_mask, 1), (std::vector<int64_t>{0, 0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(batch.labels.sizes(), (at::IntArrayRef{2}));
  EXPECT_EQ(batch.labels[0].item<int64_t>(), 1);  // example 1's label
  EXPECT_EQ(batch.labels[1].item<int64_t>(), 0);
  EXPECT_FALSE(batch.word_ids.defined());
  EXPECT_EQ(parse_enum<PaddingSide>("left", "data.padding_side"), PaddingSide::kLeft);
  EXPECT_NE(
      user_error([] { parse_enum<PaddingSide>("middle", "data.padding_side"); }).find("middle"),
      std::string::npos);
}

TEST(Collate, EmptyShareGivesEmptyTensors) {
  const Dataset dataset = make_dataset(TaskType::kToken, {3});
  const Batch batch = collate(dataset, {}, {});
  EXPECT_EQ(batch.input_ids.sizes(), (at::IntArrayRef{0, 0}));
  EXPECT_EQ(batch.size(), 0);
}

TEST(WordPredictions, EachWordTakesItsFirstSubwordsPrediction) {
  // Two sentences: words of 2, 1 and 3 sub-words after BOS; the second is cut after word 0.
  Dataset dataset;
  dataset.task = TaskType::kToken;
  Example a;
  a.input_ids = {1, 5, 6, 7, 8, 9, 10};
  a.word_ids = {-1, 0, 0, 1, 2, 2, 2};
  a.labels = {kIgnoreIndex, 1, kIgnoreIndex, 0, 2, kIgnoreIndex, kIgnoreIndex};
  a.num_words = 3;
  Example b;
  b.input_ids = {1, 5};
  b.word_ids = {-1, 0};
  b.labels = {kIgnoreIndex, 1};
  b.num_words = 2;
  b.truncated = true;
  dataset.examples = {a, b};
  for (PaddingSide side : {PaddingSide::kRight, PaddingSide::kLeft}) {
    CollateOptions options;
    options.padding_side = side;
    const Batch batch = collate(dataset, {1, 0}, options);
    // Predict, at every position, its column index, so each prediction says where it was read.
    const at::Tensor predicted = at::arange(batch.input_ids.size(1)).repeat({2, 1});
    const int64_t shift = side == PaddingSide::kLeft ? 7 - 2 : 0;  // row 0 is the short one
    EXPECT_EQ(word_predictions(dataset, batch, 0, predicted),
              (std::vector<int32_t>{static_cast<int32_t>(1 + shift), kIgnoreIndex}));
    EXPECT_EQ(word_predictions(dataset, batch, 1, predicted), (std::vector<int32_t>{1, 3, 4}));
  }
}

Sampler make_sampler(const Dataset& dataset, int64_t batch_size) {
  SamplerOptions options;
  options.batch_size = batch_size;
  options.seed = 3;
  return Sampler(dataset.lengths(), options);
}

TEST(BatchLoader, YieldsTheSamplersBatchesInOrderAcrossEpochs) {
  const Dataset dataset = make_dataset(TaskType::kSequence, {2, 5, 1, 7, 3, 4, 2, 6, 1, 2, 3});
  const Sampler sampler = make_sampler(dataset, 3);
  BatchLoader loader(dataset, sampler, {}, {0, 0}, 3, 2);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const auto expected = sampler.epoch_batches(epoch);
    for (size_t b = 0; b < expected.size(); ++b) {
      std::optional<Batch> batch = loader.next();
      ASSERT_TRUE(batch);
      EXPECT_EQ(batch->example_indices, expected[b]);
      EXPECT_EQ(batch->epoch, epoch);
      EXPECT_EQ(batch->index, static_cast<int64_t>(b));
      const bool last = b + 1 == expected.size();
      const SamplerPosition after = last ? SamplerPosition{epoch + 1, 0}
                                         : SamplerPosition{epoch, static_cast<int64_t>(b) + 1};
      EXPECT_EQ(batch->next, after);
    }
  }
  EXPECT_FALSE(loader.next());
  EXPECT_FALSE(loader.next());
}

TEST(BatchLoader, ResumesExactlyFromASavedPosition) {
  const Dataset dataset = make_dataset(TaskType::kToken, {2, 5, 1, 7, 3, 4, 2, 6, 1, 2, 3, 9, 4});
  const Sampler sampler = make_sampler(dataset, 2);
  std::vector<std::vector<int64_t>> uninterrupted;
  {
    BatchLoader loader(dataset, sampler, {}, {}, 2);
    while (auto batch = loader.next()) uninterrupted.push_back(batch->example_indices);
  }
  // Stop after 9 batches, save the position as JSON, resume in a "new process".
  nlohmann::json saved;
  std::vector<std::vector<int64_t>> resumed;
  {
    BatchLoader loader(dataset, sampler, {}, {}, 2);
    for (int i = 0; i < 9; ++i) {
      auto batch = loader.next();
      resumed.push_back(batch->example_indices);
      saved = sampler.save(batch->next);
    }
  }  // the loader is destroyed with batches still queued
  const Sampler fresh = make_sampler(dataset, 2);
  BatchLoader loader(dataset, fresh, {}, fresh.restore(nlohmann::json::parse(saved.dump())), 2);
  while (auto batch = loader.next()) resumed.push_back(batch->example_indices);
  EXPECT_EQ(resumed, uninterrupted);
}

TEST(BatchLoader, PassesAnErrorToTheConsumerAfterTheGoodBatches) {
  Dataset dataset = make_dataset(TaskType::kToken, {2, 3, 4, 5});
  dataset.examples[2].labels.pop_back();  // breaks collate's invariant at the third batch
  SamplerOptions options;
  options.batch_size = 1;
  options.shuffle = false;
  const Sampler sampler(dataset.lengths(), options);
  BatchLoader loader(dataset, sampler, {}, {}, 1, 1);
  EXPECT_EQ(loader.next()->example_indices, (std::vector<int64_t>{0}));
  EXPECT_EQ(loader.next()->example_indices, (std::vector<int64_t>{1}));
  try {
    loader.next();
    FAIL() << "the producer's exception should reach the consumer";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("labels"), std::string::npos) << e.what();
  }
  EXPECT_THROW(loader.next(), std::logic_error);  // and keeps reaching it
}

// Pinned batches are what make the trainer's non_blocking copies to the GPU asynchronous; on a
// machine without CUDA the default is not to pin (pinning needs the CUDA host allocator).
TEST(BatchLoader, PinsBatchesWhenAskedOrWhenCudaIsPresent) {
  const Dataset dataset = make_dataset(TaskType::kSequence, {2, 5, 1, 7});
  const Sampler sampler = make_sampler(dataset, 2);
  {
    BatchLoader loader(dataset, sampler, {}, {0, 0}, 1, 2, /*pin_memory=*/false);
    EXPECT_FALSE(loader.next()->input_ids.is_pinned());
  }
  BatchLoader loader(dataset, sampler, {}, {0, 0}, 1, 2);
  const auto batch = loader.next();
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->input_ids.is_pinned(), at::globalContext().hasCUDA());
  EXPECT_EQ(batch->labels.is_pinned(), at::globalContext().hasCUDA());
}

// (A *Cuda* case: the data_batch_test_cuda test, reported skipped without a GPU.)
TEST(BatchLoader, CudaPinsBatchesWhenAsked) {
  if (!at::globalContext().hasCUDA()) GTEST_SKIP() << "no CUDA device: pin_memory=true not tried";
  const Dataset dataset = make_dataset(TaskType::kSequence, {2, 5, 1, 7});
  const Sampler sampler = make_sampler(dataset, 2);
  BatchLoader pinned(dataset, sampler, {}, {0, 0}, 1, 2, /*pin_memory=*/true);
  EXPECT_TRUE(pinned.next()->attention_mask.is_pinned());
}

TEST(BatchLoader, StopsCleanlyWhenDestroyedEarly) {
  const Dataset dataset = make_dataset(TaskType::kSequence, std::vector<int>(1000, 8));
  const Sampler sampler = make_sampler(dataset, 4);
  for (int repeat = 0; repeat < 20; ++repeat) {
    BatchLoader loader(dataset, sampler, {}, {}, 1000, 3);
    ASSERT_TRUE(loader.next());
  }  // each destructor must wake and join a producer blocked on a full queue
}

}  // namespace
}  // namespace ls::data
