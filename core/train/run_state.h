// RunState: a run's resumable state, state/ in the run directory, for exact resume:
//   trainer.json                  step, sampler position, best so far, tp and world size, and
//                                 the run's identity (what its batches depend on)
//   weights.safetensors           the trained tensors (LoRA, head)
//   optimizer.safetensors         AdamW moments
//   rng.safetensors               every rank's generator state (CPU, and CUDA on a GPU), row r
//                                 rank r's: gathered to rank 0, which alone writes it
// With tensor parallelism each tp rank keeps its own shards and moments
// (weights.tp<R>-of-<N>.safetensors and the like), so resuming takes the same parallel.tp; the
// adapters are unsharded and load at any tp. Written to state.tmp, then swapped in.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/model/ls_llama.h"
#include "core/train/adamw.h"
#include "data/dataset.h"
#include "data/sampler.h"
#include "parallel/topology.h"

namespace ls {

// Where training stands: what state/ saves besides tensors.
struct TrainingProgress {
  int64_t step = 0;                        // optimizer steps taken
  data::SamplerPosition position;          // the next batch
  std::optional<double> best;              // best validation value of the selection metric so far
  std::optional<std::string> best_metric;  // that metric's name (absent in older states)
  int64_t total_steps = 0;                 // the plan's optimizer steps (0: not saved)
  int64_t best_step = 0;
  std::map<std::string, double> best_metrics;
  int64_t evals_without_improvement = 0;
};

// What a run computes depends on, as (config key, value) pairs: every kIdentity config key
// (config.h), the resolved micro-batch and dp, the base model's fingerprint (model.path) and the
// training split's (data.train). A resume with other values would compute another run, so it is
// refused.
using RunIdentity = std::vector<std::pair<std::string, std::string>>;

// A hash over every example's ids and labels (FNV-1a, hex): another file, tokenizer or
// truncation of the training split gives another fingerprint.
std::string dataset_fingerprint(const data::Dataset& dataset);

class RunState {
 public:
  RunState(std::filesystem::path run_dir, const parallel::Topology& topology, c10::Device device);

  // Rank 0, before a resumed run rewrites config.yaml: state/trainer.json is there and was saved
  // at this tp and world size. UserError saying how to resume otherwise.
  void check_resumable() const;
  // Every rank, before anything is written on resume: the saved identity equals `identity`.
  // UserError naming the first key that differs (states saved without one are not checked).
  void check_identity(const RunIdentity& identity) const;
  // Every rank calls it: rank 0 gathers the RNG states and writes them, dp rank 0's tp group the
  // weights and moments, rank 0 trainer.json, then swaps state.tmp in.
  void save(const TrainingProgress& progress, const RunIdentity& identity, LsLlama& model,
            const AdamW& optimizer) const;
  // Every rank calls it: loads weights and moments, and this rank's RNG state, which rank 0 reads
  // and broadcasts; returns the progress. Rank 0 drops the
  // metrics.jsonl records after the saved step (the resumed run writes them again).
  TrainingProgress restore(LsLlama& model, AdamW& optimizer) const;

 private:
  std::string shard_file(const std::string& what) const;
  nlohmann::json read_trainer_json() const;
  void drop_replayed_records(int64_t step) const;

  std::filesystem::path dir_;
  const parallel::Topology& topology_;
  c10::Device device_;
};

}  // namespace ls
