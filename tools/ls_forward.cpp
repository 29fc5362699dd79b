// ls_forward: one forward (and optionally backward) pass of LsLlama on a saved batch, written to
// a safetensors file. It is the parity and debugging tool: the Python reference tests run HF
// transformers + PEFT on the same inputs and compare tensor by tensor.
//
//   in:  input_ids, attention_mask [B, T] (+ seq_labels [B] or tok_labels [B, T] with --labels;
//        multi-label seq_labels are [B, C] 0/1, regression [B] numbers)
//   out: hidden [B, T, H], logits, loss (with --labels), and with --grads the gradient of every
//        trainable tensor under its PEFT name (base_model.model.model.layers.0...lora_A.weight).
//   --save-adapter writes the model's adapter (loaded, or fresh from --lora-*) as PEFT saves it.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/adapter/peft_adapter.h"
#include "core/base/error.h"
#include "core/io/checkpoint.h"
#include "core/io/safetensors.h"
#include "core/model/dtype.h"
#include "core/model/ls_llama.h"
#include "launch/cli.h"

namespace {

// hidden, logits and (with labels) the loss and the gradients, as ls_forward writes them.
std::vector<std::pair<std::string, at::Tensor>> run(ls::LsLlama& model, const at::Tensor& input_ids,
                                                    const at::Tensor& attention_mask,
                                                    const at::Tensor& labels, bool with_grads) {
  std::optional<at::NoGradGuard> no_grad;
  if (!with_grads) no_grad.emplace();
  const auto hidden = model.hidden_states(input_ids, attention_mask);
  const auto logits = model.logits(hidden, attention_mask);
  std::vector<std::pair<std::string, at::Tensor>> results = {{"hidden", hidden.to(at::kFloat)},
                                                             {"logits", logits}};
  if (!labels.defined()) return results;
  const auto loss = model.loss(logits, labels.to(logits.device()));
  results.emplace_back("loss", loss);
  if (!with_grads) return results;
  loss.backward();
  for (const auto& [name, parameter] : model.trainable_parameters()) {
    const auto& grad = parameter.grad();
    results.emplace_back(ls::LsLlama::peft_name(name),
                         grad.defined() ? grad.to(at::kFloat) : at::zeros_like(parameter));
  }
  return results;
}

int forward_main(int argc, char** argv) {
  CLI::App app{
      "Run LsLlama forward/backward on a saved batch and write the results (parity tool)."};
  std::string model_dir, adapter_dir, task = "sequence", attention = "causal", pooling = "last";
  std::string inputs, out, dtype = "f32", device = "cpu", save_adapter_dir, problem;
  std::vector<double> class_weights;
  double label_smoothing = 0;
  std::vector<std::string> lora_targets = ls::LoraOptions{}.targets;
  int64_t num_labels = 2, lora_r = 0;
  double lora_alpha = 8;
  bool rslora = false;
  uint64_t seed = 0;
  bool attend_to_padding = false, with_labels = false, with_grads = false, verbose = false;
  app.add_option("--model", model_dir,
                 "HF model directory: llama, mistral, qwen2 or qwen3 (config.json + safetensors)")
      ->required();
  app.add_option("--adapter", adapter_dir, "PEFT adapter directory (LoRA + head)");
  app.add_option("--task", task, "sequence | token")->required();
  app.add_option("--attention", attention,
                 "causal | bidirectional | bidirectional:K- | bidirectional:K-L");
  app.add_flag("--attend-to-padding", attend_to_padding,
               "let every token attend to padding (the original LS-unLLaMA code)");
  app.add_option("--pooling", pooling, "sequence pooling: last | mean | max");
  app.add_option("--num-labels", num_labels, "labels of a fresh head (without --adapter)");
  app.add_option("--problem-type", problem,
                 "single_label | multi_label | regression (loss and label dtype); default: the "
                 "adapter's head_config.json, else single_label");
  app.add_option("--class-weights", class_weights,
                 "cross-entropy class weights (single_label) or BCE pos_weight (multi_label)")
      ->delimiter(',');
  app.add_option("--label-smoothing", label_smoothing,
                 "single_label cross-entropy label smoothing");
  app.add_option("--seed", seed, "seed for the fresh head and adapter");
  app.add_option("--lora-r", lora_r, "add a fresh LoRA adapter of this rank (without --adapter)");
  app.add_option("--lora-alpha", lora_alpha, "alpha of the fresh adapter");
  app.add_option("--lora-targets", lora_targets, "modules of the fresh adapter")->delimiter(',');
  app.add_flag("--rslora", rslora, "scale the fresh adapter by alpha / sqrt(r)");
  app.add_option("--save-adapter", save_adapter_dir,
                 "write the adapter (PEFT layout) to this directory");
  app.add_option("--dtype", dtype, "base weights: f32 | bf16 | f16");
  app.add_option("--device", device, "cpu | cuda | cuda:N");
  app.add_option("--inputs", inputs, "safetensors with input_ids, attention_mask (and labels)")
      ->required();
  app.add_option("--out", out, "safetensors to write")->required();
  app.add_flag("--labels", with_labels, "read seq_labels/tok_labels and write the loss");
  app.add_flag("--grads", with_grads, "backward from the loss; write every trainable gradient");
  app.add_flag("-v,--verbose", verbose, "report the weight loading time on stderr");
  if (!ls::cli::parse(app, argc, argv)) return 0;
  if (with_grads && !with_labels) ls::fail("--grads needs --labels (gradients are of the loss)");
  if (lora_r > 0 && !adapter_dir.empty()) ls::fail("--lora-r and --adapter both set: pick one");

  ls::ModelOptions options;
  options.dtype = ls::parse_dtype(dtype, "--dtype");
  try {
    options.device = c10::Device(device);
  } catch (const c10::Error&) {
    ls::fail("--device: '{}' is not a device (cpu, cuda, cuda:N)", device);
  }
  options.attention = ls::parse_attention_policy(attention, "--attention");
  options.attention.attend_to_padding = attend_to_padding;
  ls::HeadOptions head;
  head.task = ls::parse_enum<ls::TaskType>(task, "--task");
  head.pooling = ls::parse_enum<ls::Pooling>(pooling, "--pooling");
  if (problem.empty() && !adapter_dir.empty()) {
    const auto head_config = std::filesystem::path(adapter_dir) / ls::kHeadConfigFile;
    if (std::filesystem::exists(head_config)) {
      std::ifstream in(head_config);
      const auto saved = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (saved.is_object() && saved.contains("problem_type") && saved["problem_type"].is_string())
        problem = saved["problem_type"].get<std::string>();
    }
  }
  head.problem =
      ls::parse_enum<ls::ProblemType>(problem.empty() ? "single_label" : problem, "--problem-type");
  head.num_labels = head.problem == ls::ProblemType::kRegression ? 1 : num_labels;
  // The loss settings apply to the head the model ends with (an adapter brings its own label
  // count), so they are set after loading.
  ls::LossOptions loss;
  loss.class_weights = class_weights;
  loss.label_smoothing = label_smoothing;
  at::manual_seed(seed);

  // The batch first: a bad input file fails before seconds of weight loading.
  const auto batch = ls::Checkpoint::open_file(inputs);
  const auto input_ids = batch.view("input_ids").to(at::kLong);
  const auto attention_mask = batch.view("attention_mask").to(at::kLong);
  at::Tensor labels;
  if (with_labels)
    labels = batch.view(head.task == ls::TaskType::kSequence ? "seq_labels" : "tok_labels")
                 .to(head.problem == ls::ProblemType::kSingleLabel ? at::kLong : at::kFloat);

  ls::LoadStats stats;
  auto model = ls::LsLlama::from_pretrained(model_dir, options, head, &stats);
  if (verbose)
    std::fprintf(stderr, "ls_forward: loaded %lld tensors (%.3f GB, %s) from %s in %.2f s\n",
                 static_cast<long long>(stats.tensors), static_cast<double>(stats.bytes) / 1e9,
                 dtype.c_str(), model_dir.c_str(), stats.seconds);
  if (!adapter_dir.empty()) ls::load_adapter(*model, adapter_dir);
  if (lora_r > 0) {
    ls::LoraOptions lora;
    lora.r = lora_r;
    lora.alpha = lora_alpha;
    lora.use_rslora = rslora;
    lora.targets = lora_targets;
    model->add_lora(lora);
  }
  model->head().set_loss_function(
      ls::LossFunction(head.problem, loss, model->head().num_labels(), options.device));
  model->eval();  // no dropout: the pass is deterministic

  std::vector<std::pair<std::string, at::Tensor>> results;
  const auto forward_start = std::chrono::steady_clock::now();
  try {
    results = run(*model, input_ids, attention_mask, labels, with_grads);
  } catch (const ls::UserError& e) {
    ls::fail("{}: {}", inputs, e.what());  // bad ids or labels: name the batch file
  }
  if (verbose)  // the first pass also maps in the weights that loading left to their first use
    std::fprintf(
        stderr, "ls_forward: forward%s in %.2f s\n", with_grads ? " and backward" : "",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - forward_start).count());
  if (!save_adapter_dir.empty()) ls::save_adapter(*model, save_adapter_dir);
  ls::write_safetensors(out, results);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::run_main("ls_forward", forward_main, argc, argv);
}
