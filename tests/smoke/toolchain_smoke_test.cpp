// Toolchain smoke in one binary that links libtorch AND uses sentencepiece: the two bring
// conflicting protobuf copies, and this binary must start, train a model and encode with it
// (see data/tokenizer/tokenizer.h). Also: yaml-cpp parses, and the tokenizer's errors name files.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "data/tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  auto dir = fs::temp_directory_path() / ("ls_smoke_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// A LLaMA-style BPE model with byte fallback, trained here on a small corpus.
fs::path train_tiny_model(const fs::path& dir) {
  std::ofstream corpus(dir / "corpus.txt");
  const char* lines[] = {"the quick brown fox jumps over the lazy dog",
                         "a label supervised llama learns to classify sentences",
                         "bidirectional attention helps named entity recognition",
                         "Paris is the capital of France and Berlin of Germany"};
  for (int repeat = 0; repeat < 50; ++repeat)
    for (const char* line : lines) corpus << line << "\n";
  corpus.close();
  ls::data::train_sentencepiece(
      "--input=" + (dir / "corpus.txt").string() + " --model_prefix=" + (dir / "tiny").string() +
      " --model_type=bpe --vocab_size=320 --hard_vocab_limit=false --byte_fallback=true"
      " --bos_id=1 --eos_id=2 --unk_id=0 --pad_id=-1 --minloglevel=2");
  return dir / "tiny.model";
}

}  // namespace

TEST(ToolchainSmoke, TorchAndSentencePieceLiveInOneProcess) {
  auto t = torch::ones({2, 2}).sum();  // libtorch is really used in this process
  EXPECT_EQ(t.item<float>(), 4.0f);

  auto dir = temp_dir();
  auto model = train_tiny_model(dir);
  ls::data::Tokenizer tokenizer(model.string());
  EXPECT_GT(tokenizer.vocab_size(), 256 + 3);  // 256 byte pieces + specials + merges
  auto ids = tokenizer.encode("the lazy fox");
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids.front(), tokenizer.bos_id());
  EXPECT_EQ(tokenizer.decode(ids), "the lazy fox");
  // Characters never seen in training fall back to bytes instead of <unk>.
  auto emoji = tokenizer.encode_plain("\xF0\x9F\x98\x80");
  int byte_pieces = 0;
  for (int id : emoji) {
    EXPECT_NE(id, tokenizer.unk_id());
    byte_pieces += tokenizer.id_to_piece(id).starts_with("<0x");
  }
  EXPECT_EQ(byte_pieces, 4);  // U+1F600 is four UTF-8 bytes
  fs::remove_all(dir);
}

TEST(ToolchainSmoke, TokenizerErrorNamesTheFile) {
  auto dir = temp_dir();
  std::ofstream(dir / "bogus.model") << "not a protobuf";
  try {
    ls::data::Tokenizer tokenizer((dir / "bogus.model").string());
    FAIL() << "loading garbage should fail";
  } catch (const ls::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("bogus.model"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(ToolchainSmoke, YamlParses) {
  auto doc =
      YAML::Load("model: {path: /m, dtype: bf16}\nlora: {r: 12, targets: [q_proj, v_proj]}\n");
  EXPECT_EQ(doc["model"]["dtype"].as<std::string>(), "bf16");
  EXPECT_EQ(doc["lora"]["r"].as<int>(), 12);
  EXPECT_EQ(doc["lora"]["targets"].size(), 2u);
  EXPECT_EQ(doc["lora"]["targets"][1].as<std::string>(), "v_proj");
  EXPECT_FALSE(doc["train"]);
}
