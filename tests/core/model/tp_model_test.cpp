// LsLlama with tensor-parallel projections (core/model/tp_projection.h) on
// tests/fixtures/golden_tiny (4 heads, 2 KV heads), against the same model at tp = 1 in this
// process and against the golden HF + PEFT tensors: logits and losses within 1e-4 relative, every
// gradient within 1e-3 (float32). tp = 2 splits the kv heads; at 4 ranks tp = 4 also runs, where
// each kv head is replicated on the two ranks whose q heads read it. With more ranks than tp, every
// tp group computes the same. Qwen2 and Qwen3 checkpoints (q/k/v biases, q/k norms) against tp = 1.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "core/adapter/peft_adapter.h"
#include "core/io/checkpoint.h"
#include "core/io/safetensors.h"
#include "core/model/ls_llama.h"
#include "core/model/tp_projection.h"
#include "core/train/adamw.h"
#include "core/train/train_step.h"
#include "parallel/communicator.h"
#include "parallel/topology.h"
#include "parallel/tp_linear.h"
#include "tests/support/test_util.h"

namespace ls {
namespace {

constexpr double kActivationTolerance = 1e-4;
constexpr double kGradientTolerance = 1e-3;

std::shared_ptr<parallel::Communicator> world() {
  static auto comm = parallel::make_world_communicator(c10::kCPU);
  return comm;
}

// The tp widths this world runs: 2, and 4 when the world has 4 ranks.
std::vector<int> tp_widths() {
  std::vector<int> widths = {2};
  if (world()->size() % 4 == 0) widths.push_back(4);
  return widths;
}

Checkpoint& golden() {
  static Checkpoint file = Checkpoint::open_file(test::golden_dir() / "golden.safetensors");
  return file;
}
at::Tensor golden(const std::string& name) {
  return golden().view(name).clone();
}

HeadOptions head_for(TaskType task) {
  HeadOptions head;
  head.task = task;
  head.num_labels = task == TaskType::kSequence ? 3 : 5;
  head.bias = task == TaskType::kToken;
  head.dropout = 0.0;
  return head;
}

// The golden model, its projections tensor-parallel over `tp` (null: the single-device model).
std::shared_ptr<LsLlama> load(TaskType task, const AttentionPolicy& attention,
                              std::shared_ptr<parallel::Communicator> tp,
                              const std::filesystem::path& adapter = {}) {
  ModelOptions options;
  options.attention = attention;
  if (tp)
    options.projection_factory =
        tensor_parallel_factory(load_llama_config(test::golden_dir() / "model/config.json"), tp);
  auto model = LsLlama::from_pretrained(test::golden_dir() / "model", options, head_for(task));
  if (!adapter.empty()) ls::load_adapter(*model, adapter);
  model->eval();
  return model;
}

std::string adapter_of(TaskType task) {
  return task == TaskType::kSequence ? "adapter_seq" : "adapter_tok";
}

std::map<std::string, at::Tensor> as_map(
    const std::vector<std::pair<std::string, at::Tensor>>& items) {
  return {items.begin(), items.end()};
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A directory every rank of the world names alike (rank 0's pid), removed with the object.
class SharedScratchDir {
 public:
  explicit SharedScratchDir(const std::string& name) {
    const double pid = world()->rank() == 0 ? static_cast<double>(::getpid()) : 0.0;
    const auto shared = static_cast<long>(parallel::all_reduce_value(*world(), pid));
    path_ = std::filesystem::temp_directory_path() / (name + "." + std::to_string(shared));
    if (world()->rank() == 0) std::filesystem::create_directories(path_);
    world()->barrier();
  }
  ~SharedScratchDir() {
    world()->barrier();
    if (world()->rank() == 0) std::filesystem::remove_all(path_);
  }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct Variant {
  TaskType task;
  AttentionPolicy attention;
  std::string name;  // golden's prefix
};

std::vector<Variant> adapter_variants() {
  return {{TaskType::kSequence, AttentionPolicy::causal(), "seq_lora_causal"},
          {TaskType::kSequence, AttentionPolicy::bidirectional(), "seq_lora_bidir"},
          {TaskType::kToken, AttentionPolicy::causal(), "tok_lora_causal"},
          {TaskType::kToken, AttentionPolicy::bidirectional(), "tok_lora_bidir"}};
}

TEST(TensorParallelModel, LogitsLossAndEveryGradientEqualTp1AndGolden) {
  const auto ids = golden("input_ids"), mask = golden("attention_mask");
  std::map<std::string, double> worst;  // printed by rank 0, for the report
  auto error = [&](const std::string& kind, const at::Tensor& actual, const at::Tensor& expected,
                   const std::optional<at::Tensor>& only = std::nullopt) {
    const double e = test::relative_error(actual, expected, only);
    worst[kind] = std::max(worst[kind], e);
    return e;
  };
  for (const int tp : tp_widths()) {
    parallel::Topology topology(world(), tp);
    for (const Variant& v : adapter_variants()) {
      SCOPED_TRACE(v.name + " tp " + std::to_string(tp));
      const bool sequence = v.task == TaskType::kSequence;
      const std::optional<at::Tensor> real = sequence ? std::nullopt : std::optional(mask);
      const auto labels = golden(sequence ? "seq_labels" : "tok_labels");
      const auto adapter = test::golden_dir() / adapter_of(v.task);

      auto reference = load(v.task, v.attention, nullptr, adapter);
      const auto reference_logits = reference->forward(ids, mask);
      reference->loss(reference_logits, labels).backward();

      auto model = load(v.task, v.attention, topology.tp_group(), adapter);
      const auto logits = model->forward(ids, mask);
      const auto loss = model->loss(logits, labels);
      loss.backward();

      // The shards are real: q_proj's lora_B holds this rank's rows only.
      const auto local = as_map(model->trainable_parameters());
      EXPECT_EQ(local.at("model.layers.0.self_attn.q_proj.lora_B.weight").size(0), 64 / tp);

      EXPECT_LE(error("logits vs tp1", logits, reference_logits, real), kActivationTolerance);
      EXPECT_LE(error("logits vs golden", logits, golden(v.name + "_logits"), real),
                kActivationTolerance);
      EXPECT_LE(error("loss vs golden", loss, golden(v.name + "_loss")), kActivationTolerance);

      const auto grads = parallel::unsharded_parameters(*model, /*trainable_only=*/true,
                                                        /*gradients=*/true);
      const auto reference_params = as_map(reference->trainable_parameters());
      ASSERT_EQ(grads.size(), reference_params.size());
      for (const auto& [name, grad] : grads) {
        ASSERT_TRUE(reference_params.count(name)) << name;
        const auto& expected = reference_params.at(name).grad();
        ASSERT_EQ(grad.sizes(), expected.sizes()) << name;
        EXPECT_LE(error("grads vs tp1", grad, expected), kGradientTolerance) << name;
        EXPECT_LE(error("grads vs golden", grad, golden(test::golden_grad_name(v.name, name))),
                  kGradientTolerance)
            << name;
      }

      // The clipping norm counts each element of the unsharded gradients once.
      std::vector<at::Tensor> reference_tensors;
      for (const auto& [name, tensor] : reference->trainable_parameters())
        reference_tensors.push_back(tensor);
      const double expected_norm = clip_grad_norm(reference_tensors, /*max_norm=*/0.0);
      EXPECT_NEAR(parallel::total_grad_norm(*model, *topology.tp_group()), expected_norm,
                  1e-5 * expected_norm);
    }
  }
  if (world()->rank() == 0)
    for (const auto& [kind, e] : worst)
      std::printf("worst relative error %-16s %.3g\n", kind.c_str(), e);
}

// Activation checkpointing over tensor-parallel projections: recomputing a layer reruns its
// collectives in the same order on every rank, and LoRA dropout (0.1 here) replays its masks, so
// selective and full give the gradients of the plain tp model.
TEST(TensorParallelModel, CheckpointedLayersGiveThePlainGradients) {
  const auto ids = golden("input_ids"), mask = golden("attention_mask");
  for (const int tp : tp_widths()) {
    parallel::Topology topology(world(), tp);
    for (const auto& attention : {AttentionPolicy::causal(), AttentionPolicy::bidirectional()}) {
      std::map<std::string, at::Tensor> plain;
      for (const auto mode : {ActivationCheckpointing::kNone, ActivationCheckpointing::kSelective,
                              ActivationCheckpointing::kFull}) {
        SCOPED_TRACE(std::string(enum_name(mode)) + " " + attention.describe() + " tp " +
                     std::to_string(tp));
        torch::manual_seed(3);
        auto model = load(TaskType::kToken, attention, topology.tp_group());
        LoraOptions lora;
        lora.r = 4;
        lora.alpha = 8;
        lora.dropout = 0.1;
        lora.targets = llama_projection_names();
        model->add_lora(lora);
        {
          torch::NoGradGuard no_grad;
          for (auto& [name, parameter] : model->trainable_parameters())
            if (name.find("lora_B") != std::string::npos) parameter.normal_(0, 0.1);
        }
        model->set_activation_checkpointing(mode);
        model->train();
        torch::manual_seed(4);  // the dropout masks: equal on the ranks of a tp group
        model->loss(model->forward(ids, mask), golden("tok_labels")).backward();
        for (const auto& [name, parameter] : model->trainable_parameters()) {
          ASSERT_TRUE(parameter.grad().defined()) << name;
          if (mode == ActivationCheckpointing::kNone)
            plain[name] = parameter.grad().clone();
          else
            EXPECT_LE(test::relative_error(parameter.grad(), plain.at(name)), 1e-5) << name;
        }
      }
    }
  }
}

// Layout invariance with dropout on: a fresh adapter (same seed) is tp = 1's, and with keyed
// masks (LoRA dropout 0.2 on all seven projections, token-head dropout 0.2) the loss and every
// gradient equal tp = 1's: a replicated input's mask is the full one on every rank, a
// row-parallel input's (o_proj, down_proj) the slice of it. No shared seed is needed: each rank
// draws its torch generator differently here.
TEST(TensorParallelModel, KeyedDropoutAndFreshAdaptersEqualTp1) {
  const auto ids = golden("input_ids"), mask = golden("attention_mask");
  const auto labels = golden("tok_labels");
  auto run = [&](std::shared_ptr<parallel::Communicator> tp) {
    HeadOptions head = head_for(TaskType::kToken);
    head.dropout = 0.2;
    ModelOptions options;
    options.attention = AttentionPolicy::bidirectional();
    if (tp)
      options.projection_factory =
          tensor_parallel_factory(load_llama_config(test::golden_dir() / "model/config.json"), tp);
    torch::manual_seed(5);  // head and adapter: the same draws at every tp
    auto model = LsLlama::from_pretrained(test::golden_dir() / "model", options, head);
    LoraOptions lora;
    lora.r = 4;
    lora.alpha = 8;
    lora.dropout = 0.2;
    lora.targets = llama_projection_names();
    model->add_lora(lora);
    std::map<std::string, at::Tensor> fresh;  // copies: at tp = 1 these are the parameters
    for (const auto& [name, tensor] : model->unsharded_trainable_parameters())
      fresh[name] = tensor.clone();
    {
      torch::NoGradGuard no_grad;
      for (auto& [name, parameter] : model->trainable_parameters())
        if (name.find("lora_B") != std::string::npos) parameter.fill_(0.05);
    }
    model->train();
    torch::manual_seed(100 + world()->rank());  // torch's draws differ per rank: unused
    model->set_dropout_keys(dropout_row_keys(7, 3, {10, 11, 12}, mask));
    auto loss = model->loss(model->forward(ids, mask), labels);
    loss.backward();
    model->clear_dropout_keys();
    std::map<std::string, at::Tensor> grads;
    for (const auto& [name, parameter] : model->trainable_parameters())
      grads[name] = parameter.grad();
    return std::tuple{loss.item<double>(), fresh, grads, model};
  };
  const auto [reference_loss, reference_fresh, reference_grads, reference_model] = run(nullptr);
  for (const int tp : tp_widths()) {
    SCOPED_TRACE("tp " + std::to_string(tp));
    parallel::Topology topology(world(), tp);
    const auto [loss, fresh, grads, model] = run(topology.tp_group());
    EXPECT_NEAR(loss, reference_loss, 1e-5 * std::abs(reference_loss));
    for (const auto& [name, tensor] : reference_fresh)
      EXPECT_TRUE(at::equal(fresh.at(name), tensor)) << name << ": fresh adapter";
    // Put the gradients in place of the parameters to gather them in the unsharded layout.
    {
      torch::NoGradGuard no_grad;
      for (auto& [name, parameter] : model->trainable_parameters()) parameter.copy_(grads.at(name));
    }
    for (const auto& [name, gathered] : model->unsharded_trainable_parameters())
      EXPECT_LE(test::relative_error(gathered, reference_grads.at(name)), 1e-5) << name;
  }
}

TEST(TensorParallelModel, MergedAdapterGivesTheSameLogits) {
  torch::NoGradGuard no_grad;
  const auto ids = golden("input_ids"), mask = golden("attention_mask");
  for (const int tp : tp_widths()) {
    parallel::Topology topology(world(), tp);
    auto model = load(TaskType::kSequence, AttentionPolicy::causal(), topology.tp_group(),
                      test::golden_dir() / "adapter_seq");
    model->merge_lora();
    EXPECT_LE(test::relative_error(model->forward(ids, mask), golden("seq_lora_causal_logits")),
              kActivationTolerance)
        << "tp " << tp;
    model->unmerge_lora();
    EXPECT_LE(test::relative_error(model->forward(ids, mask), golden("seq_lora_causal_logits")),
              kActivationTolerance)
        << "tp " << tp;
  }
}

TEST(TensorParallelModel, FreshAdapterIsTheSameAtEveryTp) {
  LoraOptions lora;
  lora.r = 4;
  lora.targets = {"all-linear"};
  auto reference = load(TaskType::kSequence, AttentionPolicy::causal(), nullptr);
  at::manual_seed(11);
  reference->add_lora(lora);
  const auto expected = as_map(reference->trainable_parameters());
  for (const int tp : tp_widths()) {
    parallel::Topology topology(world(), tp);
    auto model = load(TaskType::kSequence, AttentionPolicy::causal(), topology.tp_group());
    at::manual_seed(11);
    model->add_lora(lora);
    const auto unsharded = model->unsharded_trainable_parameters();
    EXPECT_EQ(unsharded.size(), expected.size());
    for (const auto& [name, tensor] : unsharded) {
      if (name.find("lora_") == std::string::npos) continue;  // the head is drawn after the adapter
      EXPECT_TRUE(at::equal(tensor, expected.at(name))) << name << " tp " << tp;
    }
  }
}

// A trained adapter saved at tp is the unsharded PEFT layout of the same adapter saved at tp = 1,
// and it loads back, at tp and at tp = 1, to the same logits.
TEST(TensorParallelModel, SavedAdapterEqualsTp1AndLoadsBack) {
  const auto ids = golden("input_ids"), mask = golden("attention_mask");
  const auto labels = golden("seq_labels");
  auto train_once = [&](LsLlama& model) {
    model.loss(model.forward(ids, mask), labels).backward();
    torch::NoGradGuard no_grad;
    for (auto& [name, tensor] : model.trainable_parameters()) tensor.sub_(0.5 * tensor.grad());
  };
  const test::ScratchDir own("ls_tp_adapter_reference");
  auto reference = load(TaskType::kSequence, AttentionPolicy::causal(), nullptr,
                        test::golden_dir() / "adapter_seq");
  train_once(*reference);
  ls::save_adapter(*reference, own / "tp1");
  at::Tensor trained_logits;
  {
    torch::NoGradGuard no_grad;
    trained_logits = reference->forward(ids, mask);
  }
  const auto expected = Checkpoint::open_file(own / "tp1" / kAdapterWeightsFile);

  for (const int tp : tp_widths()) {
    SCOPED_TRACE("tp " + std::to_string(tp));
    parallel::Topology topology(world(), tp);
    const SharedScratchDir shared("ls_tp_adapter_tp" + std::to_string(tp));
    const auto dir = shared / ("dp" + std::to_string(topology.dp_rank()));
    auto model = load(TaskType::kSequence, AttentionPolicy::causal(), topology.tp_group(),
                      test::golden_dir() / "adapter_seq");
    train_once(*model);
    ls::save_adapter(*model, dir, /*write=*/topology.tp_rank() == 0);
    world()->barrier();

    const auto saved = Checkpoint::open_file(dir / kAdapterWeightsFile);
    EXPECT_EQ(saved.names(), expected.names());
    for (const auto& name : expected.names()) {
      ASSERT_EQ(saved.view(name).sizes(), expected.view(name).sizes()) << name;
      EXPECT_LE(test::relative_error(saved.view(name), expected.view(name)), 1e-5) << name;
    }
    EXPECT_EQ(read_text(dir / kAdapterConfigFile), read_text(own / "tp1" / kAdapterConfigFile));

    torch::NoGradGuard no_grad;
    auto reloaded = load(TaskType::kSequence, AttentionPolicy::causal(), topology.tp_group(), dir);
    EXPECT_LE(test::relative_error(reloaded->forward(ids, mask), trained_logits),
              kActivationTolerance);
    auto reloaded_tp1 = load(TaskType::kSequence, AttentionPolicy::causal(), nullptr, dir);
    EXPECT_LE(test::relative_error(reloaded_tp1->forward(ids, mask), trained_logits),
              kActivationTolerance);
    world()->barrier();  // every rank has read the files before the directory goes
  }
}

// The trainer's optimizer step at tp: without clipping the losses of 4 AdamW steps are golden's;
// with a clipping threshold below the gradient norm they equal tp = 1's, norms and trained
// tensors included.
TEST(TensorParallelModel, AdamWStepsWithClippingEqualTp1) {
  data::Batch batch;
  batch.input_ids = golden("input_ids").to(at::kLong);
  batch.attention_mask = golden("attention_mask").to(at::kLong);
  batch.labels = golden("seq_labels").to(at::kLong);
  batch.example_indices = {0, 1, 2};
  const auto golden_losses = golden("seq_adamw_losses").to(at::kDouble);

  auto run = [&](std::shared_ptr<parallel::Communicator> tp, double max_grad_norm) {
    auto model = load(TaskType::kSequence, AttentionPolicy::causal(), tp,
                      test::golden_dir() / "adapter_seq");
    std::vector<AdamW::Param> params;
    for (auto& [name, tensor] : model->trainable_parameters())
      params.push_back({name, tensor, /*decay=*/true});
    AdamW optimizer(std::move(params), {0.9, 0.999, 1e-8, 0.01});
    StepRunner runner(*model, optimizer, nullptr, nullptr, max_grad_norm, c10::kCPU, tp);
    std::vector<StepStats> steps;
    for (int step = 0; step < 4; ++step) steps.push_back(runner.step({batch}, 1e-2, step));
    return std::pair{steps, as_map(model->unsharded_trainable_parameters())};
  };
  const auto [clipped_reference, reference_params] = run(nullptr, 0.05);
  for (const int tp : tp_widths()) {
    SCOPED_TRACE("tp " + std::to_string(tp));
    parallel::Topology topology(world(), tp);
    const auto unclipped = run(topology.tp_group(), 0.0).first;
    for (int step = 0; step < 4; ++step)
      EXPECT_NEAR(unclipped[step].loss, golden_losses[step].item<double>(), 1e-4)
          << "step " << step;

    const auto [clipped, params] = run(topology.tp_group(), 0.05);
    for (int step = 0; step < 4; ++step) {
      EXPECT_GT(clipped[step].grad_norm, 0.05) << "the threshold clips, step " << step;
      EXPECT_NEAR(clipped[step].loss, clipped_reference[step].loss, 1e-5) << "step " << step;
      EXPECT_NEAR(clipped[step].grad_norm, clipped_reference[step].grad_norm,
                  1e-4 * clipped_reference[step].grad_norm)
          << "step " << step;
    }
    // Adam divides by the root of the second moment, which magnifies float32 rounding of small
    // gradients: the gradient tolerance applies to the parameters after 4 steps.
    for (const auto& [name, tensor] : reference_params)
      EXPECT_LE(test::relative_error(params.at(name), tensor), kGradientTolerance) << name;
  }
}

// Qwen2's q/k/v biases (none on o_proj) shard with their rows; Qwen3's q/k norms, one [head_dim]
// weight for every head, are replicated. A random checkpoint of each, written here, with a random
// adapter on all seven projections: tp gives the logits, loss and every gradient of tp = 1.
TEST(TensorParallelModel, QwenBiasesAndQkNormsGiveTheTp1Model) {
  const std::map<std::string, std::string> families = {
      {"qwen2", R"({"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64,
          "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
          "vocab_size": 50, "tie_word_embeddings": true, "use_sliding_window": false})"},
      {"qwen3", R"({"model_type": "qwen3", "hidden_size": 32, "intermediate_size": 64,
          "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
          "head_dim": 16, "attention_bias": true, "vocab_size": 50})"}};
  torch::manual_seed(5);  // the same batch on every rank
  const auto ids = at::randint(1, 50, {3, 7}, at::kLong);
  auto mask = at::ones({3, 7}, at::kLong);
  mask[1].narrow(0, 4, 3).fill_(0);
  const auto labels = at::randint(0, 3, {3}, at::kLong);
  for (const auto& [family, json] : families) {
    const SharedScratchDir dir("ls_tp_family_" + family);
    if (world()->rank() == 0) {
      std::ofstream(dir / "config.json") << json;
      LsLlama model(parse_llama_config(json, "config.json"), ModelOptions{},
                    head_for(TaskType::kSequence));
      torch::manual_seed(11);
      torch::NoGradGuard no_grad;
      std::vector<std::pair<std::string, at::Tensor>> weights;
      for (const auto& item : model.named_parameters()) {
        const auto& name = item.key();
        auto value = item.value();
        const bool norm = name.find("norm.weight") != std::string::npos;
        value.copy_(norm ? 1 + 0.1 * at::randn_like(value) : 0.1 * at::randn_like(value));
        if (name.rfind("model.", 0) == 0) weights.emplace_back(name, value);
      }
      write_safetensors(dir / "model.safetensors", weights);
      LoraOptions lora;
      lora.r = 4;
      lora.targets = llama_projection_names();
      model.add_lora(lora);
      for (auto& [name, tensor] : model.trainable_parameters())
        tensor.copy_(0.1 * at::randn_like(tensor));
      save_adapter(model, dir / "adapter");
    }
    world()->barrier();
    const auto config = load_llama_config(dir / "config.json");
    for (const int tp : tp_widths()) {
      SCOPED_TRACE(family + " tp " + std::to_string(tp));
      parallel::Topology topology(world(), tp);
      auto load_family = [&](std::shared_ptr<parallel::Communicator> tp) {
        ModelOptions options;
        if (tp) options.projection_factory = tensor_parallel_factory(config, tp);
        auto model = LsLlama::from_pretrained(dir / "", options, head_for(TaskType::kSequence));
        ls::load_adapter(*model, dir / "adapter");
        model->eval();
        return model;
      };
      auto reference = load_family(nullptr);
      auto model = load_family(topology.tp_group());
      // The bias shards are real; Qwen2 has none on o_proj.
      const auto params = model->named_parameters();
      EXPECT_EQ(params["model.layers.0.self_attn.q_proj.bias"].size(0),
                config.num_attention_heads * config.head_dim / tp);
      EXPECT_EQ(params.contains("model.layers.0.self_attn.o_proj.bias"), family == "qwen3");
      EXPECT_EQ(params.contains("model.layers.0.self_attn.q_norm.weight"), family == "qwen3");
      const auto reference_logits = reference->forward(ids, mask);
      reference->loss(reference_logits, labels).backward();
      const auto logits = model->forward(ids, mask);
      model->loss(logits, labels).backward();
      EXPECT_LE(test::relative_error(logits, reference_logits), kActivationTolerance);
      const auto grads = parallel::unsharded_parameters(*model, /*trainable_only=*/true,
                                                        /*gradients=*/true);
      const auto reference_params = as_map(reference->trainable_parameters());
      ASSERT_EQ(grads.size(), reference_params.size());
      for (const auto& [name, grad] : grads) {
        ASSERT_TRUE(reference_params.count(name)) << name;
        EXPECT_LE(test::relative_error(grad, reference_params.at(name).grad()), kGradientTolerance)
            << name;
      }
    }
  }
}

}  // namespace
}  // namespace ls
