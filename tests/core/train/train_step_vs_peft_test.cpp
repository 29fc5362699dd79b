// The trainer's optimizer step against HF transformers + PEFT + torch.optim.AdamW: starting from
// the golden adapters, on the golden batch (no shuffling, constant lr 1e-2, weight decay 0.01 on
// every trainable tensor, no clipping), the loss before each of 4 steps equals the golden
// seq_adamw_losses / tok_adamw_losses within 1e-4.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/adapter/peft_adapter.h"
#include "core/io/checkpoint.h"
#include "core/model/ls_llama.h"
#include "core/train/adamw.h"
#include "core/train/train_step.h"
#include "tests/support/test_util.h"

namespace {

void check_four_steps(const std::string& task) {
  const auto golden = ls::Checkpoint::open_file(ls::test::golden_dir() / "golden.safetensors");
  ls::HeadOptions head;
  head.task = task == "seq" ? ls::TaskType::kSequence : ls::TaskType::kToken;
  head.num_labels = task == "seq" ? 3 : 5;
  head.dropout = 0.0;
  head.bias = task != "seq";
  auto model = ls::LsLlama::from_pretrained(ls::test::golden_dir() / "model", {}, head);
  ls::load_adapter(*model,
                   ls::test::golden_dir() / (task == "seq" ? "adapter_seq" : "adapter_tok"));

  std::vector<ls::AdamW::Param> params;
  for (auto& [name, tensor] : model->trainable_parameters())
    params.push_back({name, tensor, /*decay=*/true});
  ls::AdamW optimizer(std::move(params), {0.9, 0.999, 1e-8, 0.01});
  ls::StepRunner runner(*model, optimizer, nullptr, nullptr, /*max_grad_norm=*/0.0, c10::kCPU);

  ls::data::Batch batch;
  batch.input_ids = golden.view("input_ids").to(at::kLong);
  batch.attention_mask = golden.view("attention_mask").to(at::kLong);
  batch.labels = golden.view(task == "seq" ? "seq_labels" : "tok_labels").to(at::kLong);
  batch.example_indices = {0, 1, 2};
  const auto expected = golden.view(task + "_adamw_losses").to(at::kDouble);
  for (int step = 0; step < 4; ++step) {
    ls::StepStats stats = runner.step({batch}, 1e-2, step);
    EXPECT_NEAR(stats.loss, expected[step].item<double>(), 1e-4) << task << " step " << step;
    EXPECT_EQ(stats.labels, batch.labels.ne(-100).sum().item<int64_t>());
  }
}

}  // namespace

TEST(TrainStepVsPeft, SequenceLossesMatchHfPeftAdamW) {
  check_four_steps("seq");
}
TEST(TrainStepVsPeft, TokenLossesMatchHfPeftAdamW) {
  check_four_steps("tok");
}
