// safetensors reading and writing, sharded checkpoints, and every way a checkpoint can be broken:
// each must be one UserError naming the file and the tensor or field, never a crash. Ends with a
// bounded, deterministic fuzz run of the header parser and of whole files.
#include "core/io/checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <random>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/model/lora.h"
#include "tests/support/test_util.h"

namespace ls {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
// A file made of an 8-byte length, `header` and `data_bytes` zero bytes.
std::string raw_file(const std::string& header, size_t data_bytes) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return bytes + header + std::string(data_bytes, '\0');
}

// The UserError message from opening `path`; fails the test if it opens.
std::string open_error(const fs::path& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const UserError& e) {
    return e.what();
  }
  ADD_FAILURE() << path << " opened but is broken";
  return "";
}

void expect_mentions(const std::string& message, const std::vector<std::string>& parts) {
  for (const auto& part : parts)
    EXPECT_NE(message.find(part), std::string::npos) << message << " lacks " << part;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
}

TEST(Safetensors, EveryDtypeRoundTripsBitExactWithMetadata) {
  test::ScratchDir dir("ls_st_roundtrip");
  const std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"f32", torch::randn({3, 4})},
      {"f16", torch::randn({5}).to(at::kHalf)},
      {"bf16", torch::randn({2, 3, 2}).to(at::kBFloat16)},
      {"i64", torch::arange(7, at::kLong) - 3},
      {"i32", torch::arange(6, at::kInt).view({2, 3})},
      {"f64", torch::randn({2}, at::kDouble)},
      {"u8", torch::arange(9, at::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(1.5f)},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::randn({4, 6}).t()},  // non-contiguous input is stored contiguous
  };
  write_safetensors(dir / "a.safetensors", tensors, {{"format", "pt"}});
  const auto file = SafetensorsFile::open(dir / "a.safetensors");
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->names().size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const auto view = file->view(name);
    EXPECT_EQ(view.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_TRUE(view.equal(tensor)) << name;
  }
  // The header is padded so that the data starts 8-byte aligned: views need no copy.
  const auto bytes = read_bytes(dir / "a.safetensors");
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]) % 8, 0u);
}

TEST(Safetensors, ViewsAreZeroCopyAndSlicesReadOnlyTheirShard) {
  test::ScratchDir dir("ls_st_views");
  const auto weight = torch::randn({8, 6});
  write_safetensors(dir / "w.safetensors", {{"w", weight}});
  const auto file = SafetensorsFile::open(dir / "w.safetensors");
  EXPECT_EQ(file->view("w").data_ptr(), file->view("w").data_ptr()) << "no copy";
  EXPECT_TRUE(file->slice("w", 0, 2, 4).equal(weight.narrow(0, 2, 4)));
  EXPECT_TRUE(file->slice("w", 1, 3, 3).equal(weight.narrow(1, 3, 3)));
  EXPECT_THROW(file->slice("w", 0, 6, 4), UserError);
  EXPECT_THROW(file->slice("w", 2, 0, 1), UserError);
  // A view outlives the file object; writing into it never touches the file.
  auto view = file->view("w");
  view.zero_();
  EXPECT_TRUE(SafetensorsFile::open(dir / "w.safetensors")->view("w").equal(weight));

  const auto checkpoint = Checkpoint::open_file(dir / "w.safetensors");
  auto shard = torch::empty({2, 6}, at::kBFloat16);  // tensor-parallel rank 1 of 4, cast on read
  checkpoint.read_slice_into("w", 0, 2, shard);
  EXPECT_TRUE(shard.equal(weight.narrow(0, 2, 2).to(at::kBFloat16)));
  auto wrong = torch::empty({8, 5});
  try {
    checkpoint.read_into("w", wrong);
    ADD_FAILURE();
  } catch (const UserError& e) {
    expect_mentions(e.what(), {"w.safetensors", "'w'", "[8, 6]", "[8, 5]"});
  }
}

// Frozen weights load as views of the mapped file when nothing has to change (dtype, device), as
// HF's from_pretrained does: no copy, memory shared with the page cache. Anything else is a copy.
TEST(Safetensors, FrozenWeightSharesTheMappingUnlessItNeedsAConversion) {
  test::ScratchDir dir("ls_st_share");
  const auto bf16 = torch::randn({64, 32}).to(at::kBFloat16);
  const auto f32 = torch::randn({32});
  write_safetensors(dir / "w.safetensors", {{"bf16", bf16}, {"f32", f32}});

  at::Tensor shared = torch::empty({64, 32}, at::kBFloat16);
  at::Tensor converted = torch::empty({64, 32}, at::kFloat);
  at::Tensor trainable = torch::empty({32}, at::kFloat).requires_grad_();
  at::Tensor norm = torch::empty({32}, at::kFloat);
  {
    const auto checkpoint = Checkpoint::open_file(dir / "w.safetensors");
    const void* before = shared.data_ptr();
    EXPECT_TRUE(checkpoint.share_into("bf16", shared));
    EXPECT_TRUE(checkpoint.maps(shared)) << "data_ptr inside the mapping";
    EXPECT_NE(shared.data_ptr(), before);
    EXPECT_EQ(shared.data_ptr(), checkpoint.view("bf16").data_ptr());
    EXPECT_TRUE(checkpoint.share_into("f32", norm));
    EXPECT_TRUE(checkpoint.maps(norm));

    EXPECT_FALSE(checkpoint.share_into("bf16", converted)) << "bf16 file -> f32 model is a copy";
    EXPECT_FALSE(checkpoint.maps(converted));
    EXPECT_FALSE(checkpoint.share_into("f32", trainable))
        << "a trainable tensor gets its own memory";
    EXPECT_FALSE(checkpoint.maps(trainable));
    EXPECT_TRUE(trainable.requires_grad());

    auto wrong = torch::empty({64, 31}, at::kBFloat16);
    EXPECT_THROW(checkpoint.share_into("bf16", wrong), UserError);
  }
  // The views keep the mapping alive after the checkpoint is gone.
  EXPECT_TRUE(shared.equal(bf16));
  EXPECT_TRUE(norm.equal(f32));
  EXPECT_TRUE(converted.equal(bf16.to(at::kFloat)));
  EXPECT_TRUE(trainable.detach().equal(f32));
}

// Merging an adapter into a mapped weight puts the merged weight in new memory: the mapping (which
// every other reader of the file in this process shares) keeps the checkpoint's values.
TEST(Safetensors, MergingLoraIntoAMappedWeightLeavesTheMappingUnwritten) {
  test::ScratchDir dir("ls_st_merge");
  const auto weight = torch::randn({12, 8});
  write_safetensors(dir / "w.safetensors", {{"p.weight", weight}});
  const auto checkpoint = Checkpoint::open_file(dir / "w.safetensors");
  LoraLinear projection(ProjectionSpec{
      .layer = 0, .name = "p", .in_features = 8, .out_features = 12, .bias = false, .options = {}});
  projection.load_base(checkpoint, "p");
  ASSERT_TRUE(checkpoint.maps(projection.weight()));
  LoraOptions lora;
  lora.r = 2;
  projection.add_lora(lora);
  const auto params = projection.named_parameters();
  {
    at::NoGradGuard no_grad;
    params["lora_B.weight"].normal_();
  }
  const auto delta =
      at::matmul(params["lora_B.weight"], params["lora_A.weight"]).detach() * lora.scaling();

  projection.merge_lora();
  EXPECT_FALSE(checkpoint.maps(projection.weight()));
  EXPECT_TRUE(at::allclose(projection.weight(), weight + delta, 1e-5, 1e-6));
  EXPECT_TRUE(params["weight"].is_same(projection.weight())) << "still the registered parameter";
  EXPECT_TRUE(checkpoint.view("p.weight").equal(weight)) << "the mapped bytes are unchanged";
  projection.unmerge_lora();
  EXPECT_TRUE(at::allclose(projection.weight(), weight, 1e-5, 1e-6));
}

// The chunked copy that takes weights to a GPU, run on the CPU with chunks that do not divide the
// tensor: every byte lands once, in place.
TEST(Safetensors, StagedCopyCoversEveryChunkAndTheTail) {
  const auto source = torch::randn({7, 13}).to(at::kBFloat16);  // 182 bytes
  for (int64_t chunk : {1, 5, 64, 182, 1000}) {
    auto dst = torch::zeros({7, 13}, at::kBFloat16);
    copy_through_staging(source, dst, chunk);
    EXPECT_TRUE(dst.equal(source)) << "chunk " << chunk;
  }
}

TEST(Safetensors, WriterReplacesAtomicallyAndLeavesNoTemporaryFile) {
  test::ScratchDir dir("ls_st_atomic");
  write_safetensors(dir / "x.safetensors", {{"a", torch::ones({2})}});
  write_safetensors(dir / "x.safetensors", {{"b", torch::zeros({3})}});
  const auto file = SafetensorsFile::open(dir / "x.safetensors");
  EXPECT_FALSE(file->contains("a"));
  EXPECT_TRUE(file->contains("b"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
  EXPECT_THROW(write_safetensors(dir / "missing_dir" / "x.safetensors", {{"a", torch::ones({1})}}),
               UserError);
}

TEST(Checkpoint, ShardedDirectoryReadsThroughTheIndex) {
  test::ScratchDir dir("ls_ckpt_sharded");
  write_safetensors(dir / "model-00001-of-00002.safetensors", {{"a", torch::ones({2})}});
  write_safetensors(dir / "model-00002-of-00002.safetensors", {{"b", torch::full({3}, 2.0)}});
  write_bytes(
      dir / "model.safetensors.index.json",
      R"({"metadata": {"total_size": 20}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                  "b": "model-00002-of-00002.safetensors"}})");
  const auto checkpoint = Checkpoint::open_directory(dir.path());
  EXPECT_EQ(checkpoint.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(checkpoint.view("b").sum().item<float>(), 6.0f);
  EXPECT_NE(checkpoint.file_of("b").path().string().find("00002"), std::string::npos);
  try {
    checkpoint.view("c");
    ADD_FAILURE();
  } catch (const UserError& e) {
    expect_mentions(e.what(), {dir.path().string(), "'c'"});
  }

  write_bytes(
      dir / "model.safetensors.index.json",
      R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00003-of-00003.safetensors"}})");
  try {
    Checkpoint::open_directory(dir.path());
    ADD_FAILURE();
  } catch (const UserError& e) {
    expect_mentions(e.what(), {"model.safetensors.index.json", "weight_map.b",
                               "model-00003-of-00003.safetensors"});
  }
  write_bytes(dir / "model.safetensors.index.json", R"({"weight_map": {"a": "../../etc/passwd"}})");
  EXPECT_THROW(Checkpoint::open_directory(dir.path()), UserError);
  fs::remove(dir / "model.safetensors.index.json");
  write_bytes(dir / "pytorch_model.bin", "pickle");
  try {
    Checkpoint::open_directory(dir.path());
    ADD_FAILURE();
  } catch (const UserError& e) {
    expect_mentions(e.what(), {"pytorch_model.bin", "safetensors"});
  }
}

TEST(BrokenSafetensors, EachDefectIsOneLineNamingFileAndTensor) {
  test::ScratchDir dir("ls_st_broken");
  write_safetensors(dir / "good.safetensors",
                    {{"emb", torch::randn({4, 4})}, {"norm", torch::randn({4})}});
  const auto good = read_bytes(dir / "good.safetensors");
  const auto path = dir / "bad.safetensors";

  write_bytes(path, good.substr(0, good.size() - 10));
  expect_mentions(open_error(path), {"bad.safetensors", "'norm'", "truncated"});

  write_bytes(path, good.substr(0, 5));
  expect_mentions(open_error(path), {"bad.safetensors", "too short"});

  auto long_header = good;
  long_header[5] = '\x7f';  // header length far past the end
  write_bytes(path, long_header);
  expect_mentions(open_error(path), {"bad.safetensors", "header length"});

  auto cases = std::vector<std::pair<std::string, std::vector<std::string>>>{
      {R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})",
       {"'w'", "16"}},  // lying
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
       {"overlaps"}},
      {R"({"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}})", {"'w'", "F8_E4M3"}},
      {R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", {"'w'", "shape"}},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", {"'w'", "data_offsets"}},
      {R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
       {"'w'", "run past the end"}},
      {R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 16]}})",
       {"'w'", "too large"}},
      {R"({"w": {"dtype": "F32", "shape": [2]}})", {"'w'", "data_offsets"}},
      {R"({"w": [1, 2]})", {"'w'"}},
      {R"({"__metadata__": {"format": 1}})", {"__metadata__"}},
      {R"(["w"])", {"JSON object"}},
      {R"({"w": {"dtype": "F32", )", {"not valid JSON"}},
  };
  for (const auto& [header, parts] : cases) {
    write_bytes(path, raw_file(header, 12));
    auto message = open_error(path);
    expect_mentions(message, {"bad.safetensors"});
    expect_mentions(message, parts);
  }
}

// Random mutations of a valid file (bytes flipped, inserted, deleted; lengths and digits changed)
// must each open or fail with a UserError: no crash, no other exception. Deterministic seed,
// bounded to a few seconds.
TEST(BrokenSafetensors, FuzzedHeadersAndFilesNeverCrash) {
  test::ScratchDir dir("ls_st_fuzz");
  write_safetensors(dir / "seed.safetensors",
                    {{"model.embed_tokens.weight", torch::randn({4, 3})},
                     {"model.norm.weight", torch::randn({3}).to(at::kBFloat16)},
                     {"ids", torch::arange(5, at::kLong)}},
                    {{"format", "pt"}});
  const auto seed_file = read_bytes(dir / "seed.safetensors");
  std::mt19937_64 rng(20231003);
  const std::string alphabet = "{}[]\":,-0123456789eE.FIBU_ \\x";
  auto mutate = [&](std::string bytes, size_t lo, size_t hi) {
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < edits && hi > lo; ++i) {
      const size_t at = lo + rng() % (hi - lo);
      switch (rng() % 5) {
        case 0:
          bytes[at] = static_cast<char>(rng());
          break;
        case 1:
          bytes[at] = alphabet[rng() % alphabet.size()];
          break;
        case 2:
          bytes.insert(at, 1, alphabet[rng() % alphabet.size()]);
          ++hi;
          break;
        case 3:
          bytes.erase(at, 1 + rng() % 4);
          hi = std::min(hi, bytes.size());
          break;
        case 4:
          bytes.resize(std::max<size_t>(lo, bytes.size() - rng() % 64));
          hi = std::min(hi, bytes.size());
          break;
      }
    }
    return bytes;
  };

  const auto header_length = static_cast<size_t>(static_cast<unsigned char>(seed_file[0])) |
                             static_cast<size_t>(static_cast<unsigned char>(seed_file[1])) << 8;
  const std::string header = seed_file.substr(8, header_length);
  const auto data_size = seed_file.size() - 8 - header_length;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  int parsed = 0, rejected = 0, files = 0;
  for (int i = 0; i < 200000 && std::chrono::steady_clock::now() < deadline; ++i) {
    const auto text = mutate(header, 0, header.size());
    try {
      parse_safetensors_header(text, data_size, "fuzz");
      ++parsed;
    } catch (const UserError&) {
      ++rejected;
    } catch (const std::exception& e) {
      FAIL() << "header mutation " << i << " threw a non-user error: " << e.what() << "\n" << text;
    }
    if (i % 20 == 0) {  // whole files, length prefix included, through open() and view()
      const auto path = dir / "fuzz.safetensors";
      write_bytes(path,
                  mutate(seed_file, 0, std::min<size_t>(seed_file.size(), 8 + header_length)));
      try {
        const auto file = SafetensorsFile::open(path);
        for (const auto& name : file->names()) file->view(name).sum();
      } catch (const UserError&) {
      } catch (const std::exception& e) {
        FAIL() << "file mutation " << i << " threw a non-user error: " << e.what();
      }
      ++files;
    }
  }
  std::printf("fuzz: %d headers accepted, %d rejected, %d whole files\n", parsed, rejected, files);
  EXPECT_GT(rejected, 100);
  EXPECT_GT(files, 10);
}

}  // namespace
}  // namespace ls
