// The run directory's layout, named once: what ls_train writes into output.dir and what
// ls_predict, ls_export, ls_serve and --resume read back (docs/DESIGN.md lists it).
//   config.yaml                   the resolved config (every key; Config::to_yaml)
//   labels.json                   label names in id order
//   metrics.jsonl                 one record per log step, evaluation and test pass
//   tensorboard/  curves.png      scalars; the loss and validation curves
//   adapter/  adapter_last/       PEFT adapters: best on validation, and the last step's
//   state/                        the resumable state (core/train/run_state.h)
//   predictions_<split>.jsonl     per-example predictions of validation (best) and test
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ls {

class RunDirectory {
 public:
  explicit RunDirectory(std::filesystem::path root) : root_(std::move(root)) {}

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path config() const { return root_ / "config.yaml"; }
  std::filesystem::path labels() const { return root_ / "labels.json"; }
  std::filesystem::path metrics() const { return root_ / "metrics.jsonl"; }
  std::filesystem::path tensorboard() const { return root_ / "tensorboard"; }
  std::filesystem::path curves() const { return root_ / "curves.png"; }
  std::filesystem::path best_adapter() const { return root_ / kBestAdapter; }
  std::filesystem::path last_adapter() const { return root_ / kLastAdapter; }
  std::filesystem::path state() const { return root_ / "state"; }
  std::filesystem::path predictions(const std::string& split) const {
    return root_ / ("predictions_" + split + ".jsonl");
  }

  // Whether `path` holds a run (its config.yaml).
  static bool is_run(const std::filesystem::path& path);
  // What a new run replaces when output.overwrite lets it reuse a directory: every file and
  // folder a run writes, config.yaml and labels.json aside (those are rewritten).
  std::vector<std::filesystem::path> outputs() const;
  // The adapter directory a choice names: best (adapter/, or adapter_last/ when the run kept no
  // best), last (adapter_last/), or any other text as a directory of its own.
  std::filesystem::path adapter(const std::string& choice) const;

  static constexpr const char* kBestAdapter = "adapter";
  static constexpr const char* kLastAdapter = "adapter_last";

 private:
  std::filesystem::path root_;
};

}  // namespace ls
