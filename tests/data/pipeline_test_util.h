// Helpers shared by the data pipeline tests: a scratch directory per test and a LLaMA-style
// sentencepiece model (BPE, byte fallback, digits split, whitespace kept) trained at test time.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/base/error.h"
#include "data/tokenizer/tokenizer.h"

namespace ls::data::testing {

namespace fs = std::filesystem;

class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("ls_pipeline_" + std::to_string(::getpid()) + "_" +
             (info ? std::string(info->test_suite_name()) + "_" + info->name() : "shared"));
    fs::create_directories(path_);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string write(const std::string& name, const std::string& contents) const {
    const fs::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << contents;
    return file.string();
  }
  fs::path path() const { return path_; }

 private:
  fs::path path_;
};

// A small model with LLaMA's tokenizer settings, trained in a scratch directory that goes away
// with the process.
class LlamaStyleModel {
 public:
  LlamaStyleModel() {
    fs::create_directories(dir_);
    {
      std::ofstream corpus(dir_ / "corpus.txt");
      const char* lines[] = {
          "EU rejects German call to boycott British lamb .",
          "Peter Blackburn BRUSSELS 1996-08-22",
          "The European Commission said on Thursday it disagreed with German advice .",
          "a gripping , well-acted thriller that never lets up",
          "the movie is a disaster from start to finish",
          "Label supervised LLaMA finetuning classifies sentences and tags named entities",
          "Paris is the capital of France and Berlin is the capital of Germany ."};
      for (int repeat = 0; repeat < 40; ++repeat)
        for (const char* line : lines) corpus << line << "\n";
    }
    train_sentencepiece("--input=" + (dir_ / "corpus.txt").string() +
                        " --model_prefix=" + (dir_ / "llama").string() +
                        " --model_type=bpe --vocab_size=400 --hard_vocab_limit=false"
                        " --byte_fallback=true --split_digits=true --add_dummy_prefix=true"
                        " --remove_extra_whitespaces=false --normalization_rule_name=identity"
                        " --character_coverage=1.0 --bos_id=1 --eos_id=2 --unk_id=0 --pad_id=-1"
                        " --minloglevel=2");
  }
  ~LlamaStyleModel() { fs::remove_all(dir_); }
  std::string path() const { return (dir_ / "llama.model").string(); }

 private:
  fs::path dir_ = fs::temp_directory_path() / ("ls_pipeline_spm_" + std::to_string(::getpid()));
};

// Trained once per process.
inline std::string llama_style_model() {
  static const LlamaStyleModel model;
  return model.path();
}

// Runs `body` and returns the UserError message it throws (fails the test if it throws none).
template <typename Body>
std::string user_error(Body&& body) {
  try {
    body();
  } catch (const UserError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a UserError";
  return {};
}

}  // namespace ls::data::testing
