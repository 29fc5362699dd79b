// Sampler: which examples go into each batch of each epoch, on this data-parallel rank.
//
// An epoch is a permutation of the dataset (a seeded Fisher-Yates shuffle, identical across runs,
// machines and standard libraries), optionally grouped by length (the permutation is cut into
// mega-batches of `mega_batch_factor` global batches, each sorted longest first, so a batch holds
// similar lengths while the epoch stays random). The permutation is then cut into global batches
// of G = batch_size x dp_size x accumulation examples: global batch g is order[g G, (g + 1) G),
// the last one partial. Neither depends on how G is split, so the examples of every global batch
// (one optimizer step of training) are the same at any dp and micro-batch size.
//
// A global batch is run as `accumulation` rounds of batch_size x dp_size examples; in round m
// rank r takes the r-th slice of batch_size, so every rank computes the same permutation and the
// shares are disjoint without communication. The last, partial global batch has as many rounds
// as its examples need; its last round is split as evenly as it goes (shares differ by at most
// one, and a rank may get none: an empty batch, so that every rank runs the same number of
// batches and collective calls stay matched). Every example of an epoch is used exactly once;
// drop_last skips the partial global batch altogether.
//
// The sampler is a pure function of (options, epoch): a SamplerPosition (epoch, next batch) is
// the whole state needed for exact resume.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace ls::data {

struct SamplerOptions {
  int64_t batch_size = 8;    // examples per rank per batch (the micro-batch)
  int64_t accumulation = 1;  // batches per rank per global batch
  bool shuffle = true;
  uint64_t seed = 42;
  bool group_by_length = false;
  int64_t mega_batch_factor = 50;  // global batches per length-sorted mega-batch
  bool drop_last = false;
  int dp_rank = 0;
  int dp_size = 1;
};

// Where an epoch stands: `batch` is the next batch of `epoch` to run.
struct SamplerPosition {
  int64_t epoch = 0;
  int64_t batch = 0;
  bool operator==(const SamplerPosition&) const = default;
};

// Batches per epoch on each rank of a sampler over `dataset_size` examples (the same on every
// rank): what Sampler::batches_per_epoch returns, without the dataset.
int64_t batches_per_epoch(int64_t dataset_size, const SamplerOptions& options);

class Sampler {
 public:
  // `lengths`: ids per example (Dataset::lengths()); only read with group_by_length.
  // Throws UserError on an empty dataset or a bad option.
  Sampler(std::vector<int64_t> lengths, SamplerOptions options);

  // This rank's batches of `epoch`, in order, as example indices.
  std::vector<std::vector<int64_t>> epoch_batches(int64_t epoch) const;
  // Batches per epoch on this rank (the same on every rank).
  int64_t batches_per_epoch() const;
  int64_t dataset_size() const { return static_cast<int64_t>(lengths_.size()); }
  const SamplerOptions& options() const { return options_; }

  // A position as JSON for the run's resume state, with what it depends on (dataset size, batch
  // size, accumulation, dp size, seed, grouping), so restore() can refuse a position from a
  // different setup.
  nlohmann::json save(const SamplerPosition& position) const;
  // Throws UserError when `state` is malformed or was saved by a sampler set up differently.
  SamplerPosition restore(const nlohmann::json& state) const;

 private:
  // The global order of an epoch (the same on every rank).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  std::vector<int64_t> lengths_;
  SamplerOptions options_;
};

}  // namespace ls::data
