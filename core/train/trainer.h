// Trainer: ls_train's main job. Config in; a run directory out:
//   config.yaml (resolved), labels.json, metrics.jsonl, tensorboard/, curves.png,
//   adapter/ (best on validation) and adapter_last/ (PEFT-loadable, head included),
//   state/ (weights, optimizer moments, RNG, sampler position: exact resume),
//   predictions_validation.jsonl, predictions_test.jsonl.
// Every rank runs it; rank 0 alone prints and writes the run's files (the other ranks' RNG states
// are gathered to it for state/rng.safetensors), and every rank reads config, data, state/ and
// the selected adapter from output.dir, so it must be shared. What a rank does after a write
// (which adapter to test) is decided from the config, alike on every rank, never by looking.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "core/run/config.h"

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
