// Sampler: seeded order identical across runs, length grouping, data-parallel shards that are
// disjoint, every example once in global batches that do not depend on the layout (dp, micro-batch
// size), evaluation shards that cover everything once, and resume positions.
#include "data/sampler.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "pipeline_test_util.h"

namespace ls::data {
namespace {

using testing::user_error;

std::vector<int64_t> lengths(int64_t n) {
  std::vector<int64_t> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = 3 + (i * 7919) % 61;
  return out;
}

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> out;
  for (const auto& batch : batches) out.insert(out.end(), batch.begin(), batch.end());
  return out;
}

TEST(Sampler, SameSeedSameOrderNewEpochNewOrder) {
  SamplerOptions options;
  options.batch_size = 4;
  options.seed = 1234;
  const Sampler a(lengths(103), options), b(lengths(103), options);
  EXPECT_EQ(a.epoch_batches(0), b.epoch_batches(0));
  EXPECT_EQ(a.epoch_batches(5), b.epoch_batches(5));
  EXPECT_NE(a.epoch_batches(0), a.epoch_batches(1));
  options.seed = 1235;
  EXPECT_NE(Sampler(lengths(103), options).epoch_batches(0), a.epoch_batches(0));
  // One epoch is a permutation.
  std::vector<int64_t> all = flatten(a.epoch_batches(3));
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), 103u);
  for (int64_t i = 0; i < 103; ++i) EXPECT_EQ(all[i], i);
  EXPECT_EQ(a.batches_per_epoch(), 26);  // 25 full batches and one of 3
}

TEST(Sampler, OrderIsPinnedAcrossBuilds) {
  // The shuffle is specified here (splitmix64-seeded mt19937_64, whose output the C++ standard
  // fixes, and Fisher-Yates with rejection sampling), not left to the standard library's
  // distributions. These orders were recorded once; if they change, a run resumed with a rebuilt
  // binary would replay different batches.
  SamplerOptions options;
  options.batch_size = 10;
  options.seed = 42;
  const Sampler sampler(lengths(10), options);
  EXPECT_EQ(flatten(sampler.epoch_batches(0)),
            (std::vector<int64_t>{9, 6, 2, 0, 1, 4, 3, 8, 5, 7}));
  EXPECT_EQ(flatten(sampler.epoch_batches(1)),
            (std::vector<int64_t>{5, 4, 1, 3, 0, 2, 7, 8, 6, 9}));
  options.shuffle = false;
  EXPECT_EQ(flatten(Sampler(lengths(10), options).epoch_batches(7)),
            (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(Sampler, LengthGroupingSortsWithinMegaBatchesOnly) {
  SamplerOptions options;
  options.batch_size = 4;
  options.group_by_length = true;
  options.mega_batch_factor = 5;  // mega-batches of 20
  const std::vector<int64_t> lens = lengths(200);
  const Sampler grouped(lens, options);
  options.group_by_length = false;
  const Sampler plain(lens, options);
  const std::vector<int64_t> g = flatten(grouped.epoch_batches(2));
  const std::vector<int64_t> p = flatten(plain.epoch_batches(2));
  for (size_t begin = 0; begin < g.size(); begin += 20) {
    // Same examples as the shuffled mega-batch, longest first.
    std::vector<int64_t> a(g.begin() + begin, g.begin() + begin + 20);
    std::vector<int64_t> b(p.begin() + begin, p.begin() + begin + 20);
    for (size_t i = 1; i < a.size(); ++i) EXPECT_GE(lens[a[i - 1]], lens[a[i]]);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    EXPECT_EQ(a, b);
  }
  EXPECT_NE(flatten(grouped.epoch_batches(0)), flatten(grouped.epoch_batches(1)));
}

// Global batch g (accumulation micro-batches on every rank) at a layout of dp ranks and
// micro-batches of `micro`, as the set of examples all ranks run in it.
std::vector<std::set<int64_t>> global_batches(int64_t n, int64_t global, int dp, int64_t micro,
                                              bool shuffle, int64_t* batches_per_rank) {
  const int64_t accumulation = global / (dp * micro);
  std::vector<std::set<int64_t>> out;
  *batches_per_rank = -1;
  for (int rank = 0; rank < dp; ++rank) {
    SamplerOptions options;
    options.batch_size = micro;
    options.accumulation = accumulation;
    options.shuffle = shuffle;
    options.group_by_length = shuffle;  // mega-batches of global batches: layout-free too
    options.mega_batch_factor = 3;
    options.dp_rank = rank;
    options.dp_size = dp;
    const Sampler sampler(lengths(n), options);
    const auto batches = sampler.epoch_batches(2);
    EXPECT_EQ(static_cast<int64_t>(batches.size()), sampler.batches_per_epoch());
    if (*batches_per_rank < 0) *batches_per_rank = static_cast<int64_t>(batches.size());
    EXPECT_EQ(static_cast<int64_t>(batches.size()), *batches_per_rank) << "ranks run alike";
    for (size_t i = 0; i < batches.size(); ++i) {
      const size_t g = i / static_cast<size_t>(accumulation);
      if (out.size() <= g) out.resize(g + 1);
      for (int64_t index : batches[i]) EXPECT_TRUE(out[g].insert(index).second) << index;
    }
  }
  return out;
}

TEST(Sampler, EveryExampleOnceInTheSameGlobalBatchesAtAnyLayout) {
  // A ragged epoch (1,003 = 125 x 8 + 3) and small ones, global batch 8, split over 1..8 ranks
  // and micro-batches of 1..8: every example once, global batch g the same examples everywhere.
  for (int64_t n : {1003, 103, 96, 5}) {
    for (bool shuffle : {false, true}) {
      int64_t reference_batches = 0;
      const auto reference = global_batches(n, 8, 1, 8, shuffle, &reference_batches);
      ASSERT_EQ(static_cast<int64_t>(reference.size()), (n + 7) / 8) << "ceil(n / batch) steps";
      int64_t total = 0;
      for (const auto& g : reference) total += static_cast<int64_t>(g.size());
      EXPECT_EQ(total, n);
      for (auto [dp, micro] : {std::pair{1, 1}, std::pair{1, 2}, std::pair{2, 4}, std::pair{2, 1},
                               std::pair{4, 2}, std::pair{4, 1}, std::pair{8, 1}}) {
        SCOPED_TRACE(fmt::format("n {} shuffle {} dp {} micro {}", n, shuffle, dp, micro));
        int64_t batches = 0;
        EXPECT_EQ(global_batches(n, 8, dp, micro, shuffle, &batches), reference);
      }
    }
  }
}

TEST(Sampler, TheLastShortRoundIsSplitAsEvenlyAsItGoes) {
  // 1,003 at dp 4, micro 2: 125 full global batches, then 3 examples: ranks 0-2 one each, rank 3
  // an empty batch (it still runs the batch, so collectives stay matched).
  for (int rank = 0; rank < 4; ++rank) {
    SamplerOptions options;
    options.batch_size = 2;
    options.dp_rank = rank;
    options.dp_size = 4;
    const auto batches = Sampler(lengths(1003), options).epoch_batches(0);
    ASSERT_EQ(batches.size(), 126u);
    EXPECT_EQ(batches.back().size(), rank < 3 ? 1u : 0u) << "rank " << rank;
  }
}

TEST(Sampler, ShardsTogetherFollowTheSingleProcessOrder) {
  // Global batch g of a dp run is the single-process batch g of size batch x dp, split by rank.
  SamplerOptions single;
  single.batch_size = 8;
  const auto reference = Sampler(lengths(64), single).epoch_batches(0);
  for (int rank = 0; rank < 2; ++rank) {
    SamplerOptions options;
    options.batch_size = 4;
    options.dp_size = 2;
    options.dp_rank = rank;
    const auto batches = Sampler(lengths(64), options).epoch_batches(0);
    ASSERT_EQ(batches.size(), reference.size());
    for (size_t b = 0; b < batches.size(); ++b)
      EXPECT_EQ(batches[b], std::vector<int64_t>(reference[b].begin() + rank * 4,
                                                 reference[b].begin() + rank * 4 + 4));
  }
}

TEST(Sampler, EvaluationSharesCoverEveryExampleOnce) {
  const int size = 4;
  std::vector<int64_t> all;
  int64_t batches_per_epoch = -1;
  for (int rank = 0; rank < size; ++rank) {
    SamplerOptions options;
    options.batch_size = 4;
    options.shuffle = false;
    options.dp_rank = rank;
    options.dp_size = size;
    const Sampler sampler(lengths(18), options);  // 16 in one global batch, 2 left for 4 ranks
    const auto batches = sampler.epoch_batches(0);
    if (batches_per_epoch < 0) batches_per_epoch = static_cast<int64_t>(batches.size());
    EXPECT_EQ(static_cast<int64_t>(batches.size()), batches_per_epoch);  // collectives match
    EXPECT_EQ(batches.back().size(), rank < 2 ? 1u : 0u);
    const auto share = flatten(batches);
    all.insert(all.end(), share.begin(), share.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), 18u);
  for (int64_t i = 0; i < 18; ++i) EXPECT_EQ(all[i], i);
}

TEST(Sampler, DropLastSkipsThePartialBatch) {
  SamplerOptions options;
  options.batch_size = 4;
  options.drop_last = true;
  const Sampler sampler(lengths(103), options);
  EXPECT_EQ(sampler.batches_per_epoch(), 25);
  for (const auto& batch : sampler.epoch_batches(0)) EXPECT_EQ(batch.size(), 4u);
}

TEST(Sampler, PositionRoundTripsThroughJsonAndRefusesAnotherSetup) {
  SamplerOptions options;
  options.batch_size = 4;
  options.dp_size = 2;
  options.seed = 7;
  const Sampler sampler(lengths(50), options);
  const nlohmann::json state = sampler.save({3, 5});
  const nlohmann::json reparsed = nlohmann::json::parse(state.dump());
  EXPECT_EQ(sampler.restore(reparsed), (SamplerPosition{3, 5}));

  SamplerOptions other = options;
  other.seed = 8;
  EXPECT_NE(user_error([&] { Sampler(lengths(50), other).restore(reparsed); }).find("seed"),
            std::string::npos);
  EXPECT_NE(
      user_error([&] { Sampler(lengths(51), options).restore(reparsed); }).find("dataset_size"),
      std::string::npos);
  nlohmann::json broken = reparsed;
  broken.erase("batch");
  EXPECT_NE(user_error([&] { sampler.restore(broken); }).find("missing \"batch\""),
            std::string::npos);
}

TEST(Sampler, RejectsBadOptions) {
  SamplerOptions options;
  options.dp_rank = 2;
  options.dp_size = 2;
  EXPECT_NE(user_error([&] { Sampler(lengths(10), options); }).find("rank 2 of 2"),
            std::string::npos);
  EXPECT_NE(user_error([] { Sampler({}, {}); }).find("empty dataset"), std::string::npos);
}

}  // namespace
}  // namespace ls::data
