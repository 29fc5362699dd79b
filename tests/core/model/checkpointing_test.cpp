// Activation checkpointing gives the gradients of the plain model: selective (norms, RoPE, SwiGLU
// recomputed) and full (whole layers recomputed, dropout masks replayed from the saved generator
// state, or recomputed from the batch's keys), with and without LoRA dropout, causal and
// bidirectional, float32 and bf16. Also the mode names and the SDPA backend report. Fixture: the
// golden tiny model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "core/base/error.h"
#include "core/io/checkpoint.h"
#include "core/model/keyed_dropout.h"
#include "core/model/ls_llama.h"
#include "tests/support/test_util.h"

namespace ls {
namespace {

struct Run {
  at::Tensor loss;
  std::map<std::string, at::Tensor> grads;
};

// One training forward + backward of a token tagger with LoRA on every projection (B random, so
// every adapter tensor gets a gradient).
Run train_step(ActivationCheckpointing mode, double lora_dropout, AttentionPolicy policy,
               c10::ScalarType dtype = at::kFloat, bool keyed = false) {
  const auto golden = Checkpoint::open_file(test::golden_dir() / "golden.safetensors");
  const auto ids = golden.view("input_ids").clone(), mask = golden.view("attention_mask").clone();
  const auto labels = golden.view("tok_labels").clone();
  ModelOptions options;
  options.attention = policy;
  options.dtype = dtype;
  options.activation_checkpointing = mode;
  HeadOptions head;
  head.task = TaskType::kToken;
  head.num_labels = labels.max().item<int64_t>() + 1;
  torch::manual_seed(0);  // the head and the adapter
  auto model = LsLlama::from_pretrained(test::golden_dir() / "model", options, head);
  LoraOptions lora;
  lora.r = 4;
  lora.alpha = 8;
  lora.dropout = lora_dropout;
  lora.targets = llama_projection_names();
  model->add_lora(lora);
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, parameter] : model->trainable_parameters())
      if (name.find("lora_B") != std::string::npos) parameter.normal_(0, 0.1);
  }
  model->train();
  torch::manual_seed(1);  // the dropout masks (from torch's generator unless keyed)
  if (keyed) model->set_dropout_keys(dropout_row_keys(5, 2, {0, 1, 2}, mask));
  Run run;
  run.loss = model->loss(model->forward(ids, mask), labels);
  run.loss.backward();
  for (const auto& [name, parameter] : model->trainable_parameters()) {
    EXPECT_TRUE(parameter.grad().defined()) << name;
    run.grads[name] = parameter.grad().clone();
  }
  return run;
}

double worst_gradient_error(const Run& actual, const Run& expected) {
  double worst = 0;
  EXPECT_EQ(actual.grads.size(), expected.grads.size());
  for (const auto& [name, grad] : expected.grads)
    worst = std::max(worst, test::relative_error(actual.grads.at(name), grad));
  return worst;
}

TEST(ActivationCheckpointing, FullAndSelectiveGiveThePlainGradientsInFloat32) {
  std::map<std::string, double> worst;  // printed for the record
  for (const auto& policy : {AttentionPolicy::causal(), AttentionPolicy::bidirectional()}) {
    for (const auto& [dropout, keyed] :
         {std::pair{0.0, false}, std::pair{0.1, false}, std::pair{0.1, true}}) {
      const auto plain =
          train_step(ActivationCheckpointing::kNone, dropout, policy, at::kFloat, keyed);
      for (const auto mode :
           {ActivationCheckpointing::kSelective, ActivationCheckpointing::kFull}) {
        const auto run = train_step(mode, dropout, policy, at::kFloat, keyed);
        const auto what = fmt::format("{} {} dropout {}{}", enum_name(mode), policy.describe(),
                                      dropout, keyed ? " keyed" : "");
        // Full recomputes the same float32 ops with the same dropout masks; selective's analytic
        // backward adds in another order: both sit at float32 rounding (eps 1.2e-7).
        EXPECT_LE(test::relative_error(run.loss, plain.loss), 1e-6) << what;
        const double error = worst_gradient_error(run, plain);
        EXPECT_LE(error, 1e-5) << what;
        auto& kind = worst[std::string(enum_name(mode))];
        kind = std::max(kind, error);
      }
    }
  }
  for (const auto& [mode, error] : worst)
    std::printf("worst relative gradient error, %s vs none: %.3g\n", mode.c_str(), error);
}

TEST(ActivationCheckpointing, DropoutMasksMatterSoTheReplayIsWhatMakesFullAgree) {
  const auto with = train_step(ActivationCheckpointing::kNone, 0.1, AttentionPolicy::causal());
  const auto without = train_step(ActivationCheckpointing::kNone, 0.0, AttentionPolicy::causal());
  EXPECT_GT(worst_gradient_error(with, without), 1e-3);
}

TEST(ActivationCheckpointing, Bf16BaseStaysWithinBf16RoundingOfThePlainPath) {
  const auto plain =
      train_step(ActivationCheckpointing::kNone, 0.1, AttentionPolicy::causal(), at::kBFloat16);
  for (const auto mode : {ActivationCheckpointing::kSelective, ActivationCheckpointing::kFull}) {
    const auto run = train_step(mode, 0.1, AttentionPolicy::causal(), at::kBFloat16);
    // bf16 eps is 2^-8 = 3.9e-3; selective rounds its recomputed backward differently.
    EXPECT_LE(test::relative_error(run.loss, plain.loss), 1e-2) << enum_name(mode);
    EXPECT_LE(worst_gradient_error(run, plain), 3e-2) << enum_name(mode);
  }
}

TEST(ActivationCheckpointing, NamesRoundTripAndUnknownNamesAreUserErrorsNamingTheKey) {
  for (const auto mode : {ActivationCheckpointing::kNone, ActivationCheckpointing::kSelective,
                          ActivationCheckpointing::kFull})
    EXPECT_EQ(parse_enum<ActivationCheckpointing>(enum_name(mode), "key"), mode);
  try {
    parse_enum<ActivationCheckpointing>("some", "model.activation_checkpointing");
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model.activation_checkpointing"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'some'"), std::string::npos);
  }
}

TEST(Attention, BackendReportNamesAKernelForEveryAttentionKind) {
  ModelOptions options;
  options.attention = AttentionPolicy::bidirectional_from(1);
  HeadOptions head;
  head.num_labels = 2;
  auto model = LsLlama::from_pretrained(test::golden_dir() / "model", options, head);
  const auto text = model->model().describe_attention_backends(2, 16);
  std::printf("%s\n", text.c_str());
  for (const char* part :
       {"causal unpadded", "causal padded", "bidirectional unpadded", "bidirectional padded"})
    EXPECT_NE(text.find(part), std::string::npos) << text;
  EXPECT_EQ(text.find("none (no backend"), std::string::npos) << text;
}

}  // namespace
}  // namespace ls
