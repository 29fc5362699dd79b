// Sampler: seeded order identical across runs, length grouping, data-parallel shards that are
// disjoint and equal, evaluation shards that cover everything once, and resume positions.
#include "data/sampler.h"

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

TEST(Sampler, DataParallelSharesAreDisjointAndEqual) {
  for (int64_t n : {96, 103, 5}) {
    for (int size : {2, 3, 4}) {
      std::set<int64_t> seen;
      int64_t per_rank = -1;
      std::vector<std::vector<std::vector<int64_t>>> ranks;
      for (int rank = 0; rank < size; ++rank) {
        SamplerOptions options;
        options.batch_size = 4;
        options.dp_rank = rank;
        options.dp_size = size;
        const Sampler sampler(lengths(n), options);
        const auto batches = sampler.epoch_batches(1);
        EXPECT_EQ(static_cast<int64_t>(batches.size()), sampler.batches_per_epoch());
        const std::vector<int64_t> share = flatten(batches);
        if (per_rank < 0) per_rank = static_cast<int64_t>(share.size());
        EXPECT_EQ(static_cast<int64_t>(share.size()), per_rank) << "n " << n << " rank " << rank;
        for (int64_t index : share) EXPECT_TRUE(seen.insert(index).second) << index;
        ranks.push_back(batches);
      }
      // Batch b has the same size on every rank; only fewer than `size` examples go unused.
      for (size_t b = 0; b < ranks[0].size(); ++b)
        for (int rank = 1; rank < size; ++rank)
          EXPECT_EQ(ranks[rank][b].size(), ranks[0][b].size());
      EXPECT_EQ(static_cast<int64_t>(seen.size()), per_rank * size);
      EXPECT_LT(n - static_cast<int64_t>(seen.size()), size) << "n " << n << " size " << size;
    }
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
    options.equal_shares = false;
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
