// Trainer: ls_train's main job. Config in; a run directory out:
//   config.yaml (resolved), labels.json, metrics.jsonl, tensorboard/, curves.png,
//   adapter/ (best on validation) and adapter_last/ (PEFT-loadable, head included),
//   state/ (weights, optimizer moments, RNG, sampler position: exact resume),
//   predictions_validation.jsonl, predictions_test.jsonl.
// Every rank runs it; rank 0 prints and writes the run's files, except that each rank writes its
// own RNG state into state/ (state/rng.rankR-of-N.safetensors), so output.dir must be shared.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "core/train/config.h"

namespace ls::parallel {
class MpiRuntime;
}

namespace ls {

struct TrainOutcome {
  std::map<std::string, double> best_validation;  // metrics of the selected checkpoint
  std::map<std::string, double> test;             // test metrics of the selected checkpoint
  int64_t steps = 0;
  bool interrupted = false;  // stopped by SIGINT/SIGTERM, state saved
};

// Runs training as configured. `resume`: continue the run in config.output.dir from its state/.
TrainOutcome train(const Config& config, bool resume, parallel::MpiRuntime& mpi);

// Installs SIGINT/SIGTERM handlers that ask the running train() to save its state and return.
void install_stop_signal_handlers();

}  // namespace ls
