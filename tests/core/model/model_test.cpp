// Properties of the model beyond the golden numbers: LoRA initialisation, scaling and merging;
// what is trainable and under which names; adapters written and read back; attention policies
// and padding; pooling; bf16 against float32. The fixture is the golden tiny model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/adapter/peft_adapter.h"
#include "core/base/error.h"
#include "core/io/checkpoint.h"
#include "core/model/ls_llama.h"
#include "core/model/rope.h"
#include "core/model/sequence_head.h"
#include "tests/support/test_util.h"

namespace ls {
namespace {

struct Batch {
  at::Tensor ids, mask, seq_labels, tok_labels;
};

Batch golden_batch() {
  const auto golden = Checkpoint::open_file(test::golden_dir() / "golden.safetensors");
  return {golden.view("input_ids").clone(), golden.view("attention_mask").clone(),
          golden.view("seq_labels").clone(), golden.view("tok_labels").clone()};
}

std::shared_ptr<LsLlama> tiny(TaskType task = TaskType::kSequence,
                              AttentionPolicy attention = AttentionPolicy::causal(),
                              c10::ScalarType dtype = at::kFloat,
                              Pooling pooling = Pooling::kLast) {
  ModelOptions options;
  options.attention = attention;
  options.dtype = dtype;
  HeadOptions head;
  head.task = task;
  head.num_labels = 3;
  head.pooling = pooling;
  auto model = LsLlama::from_pretrained(test::golden_dir() / "model", options, head);
  model->eval();
  return model;
}

LoraOptions all_targets(int64_t r = 4, double alpha = 8) {
  LoraOptions lora;
  lora.r = r;
  lora.alpha = alpha;
  lora.targets = llama_projection_names();
  return lora;
}

TEST(Lora, FreshAdapterLeavesTheModelUnchangedAndInitialisesAsPeft) {
  torch::NoGradGuard no_grad;
  const auto batch = golden_batch();
  torch::manual_seed(0);
  auto model = tiny();
  const auto before = model->forward(batch.ids, batch.mask);
  model->add_lora(all_targets());
  EXPECT_TRUE(model->forward(batch.ids, batch.mask).equal(before)) << "B = 0 at start";
  for (const auto& [name, parameter] : model->trainable_parameters()) {
    if (name.find("lora_B") != std::string::npos) {
      EXPECT_EQ(parameter.abs().max().item<float>(), 0) << name;
    } else if (name.find("lora_A") != std::string::npos) {
      // kaiming_uniform(a = sqrt 5) is uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
      const double bound = 1.0 / std::sqrt(static_cast<double>(parameter.size(1)));
      EXPECT_LE(parameter.abs().max().item<double>(), bound) << name;
      EXPECT_GT(parameter.abs().max().item<double>(), 0.5 * bound) << name;
    }
  }
}

TEST(Lora, ScalingIsAlphaOverRankOrOverSqrtRankWithRsLora) {
  LoraOptions lora;
  lora.r = 16;
  lora.alpha = 32;
  EXPECT_DOUBLE_EQ(lora.scaling(), 2.0);
  lora.use_rslora = true;
  EXPECT_DOUBLE_EQ(lora.scaling(), 8.0);
}

TEST(Lora, OnlyAdapterAndHeadAreTrainableUnderHfNames) {
  auto model = tiny();
  LoraOptions lora;  // q_proj, v_proj
  model->add_lora(lora);
  std::vector<std::string> names;
  for (const auto& [name, parameter] : model->trainable_parameters()) names.push_back(name);
  const std::vector<std::string> expected = {"model.layers.0.self_attn.q_proj.lora_A.weight",
                                             "model.layers.0.self_attn.q_proj.lora_B.weight",
                                             "model.layers.0.self_attn.v_proj.lora_A.weight",
                                             "model.layers.0.self_attn.v_proj.lora_B.weight",
                                             "model.layers.1.self_attn.q_proj.lora_A.weight",
                                             "model.layers.1.self_attn.q_proj.lora_B.weight",
                                             "model.layers.1.self_attn.v_proj.lora_A.weight",
                                             "model.layers.1.self_attn.v_proj.lora_B.weight",
                                             "score.weight"};
  EXPECT_EQ(names, expected);
  // named_parameters() is the checkpoint map: every frozen tensor is a checkpoint tensor.
  const auto checkpoint = Checkpoint::open_directory(test::golden_dir() / "model");
  for (const auto& item : model->named_parameters()) {
    if (item.value().requires_grad()) continue;
    EXPECT_TRUE(checkpoint.contains(item.key())) << item.key();
  }
  EXPECT_EQ(LsLlama::peft_name("score.weight"), "base_model.model.score.weight");
}

TEST(Lora, LayersToTransformAndRegexTargetsSelectProjections) {
  auto model = tiny();
  LoraOptions lora;
  lora.layers = {1};
  model->add_lora(lora);
  EXPECT_EQ(model->trainable_parameters().size(), 5u);  // layer 1 q, v (A and B) + head
  auto regex_model = tiny();
  LoraOptions regex;
  regex.target_regex = R"(model\.layers\.0\.mlp\.(gate|up)_proj)";
  regex_model->add_lora(regex);
  EXPECT_EQ(regex_model->trainable_parameters().size(), 5u);
  LoraOptions none;
  none.targets = {"q_proj"};
  none.layers = {7};
  EXPECT_THROW(tiny()->add_lora(none), UserError);
  none.targets = {"lm_head"};
  EXPECT_THROW(none.validate("lora"), UserError);
}

TEST(Lora, MergeThenUnmergeRestoresWeightsAndKeepsLogits) {
  torch::NoGradGuard no_grad;
  const auto batch = golden_batch();
  auto model = tiny();
  ls::load_adapter(*model, test::golden_dir() / "adapter_seq");
  const auto before = model->forward(batch.ids, batch.mask);
  const auto weight = model->named_parameters()["model.layers.0.self_attn.q_proj.weight"].clone();
  model->merge_lora();
  EXPECT_LE(test::relative_error(model->forward(batch.ids, batch.mask), before), 1e-5);
  EXPECT_FALSE(model->named_parameters()["model.layers.0.self_attn.q_proj.weight"].equal(weight));
  model->unmerge_lora();
  EXPECT_LE(test::relative_error(
                model->named_parameters()["model.layers.0.self_attn.q_proj.weight"], weight),
            1e-6);
  EXPECT_LE(test::relative_error(model->forward(batch.ids, batch.mask), before), 1e-6);
}

// The file that the mapping holding `data` in this process maps ("" for anonymous memory), from
// /proc/self/maps.
std::string mapped_file_of(const void* data) {
  const auto address = reinterpret_cast<uintptr_t>(data);
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    uintptr_t begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &begin, &end) != 2) continue;
    if (address < begin || address >= end) continue;
    const auto slash = line.find('/');
    return slash == std::string::npos ? "" : line.substr(slash);
  }
  return "";
}

// A float32 checkpoint loaded as float32 on the CPU: every frozen weight is a view of the mapped
// model.safetensors (no copy); loaded as bf16 every one is converted into memory of its own; the
// adapter and head are trainable and never mapped.
TEST(Loading, FrozenCpuWeightsAreViewsOfTheCheckpointFileUnlessConverted) {
  const auto file =
      std::filesystem::canonical(test::golden_dir() / "model" / "model.safetensors").string();
  auto model = tiny();
  model->add_lora(all_targets());
  int64_t frozen = 0;
  for (const auto& item : model->named_parameters()) {
    const bool trainable = item.value().requires_grad();
    frozen += !trainable;
    EXPECT_EQ(mapped_file_of(item.value().data_ptr()), trainable ? "" : file) << item.key();
  }
  EXPECT_EQ(frozen, 2 + 9 * model->config().num_hidden_layers);  // embed, norm; 9 per layer

  auto converted = tiny(TaskType::kSequence, AttentionPolicy::causal(), at::kBFloat16);
  for (const auto& item : converted->named_parameters())
    EXPECT_EQ(mapped_file_of(item.value().data_ptr()), "") << item.key();
}

TEST(Adapter, SavedAdapterReloadsToTheSameLogitsWithPeftNamesAndConfig) {
  torch::NoGradGuard no_grad;
  const auto batch = golden_batch();
  test::ScratchDir dir("ls_adapter_roundtrip");
  auto model = tiny(TaskType::kToken);
  ls::load_adapter(*model, test::golden_dir() / "adapter_tok");
  ls::save_adapter(*model, dir.path());
  auto reloaded = tiny(TaskType::kToken);
  ls::load_adapter(*reloaded, dir.path());
  EXPECT_TRUE(
      reloaded->forward(batch.ids, batch.mask).equal(model->forward(batch.ids, batch.mask)));

  const auto saved = Checkpoint::open_file(dir / kAdapterWeightsFile);
  const auto original =
      Checkpoint::open_file(test::golden_dir() / "adapter_tok" / kAdapterWeightsFile);
  EXPECT_EQ(saved.names(), original.names());
  EXPECT_EQ(saved.file_of("base_model.model.score.weight").metadata().at("format"), "pt");
  const auto config = read_peft_adapter_config(dir / kAdapterConfigFile);
  EXPECT_EQ(config.lora.r, 4);
  EXPECT_EQ(config.lora.alpha, 8);
  EXPECT_EQ(config.task, TaskType::kToken);
  EXPECT_EQ(config.modules_to_save, std::vector<std::string>{"score"});
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos)
        << "left behind: " << entry.path();
}

TEST(Adapter, MismatchedTaskAndMissingTensorsAreUserErrorsNamingTheFile) {
  test::ScratchDir dir("ls_adapter_broken");
  auto model = tiny(TaskType::kToken);
  try {
    ls::load_adapter(*model, test::golden_dir() / "adapter_seq");
    FAIL() << "a SEQ_CLS adapter loaded into a token model";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("adapter_config.json"), std::string::npos) << e.what();
  }
  // An adapter without one of its LoRA tensors.
  std::filesystem::copy_file(test::golden_dir() / "adapter_seq" / kAdapterConfigFile,
                             dir / kAdapterConfigFile);
  const auto original =
      Checkpoint::open_file(test::golden_dir() / "adapter_seq" / kAdapterWeightsFile);
  std::vector<std::pair<std::string, at::Tensor>> kept;
  const std::string dropped = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight";
  for (const auto& name : original.names())
    if (name != dropped) kept.emplace_back(name, original.view(name));
  write_safetensors(dir / kAdapterWeightsFile, kept);
  try {
    ls::load_adapter(*tiny(), dir.path());
    FAIL() << "an adapter missing a tensor loaded";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(kAdapterWeightsFile), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(dropped), std::string::npos) << e.what();
  }
}

// Padding must not change what real tokens compute: append padding columns and compare.
// Positions count from each row's first real token: right padding keeps 0..T-1, a left-padded
// row gets the positions it has alone (test_model_left_padding.py checks the logits).
TEST(Positions, CountFromEachRowsFirstRealToken) {
  const auto mask = torch::tensor({1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}).view({3, 5});
  const auto expected = torch::tensor({0, 1, 2, 3, 4, -2, -1, 0, 1, 2, 0, 1, 2, 3, 4}).view({3, 5});
  EXPECT_TRUE(rope_positions(mask).equal(expected)) << rope_positions(mask);
}

TEST(AttentionPolicy, ExtraPaddingDoesNotChangeRealTokensInAnyPolicy) {
  torch::NoGradGuard no_grad;
  const auto batch = golden_batch();
  const auto padded_ids =
      at::cat({batch.ids, at::zeros({batch.ids.size(0), 5}, batch.ids.options())}, 1);
  const auto padded_mask =
      at::cat({batch.mask, at::zeros({batch.mask.size(0), 5}, batch.mask.options())}, 1);
  for (const auto& policy : {AttentionPolicy::causal(), AttentionPolicy::bidirectional(),
                             AttentionPolicy::bidirectional_from(1)}) {
    auto model = tiny(TaskType::kToken, policy);
    const auto plain = model->hidden_states(batch.ids, batch.mask);
    const auto padded =
        model->hidden_states(padded_ids, padded_mask).narrow(1, 0, batch.ids.size(1));
    EXPECT_LE(test::relative_error(padded, plain, batch.mask), 1e-6) << policy.describe();
    EXPECT_TRUE(at::isfinite(model->hidden_states(padded_ids, padded_mask)).all().item<bool>());
  }
}

TEST(AttentionPolicy, AttendToPaddingReproducesTheOriginalUnmaskedBehaviour) {
  torch::NoGradGuard no_grad;
  const auto batch = golden_batch();
  auto policy = AttentionPolicy::bidirectional();
  auto masked = tiny(TaskType::kToken, policy);
  policy.attend_to_padding = true;
  auto unmasked = tiny(TaskType::kToken, policy);
  const auto a = masked->hidden_states(batch.ids, batch.mask);
  const auto b = unmasked->hidden_states(batch.ids, batch.mask);
  // Row 0 has no padding: identical. Padded rows see their padding: different.
  EXPECT_LE(test::relative_error(b[0], a[0]), 1e-6);
  EXPECT_GT(test::relative_error(b[1], a[1], batch.mask[1]), 1e-3);
}

TEST(AttentionPolicy, BidirectionalFromLayerKSitsBetweenCausalAndBidirectional) {
  torch::NoGradGuard no_grad;
  const auto batch = golden_batch();
  auto run = [&](const AttentionPolicy& policy) {
    return tiny(TaskType::kToken, policy)->hidden_states(batch.ids, batch.mask);
  };
  const auto causal = run(AttentionPolicy::causal());
  const auto bidirectional = run(AttentionPolicy::bidirectional());
  EXPECT_TRUE(run(AttentionPolicy::bidirectional_from(0)).equal(bidirectional));
  EXPECT_TRUE(run(AttentionPolicy::bidirectional_from(2)).equal(causal));  // only 2 layers
  const auto from1 = run(AttentionPolicy::bidirectional_from(1));
  EXPECT_GT(test::relative_error(from1, causal, batch.mask), 1e-4);
  EXPECT_GT(test::relative_error(from1, bidirectional, batch.mask), 1e-4);
  // Layer 0 only, written as a closed range, is yet another model.
  const auto only0 = run(parse_attention_policy("bidirectional:0-0", "test"));
  EXPECT_GT(test::relative_error(only0, from1, batch.mask), 1e-4);
}

TEST(AttentionPolicy, SpecsParseAndBadSpecsNameTheirSource) {
  EXPECT_EQ(parse_attention_policy("causal", "x").describe(), "causal");
  EXPECT_EQ(parse_attention_policy("bidirectional", "x").describe(), "bidirectional");
  EXPECT_EQ(parse_attention_policy("bidirectional:16-", "x").describe(), "bidirectional:16-");
  EXPECT_EQ(parse_attention_policy("bidirectional:16-31", "x").describe(), "bidirectional:16-31");
  for (const char* bad :
       {"bidir", "bidirectional:", "bidirectional:a-", "bidirectional:5-2", "bidirectional:-3"}) {
    try {
      parse_attention_policy(bad, "--attention");
      ADD_FAILURE() << bad;
    } catch (const UserError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("--attention: ", 0), 0u) << e.what();
    }
  }
}

TEST(SequenceHead, MeanAndMaxPoolTokenLogitsOverRealTokensOnly) {
  torch::NoGradGuard no_grad;
  const auto batch = golden_batch();
  auto last = tiny(TaskType::kSequence, AttentionPolicy::causal(), at::kFloat, Pooling::kLast);
  const auto hidden = last->hidden_states(batch.ids, batch.mask);
  const auto weight = last->head().named_parameters()["weight"];
  const auto token_logits = at::matmul(hidden, weight.t());
  for (const auto pooling : {Pooling::kMean, Pooling::kMax}) {
    SequenceHead head(hidden.size(2), 3, pooling, false, at::kCPU);
    head.named_parameters()["weight"].copy_(weight);
    const auto pooled = head.forward(hidden, batch.mask);
    for (int64_t b = 0; b < batch.ids.size(0); ++b) {
      const auto length = batch.mask[b].sum().item<int64_t>();
      const auto real = token_logits[b].narrow(0, 0, length);
      const auto expected = pooling == Pooling::kMean ? real.mean(0) : std::get<0>(real.max(0));
      EXPECT_LE(test::relative_error(pooled[b], expected), 1e-6)
          << enum_name(pooling) << " row " << b;
    }
  }
  // `last` is the last real token, whatever the padding side.
  const auto pooled_last = last->head().forward(hidden, batch.mask);
  EXPECT_LE(test::relative_error(pooled_last[2], token_logits[2][3]), 1e-6);
}

TEST(Loss, CrossEntropyIgnoresMinus100AndRejectsOutOfRangeLabels) {
  const auto logits = torch::randn({2, 4, 3});
  auto labels = torch::tensor({{0, 2, -100, -100}, {1, -100, 2, 0}});
  const auto loss = cross_entropy(logits, labels);
  const auto keep = labels.ne(-100);
  const auto expected =
      torch::nn::functional::cross_entropy(logits.index({keep}), labels.index({keep}));
  EXPECT_LE(test::relative_error(loss, expected), 1e-6);
  EXPECT_THROW(cross_entropy(logits, torch::tensor({{0, 3, 0, 0}, {0, 0, 0, 0}})), UserError);
}

// What the trainer relies on for any dp width: the mean of a batch equals the sums of its parts
// over the sum of their normalizers, for every problem type, with class weights and smoothing.
TEST(Loss, SumOverNormalizerOfPartsIsTheMeanOfTheWholeBatch) {
  torch::manual_seed(3);
  struct Case {
    ProblemType problem;
    LossOptions options;
    at::Tensor logits, labels;
  };
  std::vector<Case> cases = {
      {ProblemType::kSingleLabel,
       {{0.5, 2.0, 1.0}, 0.1},
       torch::randn({6, 3}),
       torch::tensor({0, 1, 2, -100, 1, 1})},
      {ProblemType::kSingleLabel,
       {{0.2, 1.0, 3.0}, 0.0},
       torch::randn({2, 4, 3}),
       torch::tensor({{0, 2, -100, -100}, {1, -100, 2, 0}})},
      {ProblemType::kMultiLabel,
       {{1.0, 4.0}, 0.0},
       torch::randn({6, 2}),
       torch::tensor({{1.f, 0.f}, {0.f, 0.f}, {1.f, 1.f}, {NAN, NAN}, {0.f, 1.f}, {1.f, 0.f}})},
      {ProblemType::kRegression,
       {{}, 0.0, 2.0, 0.5},
       torch::randn({6, 1}),
       torch::tensor({1.f, 2.5f, NAN, -1.f, 0.f, 3.f})},
  };
  for (const auto& c : cases) {
    const LossFunction loss(c.problem, c.options, c.logits.size(-1), torch::kCPU);
    const auto whole = loss.mean(c.logits, c.labels);
    const auto a = loss.sum(c.logits.narrow(0, 0, 1), c.labels.narrow(0, 0, 1)) +
                   loss.sum(c.logits.narrow(0, 1, c.logits.size(0) - 1),
                            c.labels.narrow(0, 1, c.labels.size(0) - 1));
    const auto n = loss.normalizer(c.labels.narrow(0, 0, 1)) +
                   loss.normalizer(c.labels.narrow(0, 1, c.labels.size(0) - 1));
    EXPECT_LE(test::relative_error(a / n, whole), 1e-6) << enum_name(c.problem);
  }
  // Torch's weighted, smoothed cross-entropy is the reference for the single-label mean.
  const auto& c = cases[0];
  const auto expected =
      torch::nn::functional::cross_entropy(c.logits, c.labels,
                                           torch::nn::functional::CrossEntropyFuncOptions()
                                               .weight(torch::tensor({0.5f, 2.0f, 1.0f}))
                                               .label_smoothing(0.1));
  EXPECT_LE(
      test::relative_error(
          LossFunction(c.problem, c.options, 3, torch::kCPU).mean(c.logits, c.labels), expected),
      1e-6);
  EXPECT_THROW(LossFunction(ProblemType::kSingleLabel, {{1.0, 2.0}, 0.0}, 3, torch::kCPU),
               UserError);
}

// bf16 base (LoRA and head in float32) against the float32 model: logits, loss, gradients.
TEST(Bf16, ForwardAndBackwardStayWithinBf16ToleranceOfFloat32) {
  const auto batch = golden_batch();
  std::map<std::string, at::Tensor> grads32;
  at::Tensor logits32, loss32;
  double worst_logits = 0, worst_grad = 0;
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    auto model = tiny(TaskType::kSequence, AttentionPolicy::bidirectional(), dtype);
    ls::load_adapter(*model, test::golden_dir() / "adapter_seq");
    EXPECT_EQ(model->hidden_states(batch.ids, batch.mask).scalar_type(), dtype);
    const auto logits = model->forward(batch.ids, batch.mask);
    const auto loss = model->loss(logits, batch.seq_labels);
    loss.backward();
    for (const auto& [name, parameter] : model->trainable_parameters()) {
      EXPECT_EQ(parameter.scalar_type(), at::kFloat) << name << ": trained tensors stay float32";
      if (dtype == at::kFloat)
        grads32[name] = parameter.grad().clone();
      else
        worst_grad = std::max(worst_grad, test::relative_error(parameter.grad(), grads32[name]));
    }
    if (dtype == at::kFloat) {
      logits32 = logits.detach();
      loss32 = loss.detach();
    } else {
      worst_logits = test::relative_error(logits, logits32);
      EXPECT_LE(test::relative_error(loss, loss32), 2e-2);
    }
  }
  // bf16 keeps 8 significant bits (eps 2^-8 = 3.9e-3); two layers of rounding stay within a few
  // eps.
  std::printf("bf16 vs f32: logits %.3g, worst gradient %.3g (relative)\n", worst_logits,
              worst_grad);
  EXPECT_LE(worst_logits, 2e-2);
  EXPECT_LE(worst_grad, 5e-2);
}

}  // namespace
}  // namespace ls
