// Keyed dropout masks: keep rate 1 - p, a row's mask a function of its example and token position
// only (not of the batch's other rows, its padding side or length), a column shard's mask the
// slice of the full one, seed/step/site/example each changing it, torch's scale, the same on CUDA
// as on the CPU, and the model's forward independent of how a batch is split into micro-batches.
#include "core/model/keyed_dropout.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/io/checkpoint.h"
#include "core/model/ls_llama.h"
#include "tests/support/test_util.h"

namespace ls {
namespace {

// Right-padded (or left-padded) attention mask [B, T] for these lengths.
at::Tensor padding_mask(const std::vector<int64_t>& lengths, int64_t length, bool left = false) {
  at::Tensor mask = at::zeros({static_cast<int64_t>(lengths.size()), length}, at::kLong);
  for (size_t b = 0; b < lengths.size(); ++b)
    mask[static_cast<int64_t>(b)].narrow(0, left ? length - lengths[b] : 0, lengths[b]).fill_(1);
  return mask;
}

TEST(KeyedDropout, KeepsOneMinusPOfTheElementsWithoutPattern) {
  std::vector<int64_t> examples(16);
  for (int64_t i = 0; i < 16; ++i) examples[i] = 1000 + 37 * i;
  const auto keys =
      dropout_row_keys(42, 3, examples, padding_mask(std::vector<int64_t>(16, 32), 32));
  for (const double p : {0.1, 0.5}) {
    const auto keep = keyed_keep_mask(keys, dropout_site_id(0, "q_proj"), 256, 0, p);
    const double n = static_cast<double>(keep.numel());
    const double sigma = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(keep.to(at::kDouble).mean().item<double>(), 1 - p, 5 * sigma) << "p " << p;
    // Neighbours (next column, next position, next example) agree as often as independent
    // draws do: p^2 + (1 - p)^2.
    const double agree = p * p + (1 - p) * (1 - p);
    for (int64_t dim : {0, 1, 2}) {
      const auto a = keep.narrow(dim, 0, keep.size(dim) - 1);
      const auto b = keep.narrow(dim, 1, keep.size(dim) - 1);
      EXPECT_NEAR(a.eq(b).to(at::kDouble).mean().item<double>(), agree, 0.01)
          << "p " << p << " dim " << dim;
    }
  }
}

TEST(KeyedDropout, ARowsMaskDependsOnlyOnItsExampleAndPositions) {
  const uint64_t site = dropout_site_id(1, "v_proj");
  // Example 9 with 5 tokens: in a right-padded batch of 3 rows, alone, and left-padded.
  const auto batch = keyed_keep_mask(dropout_row_keys(7, 11, {4, 9, 2}, padding_mask({3, 5, 8}, 8)),
                                     site, 24, 0, 0.3);
  const auto alone =
      keyed_keep_mask(dropout_row_keys(7, 11, {9}, padding_mask({5}, 5)), site, 24, 0, 0.3);
  const auto left = keyed_keep_mask(
      dropout_row_keys(7, 11, {2, 9}, padding_mask({8, 5}, 8, /*left=*/true)), site, 24, 0, 0.3);
  EXPECT_TRUE(at::equal(batch[1].narrow(0, 0, 5), alone[0]));
  EXPECT_TRUE(at::equal(left[1].narrow(0, 3, 5), alone[0]));
  EXPECT_TRUE(at::equal(left[0], batch[2]));  // example 2, no padding either way
}

TEST(KeyedDropout, AColumnShardGetsItsSliceOfTheFullMask) {
  const auto keys = dropout_row_keys(1, 0, {3, 1, 4}, padding_mask({6, 6, 2}, 6));
  const uint64_t site = dropout_site_id(0, "o_proj");
  const auto full = keyed_keep_mask(keys, site, 64, 0, 0.2);
  for (const auto& [offset, size] : {std::pair{0, 32}, std::pair{32, 32}, std::pair{16, 16}})
    EXPECT_TRUE(
        at::equal(keyed_keep_mask(keys, site, size, offset, 0.2), full.narrow(2, offset, size)))
        << "columns " << offset << "+" << size;
}

TEST(KeyedDropout, SeedStepExampleAndSiteEachChangeTheMask) {
  const auto mask = padding_mask({8}, 8);
  auto keep = [&](uint64_t seed, int64_t step, int64_t example, int64_t layer, const char* module) {
    return keyed_keep_mask(dropout_row_keys(seed, step, {example}, mask),
                           dropout_site_id(layer, module), 128, 0, 0.5);
  };
  const auto base = keep(1, 2, 3, 0, "q_proj");
  EXPECT_TRUE(at::equal(keep(1, 2, 3, 0, "q_proj"), base));
  EXPECT_FALSE(at::equal(keep(9, 2, 3, 0, "q_proj"), base)) << "seed";
  EXPECT_FALSE(at::equal(keep(1, 3, 3, 0, "q_proj"), base)) << "step";
  EXPECT_FALSE(at::equal(keep(1, 2, 4, 0, "q_proj"), base)) << "example";
  EXPECT_FALSE(at::equal(keep(1, 2, 3, 1, "q_proj"), base)) << "layer";
  EXPECT_FALSE(at::equal(keep(1, 2, 3, 0, "v_proj"), base)) << "module";
}

TEST(KeyedDropout, ScalesLikeTorchAndFallsBackToTorchsGeneratorWithoutKeys) {
  auto context = std::make_shared<DropoutContext>();
  const DropoutSite site{context, dropout_site_id(0, "q_proj"), 0, {}};
  const auto x = at::randn({2, 5, 16});
  torch::manual_seed(3);
  const auto expected = at::dropout(x, 0.25, /*train=*/true);
  torch::manual_seed(3);
  EXPECT_FALSE(site.keyed());
  EXPECT_TRUE(at::equal(site.apply(x, 0.25), expected));
  context->set(dropout_row_keys(0, 0, {5, 6}, padding_mask({5, 5}, 5)));
  ASSERT_TRUE(site.keyed());
  const auto keep = site.keep_mask(x, 0.25);
  EXPECT_TRUE(at::allclose(site.apply(x, 0.25), x * keep.to(at::kFloat) / 0.75));
}

TEST(KeyedDropout, CudaMasksEqualTheCpuMasks) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto keys = dropout_row_keys(5, 8, {10, 20, 30}, padding_mask({7, 3, 9}, 9));
  const uint64_t site = dropout_site_id(3, "down_proj");
  EXPECT_TRUE(at::equal(keyed_keep_mask(keys.cuda(), site, 300, 100, 0.1).cpu(),
                        keyed_keep_mask(keys, site, 300, 100, 0.1)));
}

// The model in training mode with LoRA dropout 0.3 on every projection and token-head dropout 0.3:
// with keys, rows of one forward equal the same rows run as separate micro-batches.
TEST(KeyedDropout, ModelOutputsDoNotDependOnTheMicroBatchSplit) {
  const auto golden = Checkpoint::open_file(test::golden_dir() / "golden.safetensors");
  const auto ids = golden.view("input_ids").clone(), mask = golden.view("attention_mask").clone();
  ModelOptions options;
  options.attention = AttentionPolicy::bidirectional();
  HeadOptions head;
  head.task = TaskType::kToken;
  head.num_labels = 5;
  head.dropout = 0.3;
  torch::manual_seed(0);
  auto model = LsLlama::from_pretrained(test::golden_dir() / "model", options, head);
  LoraOptions lora;
  lora.r = 4;
  lora.alpha = 8;
  lora.dropout = 0.3;
  lora.targets = llama_projection_names();
  model->add_lora(lora);
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, parameter] : model->trainable_parameters())
      if (name.find("lora_B") != std::string::npos) parameter.normal_(0, 0.1);
  }
  model->train();
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> examples = {17, 4, 250};
  auto run = [&](int64_t begin, int64_t size) {
    const auto rows_mask = mask.narrow(0, begin, size);
    const int64_t length = rows_mask.sum(1).max().item<int64_t>();  // trimmed to its own padding
    model->set_dropout_keys(dropout_row_keys(
        11, 4, std::vector<int64_t>(examples.begin() + begin, examples.begin() + begin + size),
        rows_mask.narrow(1, 0, length)));
    auto logits = model->forward(ids.narrow(0, begin, size).narrow(1, 0, length),
                                 rows_mask.narrow(1, 0, length));
    model->clear_dropout_keys();
    return logits;
  };
  const auto whole = run(0, 3);
  const auto first = run(0, 1), rest = run(1, 2);
  const int64_t length_rest = rest.size(1);
  EXPECT_LE(test::relative_error(first[0], whole[0]), 1e-5);
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t real = mask[1 + b].sum().item<int64_t>();
    EXPECT_LE(test::relative_error(rest[b].narrow(0, 0, real), whole[1 + b].narrow(0, 0, real)),
              1e-5)
        << "row " << 1 + b;
    EXPECT_LE(real, length_rest);
  }
  // And dropout is on: another step gives other outputs.
  model->set_dropout_keys(dropout_row_keys(11, 5, examples, mask));
  EXPECT_GT(test::relative_error(model->forward(ids, mask), whole), 1e-3);
  model->clear_dropout_keys();
}

}  // namespace
}  // namespace ls
