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
#include <optional>
#include <string>

#include "core/adapter/peft_adapter.h"
#include "core/base/error.h"
#include "core/io/checkpoint.h"
#include "core/io/safetensors.h"
#include "core/model/dtype.h"
#include "core/model/llama_config.h"
#include "core/model/ls_llama.h"
#include "core/run/config.h"
#include "core/run/run_setup.h"
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

// The flags that describe the model by hand; --config describes it instead, as ls_train reads it.
struct ModelFlags {
  std::string model_dir, task, attention = "causal", pooling = "last", dtype = "f32";
  std::string device = "cpu", problem;
  std::vector<double> class_weights;
  double label_smoothing = 0;
  std::vector<std::string> lora_targets = ls::LoraOptions{}.targets;
  int64_t lora_r = 0;
  double lora_alpha = 8;
  bool rslora = false, attend_to_padding = false;
  uint64_t seed = 0;
};

// A model and the head settings its labels are read with.
struct Built {
  std::shared_ptr<ls::LsLlama> model;
  ls::HeadOptions head;
  c10::Device device = c10::kCPU;
};

// The model from the flags: --model, --task, --attention, ... and --adapter or a fresh --lora-r.
Built model_from_flags(const ModelFlags& f, const std::string& adapter_dir, int64_t num_labels,
                       bool verbose) {
  if (f.lora_r > 0 && !adapter_dir.empty()) ls::fail("--lora-r and --adapter both set: pick one");
  ls::ModelOptions options;
  options.dtype = ls::parse_dtype(f.dtype, "--dtype");
  try {
    options.device = c10::Device(f.device);
  } catch (const c10::Error&) {
    ls::fail("--device: '{}' is not a device (cpu, cuda, cuda:N)", f.device);
  }
  options.attention = ls::parse_attention_policy(f.attention, "--attention");
  options.attention.attend_to_padding = f.attend_to_padding;
  ls::HeadOptions head;
  head.task = ls::parse_enum<ls::TaskType>(f.task, "--task");
  head.pooling = ls::parse_enum<ls::Pooling>(f.pooling, "--pooling");
  std::string problem = f.problem;
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
  at::manual_seed(f.seed);

  ls::LoadStats stats;
  Built built{ls::LsLlama::from_pretrained(f.model_dir, options, head, &stats), head,
              options.device};
  if (verbose)
    std::fprintf(stderr, "ls_forward: loaded %lld tensors (%.3f GB, %s) from %s in %.2f s\n",
                 static_cast<long long>(stats.tensors), static_cast<double>(stats.bytes) / 1e9,
                 f.dtype.c_str(), f.model_dir.c_str(), stats.seconds);
  if (!adapter_dir.empty()) ls::load_adapter(*built.model, adapter_dir);
  if (f.lora_r > 0) {
    ls::LoraOptions lora;
    lora.r = f.lora_r;
    lora.alpha = f.lora_alpha;
    lora.use_rslora = f.rslora;
    lora.targets = f.lora_targets;
    built.model->add_lora(lora);
  }
  // The loss settings apply to the head the model ends with (an adapter brings its own label
  // count), so they are set after loading.
  ls::LossOptions loss;
  loss.class_weights = f.class_weights;
  loss.label_smoothing = f.label_smoothing;
  built.model->head().set_loss_function(
      ls::LossFunction(head.problem, loss, built.model->head().num_labels(), options.device));
  return built;
}

// The model from a run config, through the run path ls_train takes (check_model_dir,
// resolve_placement, load_model): model.*, task.*, lora.* and train.seed; the head has
// task.labels' count, else --num-labels; --adapter (or lora.init_from) replaces the fresh LoRA.
Built model_from_config(const ls::Config& config, const std::string& adapter_dir,
                        int64_t num_labels, bool verbose) {
  ls::check_model_dir(config);
  const ls::Placement placement = ls::resolve_placement(config, 0, 1);
  if (config.task.problem_type == ls::ProblemType::kRegression)
    num_labels = 1;
  else if (!config.task.labels.empty())
    num_labels = static_cast<int64_t>(config.task.labels.size());
  if (config.task.class_weights.mode == ls::ClassWeightsMode::kAuto)
    ls::fail(
        "task.class_weights: auto is counted over a training split, which ls_forward does not "
        "read; give the weights as a list");
  ls::LossOptions loss;
  loss.class_weights = config.task.class_weights.values;
  loss.label_smoothing = config.task.label_smoothing;
  ls::LoadStats stats;
  const std::string adapter = adapter_dir.empty() ? config.lora.init_from : adapter_dir;
  Built built{ls::load_model(config, placement, static_cast<int>(num_labels), adapter, &stats,
                             nullptr, loss),
              {},
              placement.device};
  built.head = built.model->head_options();
  if (verbose)
    std::fprintf(stderr, "ls_forward: loaded %lld tensors (%.3f GB) from %s in %.2f s\n",
                 static_cast<long long>(stats.tensors), static_cast<double>(stats.bytes) / 1e9,
                 config.model.path.c_str(), stats.seconds);
  return built;
}

// ls_train refuses a data.max_length beyond a sliding attention window (check_model_dir); a saved
// batch longer than the window is refused here the same way, before the model sees it.
void check_window(const std::string& model_dir, const at::Tensor& input_ids,
                  const std::string& inputs) {
  const auto config = ls::load_llama_config(std::filesystem::path(model_dir) / "config.json");
  if (config.sliding_window && input_ids.size(1) > *config.sliding_window)
    ls::fail(
        "{}: a batch of length {} exceeds the model's sliding attention window of {} tokens "
        "(config.json 'sliding_window'); ls-train attends over the whole sequence, as ls_train "
        "refuses a data.max_length above the window",
        inputs, input_ids.size(1), *config.sliding_window);
}

int forward_main(int argc, char** argv) {
  CLI::App app{
      "Run LsLlama forward/backward on a saved batch and write the results (parity tool). The "
      "model comes from --config (as ls_train builds it) or from --model, --task and the other "
      "model flags."};
  ModelFlags f;
  std::string config_path, adapter_dir, inputs, out, save_adapter_dir;
  std::vector<std::string> overrides;
  int64_t num_labels = 2;
  bool with_labels = false, with_grads = false, verbose = false;
  auto* config_opt = app.add_option(
      "--config", config_path,
      "a run config (YAML): model, attention, head, LoRA and seed as ls_train builds them");
  app.add_option("--set", overrides, "override a config key, e.g. --set model.dtype=bf16")
      ->allow_extra_args(false);
  const std::vector<CLI::Option*> model_flags = {
      app.add_option(
          "--model", f.model_dir,
          "HF model directory: llama, mistral, qwen2 or qwen3 (config.json + safetensors)"),
      app.add_option("--task", f.task, "sequence | token"),
      app.add_option("--attention", f.attention,
                     "causal | bidirectional | bidirectional:K- | bidirectional:K-L"),
      app.add_flag("--attend-to-padding", f.attend_to_padding,
                   "let every token attend to padding (the original LS-unLLaMA code)"),
      app.add_option("--pooling", f.pooling, "sequence pooling: last | mean | max"),
      app.add_option("--problem-type", f.problem,
                     "single_label | multi_label | regression (loss and label dtype); default: "
                     "the adapter's head_config.json, else single_label"),
      app.add_option("--class-weights", f.class_weights,
                     "cross-entropy class weights (single_label) or BCE pos_weight (multi_label)")
          ->delimiter(','),
      app.add_option("--label-smoothing", f.label_smoothing,
                     "single_label cross-entropy label smoothing"),
      app.add_option("--seed", f.seed, "seed for the fresh head and adapter"),
      app.add_option("--lora-r", f.lora_r,
                     "add a fresh LoRA adapter of this rank (without --adapter)"),
      app.add_option("--lora-alpha", f.lora_alpha, "alpha of the fresh adapter"),
      app.add_option("--lora-targets", f.lora_targets, "modules of the fresh adapter")
          ->delimiter(','),
      app.add_flag("--rslora", f.rslora, "scale the fresh adapter by alpha / sqrt(r)"),
      app.add_option("--dtype", f.dtype, "base weights: f32 | bf16 | f16"),
      app.add_option("--device", f.device, "cpu | cuda | cuda:N")};
  for (CLI::Option* flag : model_flags) config_opt->excludes(flag);
  app.add_option("--adapter", adapter_dir, "PEFT adapter directory (LoRA + head)");
  app.add_option("--num-labels", num_labels,
                 "labels of a fresh head (without --adapter; with --config: when task.labels is "
                 "empty)");
  app.add_option("--save-adapter", save_adapter_dir,
                 "write the adapter (PEFT layout) to this directory");
  app.add_option("--inputs", inputs, "safetensors with input_ids, attention_mask (and labels)")
      ->required();
  app.add_option("--out", out, "safetensors to write")->required();
  app.add_flag("--labels", with_labels, "read seq_labels/tok_labels and write the loss");
  app.add_flag("--grads", with_grads, "backward from the loss; write every trainable gradient");
  app.add_flag("-v,--verbose", verbose, "report the weight loading time on stderr");
  if (!ls::cli::parse(app, argc, argv)) return 0;
  if (with_grads && !with_labels) ls::fail("--grads needs --labels (gradients are of the loss)");
  if (!overrides.empty() && config_path.empty()) ls::fail("--set needs --config");
  if (config_path.empty() && (f.model_dir.empty() || f.task.empty()))
    ls::fail("give --model and --task, or --config CFG.yaml to build the model as ls_train does");
  std::optional<ls::Config> config;
  if (!config_path.empty()) config = ls::Config::load(config_path, overrides);

  // The batch first: a bad input file fails before seconds of weight loading.
  const auto batch = ls::Checkpoint::open_file(inputs);
  const auto input_ids = batch.view("input_ids").to(at::kLong);
  const auto attention_mask = batch.view("attention_mask").to(at::kLong);
  const std::string model_dir = config ? config->model.path : f.model_dir;
  if (!model_dir.empty() &&
      std::filesystem::exists(std::filesystem::path(model_dir) / "config.json"))
    check_window(model_dir, input_ids, inputs);

  Built built = config ? model_from_config(*config, adapter_dir, num_labels, verbose)
                       : model_from_flags(f, adapter_dir, num_labels, verbose);
  at::Tensor labels;
  if (with_labels)
    labels = batch.view(built.head.task == ls::TaskType::kSequence ? "seq_labels" : "tok_labels")
                 .to(built.head.problem == ls::ProblemType::kSingleLabel ? at::kLong : at::kFloat);
  built.model->eval();  // no dropout: the pass is deterministic

  std::vector<std::pair<std::string, at::Tensor>> results;
  const auto forward_start = std::chrono::steady_clock::now();
  try {
    results = run(*built.model, input_ids.to(built.device), attention_mask.to(built.device), labels,
                  with_grads);
  } catch (const ls::UserError& e) {
    ls::fail("{}: {}", inputs, e.what());  // bad ids or labels: name the batch file
  }
  if (verbose)  // the first pass also maps in the weights that loading left to their first use
    std::fprintf(
        stderr, "ls_forward: forward%s in %.2f s\n", with_grads ? " and backward" : "",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - forward_start).count());
  if (!save_adapter_dir.empty()) ls::save_adapter(*built.model, save_adapter_dir);
  ls::write_safetensors(out, results);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::run_main("ls_forward", forward_main, argc, argv);
}
