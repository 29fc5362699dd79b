// The model against tests/fixtures/golden_tiny (HF transformers 5.17 + PEFT 0.21, float32 CPU):
// every tensor of golden.safetensors is compared. float32 bounds: 1e-4 relative on activations,
// logits and losses, 1e-3 on gradients (the measured errors are ~1e-6).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <map>
#include <set>

#include "core/adapter/peft_adapter.h"
#include "core/io/checkpoint.h"
#include "core/model/ls_llama.h"
#include "core/model/rope.h"
#include "tests/support/test_util.h"

namespace ls {
namespace {

constexpr double kActivationTolerance = 1e-4;
constexpr double kGradientTolerance = 1e-3;

class GoldenParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new Checkpoint(Checkpoint::open_file(test::golden_dir() / "golden.safetensors"));
  }
  static void TearDownTestSuite() {
    delete golden_;
    // Worst errors seen, for the report.
    for (const auto& [what, error] : worst_)
      std::printf("worst relative error %-12s %.3g\n", what.c_str(), error);
  }

  static at::Tensor golden(const std::string& name) { return golden_->view(name).clone(); }
  static at::Tensor ids() { return golden("input_ids"); }
  static at::Tensor mask() { return golden("attention_mask"); }

  static std::shared_ptr<LsLlama> load(TaskType task, const AttentionPolicy& attention,
                                       const std::string& adapter = "") {
    ModelOptions options;
    options.attention = attention;
    HeadOptions head;
    head.task = task;
    head.num_labels = task == TaskType::kSequence ? 3 : 5;
    auto model = LsLlama::from_pretrained(test::golden_dir() / "model", options, head);
    if (!adapter.empty()) ls::load_adapter(*model, test::golden_dir() / adapter);
    model->eval();
    return model;
  }

  static void set_head(LsLlama& model, const std::string& weight, const std::string& bias = "") {
    torch::NoGradGuard no_grad;
    auto parameters = model.head().named_parameters();
    parameters["weight"].copy_(golden(weight));
    if (!bias.empty()) parameters["bias"].copy_(golden(bias));
  }

  static void expect_close(const std::string& what, const std::string& kind,
                           const at::Tensor& actual, const at::Tensor& expected, double tolerance,
                           const std::optional<at::Tensor>& only = std::nullopt) {
    const double error = test::relative_error(actual, expected, only);
    worst_[kind] = std::max(worst_[kind], error);
    EXPECT_LE(error, tolerance) << what;
  }

  // Forward + backward with the adapter; logits, loss and every gradient against `variant`
  // ("seq_lora_causal", ...).
  static void check_adapter_variant(TaskType task, const AttentionPolicy& attention,
                                    const std::string& variant) {
    const bool sequence = task == TaskType::kSequence;
    auto model = load(task, attention, sequence ? "adapter_seq" : "adapter_tok");
    const auto logits = model->forward(ids(), mask());
    const auto loss = model->loss(logits, golden(sequence ? "seq_labels" : "tok_labels"));
    loss.backward();
    expect_close(variant + " logits", "logits", logits, golden(variant + "_logits"),
                 kActivationTolerance, sequence ? std::nullopt : std::optional(mask()));
    expect_close(variant + " loss", "loss", loss, golden(variant + "_loss"), kActivationTolerance);

    // PEFT's in-memory names, as the golden file has them, for each of our parameters.
    std::set<std::string> expected_grads;
    for (const auto& name : golden_->names())
      if (name.rfind("grad." + variant + ".", 0) == 0) expected_grads.insert(name);
    size_t compared = 0;
    for (const auto& [name, parameter] : model->trainable_parameters()) {
      const auto key = test::golden_grad_name(variant, name);
      ASSERT_TRUE(expected_grads.count(key))
          << "no golden gradient for " << name << " (" << key << ")";
      ASSERT_TRUE(parameter.grad().defined()) << name;
      expect_close(key, "gradient", parameter.grad(), golden(key), kGradientTolerance);
      ++compared;
    }
    EXPECT_EQ(compared, expected_grads.size()) << "every golden gradient has a trainable twin";
  }

  static Checkpoint* golden_;
  static std::map<std::string, double> worst_;
};

Checkpoint* GoldenParity::golden_ = nullptr;
std::map<std::string, double> GoldenParity::worst_;

TEST_F(GoldenParity, RopeInverseFrequenciesEqualHF) {
  const auto config = load_llama_config(test::golden_dir() / "model/config.json");
  expect_close("rope_inv_freq", "rope", rope_inverse_frequencies(config), golden("rope_inv_freq"),
               1e-7);
}

TEST_F(GoldenParity, CausalHiddenStatesEqualHF) {
  torch::NoGradGuard no_grad;
  auto model = load(TaskType::kSequence, AttentionPolicy::causal());
  expect_close("hidden_causal", "hidden", model->hidden_states(ids(), mask()),
               golden("hidden_causal"), kActivationTolerance, mask());
}

TEST_F(GoldenParity, BidirectionalHiddenStatesEqualHFWithPaddingMasked) {
  torch::NoGradGuard no_grad;
  auto model = load(TaskType::kSequence, AttentionPolicy::bidirectional());
  expect_close("hidden_bidir", "hidden", model->hidden_states(ids(), mask()),
               golden("hidden_bidir"), kActivationTolerance, mask());
}

TEST_F(GoldenParity, SequenceHeadAtLastRealTokenEqualsHF) {
  auto model = load(TaskType::kSequence, AttentionPolicy::causal());
  set_head(*model, "seq_score_weight");
  const auto logits = model->forward(ids(), mask());
  expect_close("seq_logits", "logits", logits, golden("seq_logits"), kActivationTolerance);
  expect_close("seq_loss", "loss", model->loss(logits, golden("seq_labels")), golden("seq_loss"),
               kActivationTolerance);
}

TEST_F(GoldenParity, TokenHeadEqualsHFCausalAndBidirectional) {
  for (const auto& [policy, suffix] : {std::pair{AttentionPolicy::causal(), "causal"},
                                       std::pair{AttentionPolicy::bidirectional(), "bidir"}}) {
    auto model = load(TaskType::kToken, policy);
    set_head(*model, "tok_score_weight", "tok_score_bias");
    const auto logits = model->forward(ids(), mask());
    expect_close(std::string("tok_logits_") + suffix, "logits", logits,
                 golden(std::string("tok_logits_") + suffix), kActivationTolerance, mask());
    expect_close(std::string("tok_loss_") + suffix, "loss",
                 model->loss(logits, golden("tok_labels")),
                 golden(std::string("tok_loss_") + suffix), kActivationTolerance);
  }
}

TEST_F(GoldenParity, SequenceAdapterCausalLogitsLossAndEveryGradient) {
  check_adapter_variant(TaskType::kSequence, AttentionPolicy::causal(), "seq_lora_causal");
}
TEST_F(GoldenParity, SequenceAdapterBidirectionalLogitsLossAndEveryGradient) {
  check_adapter_variant(TaskType::kSequence, AttentionPolicy::bidirectional(), "seq_lora_bidir");
}
TEST_F(GoldenParity, TokenAdapterCausalLogitsLossAndEveryGradient) {
  check_adapter_variant(TaskType::kToken, AttentionPolicy::causal(), "tok_lora_causal");
}
TEST_F(GoldenParity, TokenAdapterBidirectionalLogitsLossAndEveryGradient) {
  check_adapter_variant(TaskType::kToken, AttentionPolicy::bidirectional(), "tok_lora_bidir");
}

// The adapter merged into the base weights gives the same logits as the adapter applied.
TEST_F(GoldenParity, MergedAdapterGivesTheSameLogits) {
  torch::NoGradGuard no_grad;
  auto model = load(TaskType::kSequence, AttentionPolicy::causal(), "adapter_seq");
  model->merge_lora();
  expect_close("merged seq_lora_causal_logits", "logits", model->forward(ids(), mask()),
               golden("seq_lora_causal_logits"), kActivationTolerance);
}

}  // namespace
}  // namespace ls
