// ls_bench: speed and memory of one training step, as ls_train runs it, at named LLaMA shapes.
//
//   ls_bench [--shape tiny|1b|7b|13b | --model HF_DIR] [--batch 8] [--length 64]
//            [--task sequence|token] [--lora-r 12 --lora-alpha 32 --lora-dropout 0.1
//            --lora-targets q_proj,v_proj] [--attention causal|bidirectional]
//            [--activation-checkpointing none|selective|full] [--optimizer fused|reference]
//            [--dtype auto|f32|bf16|f16] [--device auto|cpu|cuda] [--threads N]
//            [--warmup 3] [--steps 8] [--floor] [--breakdown] [--peak-tflops X] [--json FILE]
//
// A step is core/train/train_step.h's StepRunner with AdamW (forward, backward, clipping, optimizer
// step), synchronized: what ls_train runs. Synthetic weights are made on the device in the base
// dtype (normal * 0.02, norms 1), so a 7B model never exists in float32 on the host. Reported: the
// median ms/step of the timed steps, tokens/s, peak memory (CUDA: max allocated and reserved;
// CPU: peak RSS), model FLOP/s and MFU (formula in docs/BENCH.md). --floor also times the step's
// frozen-base GEMMs and attention alone (a CUDA graph on a GPU), the speed no implementation of
// this step beats; --breakdown times forward, backward and the optimizer separately.
#include <ATen/ATen.h>
#include <sys/resource.h>
#include <torch/csrc/autograd/autograd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/model/dtype.h"
#include "core/model/llama_sharding.h"
#include "core/model/ls_llama.h"
#include "core/run/config.h"
#include "core/run/run_setup.h"
#include "core/train/adamw.h"
#include "core/train/train_step.h"
#include "launch/cli.h"

#if defined(LS_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct NamedShape {
  const char* name;
  int64_t hidden, layers, heads, kv_heads, intermediate, vocab;
};

// tiny: small enough to time on two CPU threads; 1b: TinyLlama-1.1B; 7b, 13b: LLaMA-2.
constexpr NamedShape kShapes[] = {
    {"tiny", 256, 4, 8, 4, 688, 32000},
    {"1b", 2048, 22, 32, 4, 5632, 32000},
    {"7b", 4096, 32, 32, 32, 11008, 32000},
    {"13b", 5120, 40, 40, 40, 13824, 32000},
};

ls::LlamaConfig shape_config(const std::string& name, int64_t length) {
  for (const auto& s : kShapes) {
    if (name != s.name) continue;
    ls::LlamaConfig c;
    c.vocab_size = s.vocab;
    c.hidden_size = s.hidden;
    c.intermediate_size = s.intermediate;
    c.num_hidden_layers = s.layers;
    c.num_attention_heads = s.heads;
    c.num_key_value_heads = s.kv_heads;
    c.head_dim = s.hidden / s.heads;
    c.max_position_embeddings = std::max<int64_t>(4096, length);
    c.rms_norm_eps = 1e-5;
    return c;
  }
  ls::fail("--shape: '{}' is not a shape (tiny, 1b, 7b, 13b)", name);
}

void synchronize(const c10::Device& device) {
#if defined(LS_WITH_CUDA)
  if (device.is_cuda()) c10::cuda::device_synchronize();
#else
  (void)device;
#endif
}

double elapsed_ms(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// CPU time of the process, all threads: on a shared machine it counts the work done and not the
// time spent waiting for a core (with OMP_WAIT_POLICY=PASSIVE, idle threads sleep).
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return double(t.tv_sec) + 1e-6 * double(t.tv_usec); };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// `steps` timed calls of `fn` after `warmup` untimed ones, each synchronized: the median, in ms
// (all of them in `all`; the mean process CPU time per timed call in `cpu_ms`).
double time_median(const std::function<void()>& fn, int warmup, int steps,
                   const c10::Device& device, std::vector<double>* all = nullptr,
                   double* cpu_ms = nullptr) {
  for (int i = 0; i < warmup; ++i) fn();
  synchronize(device);
  std::vector<double> times;
  const double cpu_start = cpu_seconds();
  for (int i = 0; i < steps; ++i) {
    const auto start = Clock::now();
    fn();
    synchronize(device);
    times.push_back(elapsed_ms(start));
  }
  if (cpu_ms) *cpu_ms = 1000 * (cpu_seconds() - cpu_start) / double(steps);
  if (all) *all = times;
  return median(times);
}

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
  }
  return "cpu";
}

std::string device_name(const c10::Device& device) {
#if defined(LS_WITH_CUDA)
  if (device.is_cuda()) return at::cuda::getDeviceProperties(device.index())->name;
#endif
  return cpu_name();
}

// Dense bf16/f16 tensor-core peak by device name, TFLOP/s (vendor data sheets); 0 = unknown.
double lookup_peak_tflops(const std::string& name, c10::ScalarType dtype) {
  if (dtype == c10::kFloat) return 0;  // f32 peaks depend on TF32 settings: give --peak-tflops
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (has("H200")) return 989;
  if (has("H100")) return has("PCIe") ? 756 : 989;
  if (has("A100")) return 312;
  if (has("L40S")) return 362;
  if (has("RTX 4090")) return 165;
  return 0;
}

// Projection shapes (in, out) by name.
std::pair<int64_t, int64_t> projection_shape(const ls::LlamaConfig& c, const std::string& name) {
  const auto shape = ls::llama_projection_shape(ls::layer_shape(c), name);
  return {shape.in_features, shape.out_features};
}

// Model FLOPs of one step (docs/BENCH.md): frozen base = forward GEMMs + backward-to-activation
// GEMMs (2x forward, no weight gradients); attention forward + backward (3x forward, causal
// counts the unmasked half); LoRA forward + both backward products (3x forward). Recomputation
// under activation checkpointing is not model work and is not counted.
struct Flops {
  double base = 0, attention = 0, lora = 0;
  double total() const { return base + attention + lora; }
};

Flops model_flops(const ls::LlamaConfig& c, int64_t batch, int64_t length,
                  const ls::LoraOptions& lora, bool causal) {
  const double tokens = double(batch) * double(length);
  double linear_params = 0, lora_params = 0;
  for (const auto& name : ls::llama_projection_names()) {
    const auto [in, out] = projection_shape(c, name);
    linear_params += double(in) * double(out);
    const bool targeted =
        std::find(lora.targets.begin(), lora.targets.end(), name) != lora.targets.end() ||
        std::find(lora.targets.begin(), lora.targets.end(), "all-linear") != lora.targets.end();
    if (targeted) lora_params += double(lora.r) * double(in + out);
  }
  const double layers = double(c.num_hidden_layers);
  Flops f;
  f.base = 2 * (2 * tokens * linear_params) * layers;
  const double attention_forward = 4.0 * double(batch) * double(length) * double(length) *
                                   double(c.num_attention_heads * c.head_dim) *
                                   (causal ? 0.5 : 1.0);
  f.attention = 3 * attention_forward * layers;
  f.lora = 3 * (2 * tokens * lora_params) * layers;
  return f;
}

// The floor of a step: its frozen-base GEMMs (per layer 7 forward, 7 backward to activations,
// on the model's own weights) and attention forward + backward, alone. On a GPU each part is
// captured once as a CUDA graph and replayed (no launch gaps); on the CPU, a plain loop.
struct Floor {
  double gemm_ms = 0, attention_ms = 0;
  std::string method = "loop";
  double total_ms() const { return gemm_ms + attention_ms; }
};

double time_replays(const std::function<void()>& fn, int warmup, int steps,
                    const c10::Device& device, std::string* method) {
#if defined(LS_WITH_CUDA)
  if (device.is_cuda()) {
    try {
      auto stream = c10::cuda::getStreamFromPool(false, device.index());
      c10::cuda::CUDAStreamGuard guard(stream);
      for (int i = 0; i < 3; ++i) fn();  // warm up on the capture stream (cuBLAS workspaces)
      stream.synchronize();
      at::cuda::CUDAGraph graph;
      graph.capture_begin();
      fn();
      graph.capture_end();
      const double ms = time_median([&] { graph.replay(); }, warmup, steps, device);
      *method = "cuda_graph";
      return ms;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ls_bench: CUDA graph capture failed (%s); timing a plain loop\n",
                   e.what());
      c10::cuda::device_synchronize();
    }
  }
#endif
  *method = "loop";
  return time_median(fn, warmup, steps, device);
}

Floor time_floor(ls::LsLlama& model, int64_t batch, int64_t length, bool causal, int warmup,
                 int steps, const c10::Device& device, c10::ScalarType dtype) {
  at::NoGradGuard no_grad;
  const auto& c = model.config();
  const int64_t tokens = batch * length;
  const auto options = at::TensorOptions().dtype(dtype).device(device);
  // The model's frozen weights, layer by layer; one input and output gradient per shape.
  std::vector<at::Tensor> weights;
  std::vector<at::Tensor> inputs, grads;
  for (const auto& ref : model.model().projections()) {
    auto* linear = dynamic_cast<ls::LoraLinear*>(ref.projection.get());
    LS_ASSERT(linear != nullptr, "floor: projection {} is not a LoraLinear", ref.path);
    weights.push_back(linear->weight());
  }
  // Outputs are written in place (no allocation inside the captured graph, and a 7B model's
  // floor needs no more memory than one layer's activations).
  std::vector<at::Tensor> outputs, input_grads;
  const auto& names = ls::llama_projection_names();
  for (const auto& name : names) {
    const auto [in, out] = projection_shape(c, name);
    inputs.push_back(at::randn({tokens, in}, options));
    grads.push_back(at::randn({tokens, out}, options));
    outputs.push_back(at::empty({tokens, out}, options));
    input_grads.push_back(at::empty({tokens, in}, options));
  }
  const size_t per_layer = names.size();
  auto gemms = [&] {
    for (size_t i = 0; i < weights.size(); ++i) {
      const size_t k = i % per_layer;
      at::mm_out(outputs[k], inputs[k], weights[i].t());  // x W^T
      at::mm_out(input_grads[k], grads[k], weights[i]);   // dY W
    }
  };

  const auto q_shape = std::vector<int64_t>{batch, c.num_attention_heads, length, c.head_dim};
  const auto kv_shape = std::vector<int64_t>{batch, c.num_key_value_heads, length, c.head_dim};
  auto q = at::randn(q_shape, options).requires_grad_(true);
  auto k = at::randn(kv_shape, options).requires_grad_(true);
  auto v = at::randn(kv_shape, options).requires_grad_(true);
  const auto grad_out = at::randn(q_shape, options);
  const bool gqa = c.num_attention_heads != c.num_key_value_heads;
  std::vector<at::Tensor> attention_grads;  // the last layer's, kept so nothing is elided
  auto attention = [&] {
    at::AutoGradMode grad_mode(true);
    for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
      auto out =
          at::scaled_dot_product_attention(q, k, v, std::nullopt, 0.0, causal, std::nullopt, gqa);
      attention_grads = torch::autograd::grad({out}, {q, k, v}, {grad_out});
    }
  };
  Floor floor;
  std::string method;
  floor.gemm_ms = time_replays(gemms, warmup, steps, device, &method);
  floor.method = method;
  floor.attention_ms = time_replays(attention, warmup, steps, device, &method);
  if (method != floor.method) floor.method += "+" + method;
  return floor;
}

ls::data::Batch make_batch(const ls::LlamaConfig& c, const ls::HeadOptions& head, int64_t batch,
                           int64_t length, bool pin) {
  ls::data::Batch b;
  b.input_ids = at::randint(0, c.vocab_size, {batch, length}, at::kLong);
  b.attention_mask = at::ones({batch, length}, at::kLong);  // full-length sequences
  if (head.problem == ls::ProblemType::kMultiLabel)
    b.labels = at::randint(0, 2, {batch, head.num_labels}, at::kFloat);
  else if (head.problem == ls::ProblemType::kRegression)
    b.labels = at::randn({batch}, at::kFloat);
  else
    b.labels = head.task == ls::TaskType::kSequence
                   ? at::randint(0, head.num_labels, {batch}, at::kLong)
                   : at::randint(0, head.num_labels, {batch, length}, at::kLong);
  if (pin) {
    b.input_ids = b.input_ids.pin_memory();
    b.attention_mask = b.attention_mask.pin_memory();
    b.labels = b.labels.pin_memory();
  }
  b.example_indices.resize(static_cast<size_t>(batch));
  std::iota(b.example_indices.begin(), b.example_indices.end(), 0);
  return b;
}

// Frozen weights, filled in place on their device: normal(0, 0.02), RMSNorm weights 1.
void fill_synthetic(ls::LlamaModel& model) {
  at::NoGradGuard no_grad;
  for (const auto& item : model.named_parameters()) {
    auto tensor = item.value();
    const auto& name = item.key();
    if (name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0)
      tensor.fill_(1.0);
    else
      tensor.normal_(0.0, 0.02);
  }
}

std::string iso_time() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

void write_json_atomically(const std::string& path, const json& value) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) ls::fail("--json: cannot write {}", path);
    out << value.dump(2) << "\n";
    if (!out) ls::fail("--json: cannot write {}", path);
  }
  fs::rename(tmp, path);
}

int bench_main(int argc, char** argv) {
  CLI::App app{
      "Speed and memory of one ls-train training step (forward, backward, AdamW). The model comes "
      "from --config (as ls_train builds it: model, head, LoRA, optimizer, seed) or from the model "
      "flags (--shape or --model, --lora-*, ...); --batch, --length and the timing flags apply to "
      "both."};
  std::string config_path;
  std::vector<std::string> overrides;
  std::string shape = "tiny", model_dir, task_name = "sequence", attention = "causal";
  std::string checkpointing = "none", optimizer_name = "fused", dtype_name = "auto";
  std::string device_spec = "auto", json_path, dropout_masks = "keyed";
  std::vector<std::string> lora_targets = ls::LoraOptions{}.targets;
  int64_t batch = 8, length = 64, num_labels = 2, lora_r = 12;
  double lora_alpha = 32, lora_dropout = 0.1, lr = 1e-4, max_grad_norm = 1.0, peak_tflops = 0;
  int warmup = 3, steps = 8, threads = 0;
  uint64_t seed = 0;
  bool floor_flag = false, breakdown = false, quiet = false;
  app.option_defaults()->always_capture_default();  // --help shows every default
  auto* config_opt = app.add_option(
      "--config", config_path,
      "a run config (YAML): the model, head, LoRA, optimizer and seed as ls_train builds them; "
      "--batch and --length default to its micro-batch and data.max_length");
  app.add_option("--set", overrides, "override a config key, e.g. --set lora.r=16")
      ->allow_extra_args(false);
  const std::vector<CLI::Option*> model_flags = {
      app.add_option("--shape", shape, "synthetic weights at a named shape: tiny | 1b | 7b | 13b"),
      app.add_option("--model", model_dir, "a real HF LLaMA directory instead of --shape"),
      app.add_option("--task", task_name, "sequence | token"),
      app.add_option("--num-labels", num_labels, "classes of the head"),
      app.add_option("--lora-r", lora_r, "LoRA rank"),
      app.add_option("--lora-alpha", lora_alpha, "LoRA alpha"),
      app.add_option("--lora-dropout", lora_dropout, "dropout on the LoRA input"),
      app.add_option("--lora-targets", lora_targets, "modules with adapters")->delimiter(','),
      app.add_option("--attention", attention, "causal | bidirectional"),
      app.add_option("--activation-checkpointing", checkpointing, "none | selective | full"),
      app.add_option("--optimizer", optimizer_name,
                     "AdamW: fused (ls_train's default) | reference"),
      app.add_option("--dtype", dtype_name,
                     "frozen base: auto (bf16 on GPU, f32 on CPU) | f32 | bf16 | f16"),
      app.add_option("--device", device_spec, "auto | cpu | cuda | cuda:N"),
      app.add_option("--lr", lr, "AdamW learning rate"),
      app.add_option("--max-grad-norm", max_grad_norm, "gradient clipping as ls_train (0: none)"),
      app.add_option("--seed", seed, "seed for weights, adapters and batch")};
  for (CLI::Option* flag : model_flags) config_opt->excludes(flag);
  auto* batch_opt = app.add_option("--batch", batch, "examples per step");
  auto* length_opt =
      app.add_option("--length", length, "tokens per example (all real, no padding)");
  app.add_option("--dropout-masks", dropout_masks,
                 "keyed (ls_train's: by example, step and site) | generator (torch's draws)");
  app.add_option("--threads", threads, "CPU threads for torch (0: torch's default)");
  app.add_option("--warmup", warmup, "untimed steps first");
  app.add_option("--steps", steps, "timed steps (the median is reported)");
  app.add_flag("--floor", floor_flag, "also time the step's GEMMs and attention alone");
  app.add_flag("--breakdown", breakdown, "also time forward, backward and optimizer apart");
  app.add_option("--peak-tflops", peak_tflops, "peak of the device for MFU (default: by name)");
  app.add_option("--json", json_path, "write the results to this file");
  app.add_flag("-q,--quiet", quiet, "no summary on stdout");
  if (!ls::cli::parse(app, argc, argv)) return 0;
  if (!overrides.empty() && config_path.empty()) ls::fail("--set needs --config");
  std::optional<ls::Config> run_config;
  if (!config_path.empty()) {
    // The run's settings into the flags' variables: the rest of the bench reads those.
    run_config = ls::Config::load(config_path, overrides);
    const ls::Config& rc = *run_config;
    ls::check_model_dir(rc);
    model_dir = rc.model.path;
    task_name = std::string(ls::enum_name(rc.task.type));
    attention = rc.model.attention == ls::AttentionMode::kCausal ? "causal"
                : rc.model.bidirectional_from_layer > 0
                    ? fmt::format("bidirectional:{}-", rc.model.bidirectional_from_layer)
                    : "bidirectional";
    checkpointing = std::string(ls::enum_name(rc.model.activation_checkpointing));
    dtype_name = std::string(ls::enum_name(rc.model.dtype));
    device_spec = std::string(ls::enum_name(rc.model.device));
    optimizer_name = rc.train.fused_optimizer ? "fused" : "reference";
    lora_r = rc.lora.r, lora_alpha = rc.lora.alpha, lora_dropout = rc.lora.dropout;
    lora_targets = rc.lora.targets;
    lr = rc.train.lr, max_grad_norm = rc.train.max_grad_norm;
    seed = static_cast<uint64_t>(rc.train.seed);
    num_labels = rc.task.problem_type == ls::ProblemType::kRegression ? 1
                 : rc.task.labels.empty()                             ? num_labels
                                          : static_cast<int64_t>(rc.task.labels.size());
    if (!batch_opt->count())
      batch = rc.train.micro_batch_size > 0 ? rc.train.micro_batch_size : rc.train.batch_size;
    if (!length_opt->count()) length = rc.data.max_length;
    shape = "config";
  }
  if (batch < 1 || length < 1) ls::fail("--batch and --length must be positive");
  if (steps < 1 || warmup < 0) ls::fail("--steps must be >= 1 and --warmup >= 0");
  if (optimizer_name != "fused" && optimizer_name != "reference")
    ls::fail("--optimizer: '{}' is not an AdamW implementation (fused, reference)", optimizer_name);
  if (dropout_masks != "keyed" && dropout_masks != "generator")
    ls::fail("--dropout-masks: '{}' is not keyed or generator", dropout_masks);
  if (threads > 0) at::set_num_threads(threads);

  c10::Device device(c10::kCPU);
  if (device_spec == "auto") {
#if defined(LS_WITH_CUDA)
    if (c10::cuda::device_count() > 0) device = c10::Device(c10::kCUDA, 0);
#endif
  } else {
    try {
      device = c10::Device(device_spec);
    } catch (const c10::Error&) {
      ls::fail("--device: '{}' is not a device (auto, cpu, cuda, cuda:N)", device_spec);
    }
  }
  if (device.is_cuda() && !device.has_index()) device.set_index(0);
  const auto dtype = ls::resolve_dtype(ls::parse_enum<ls::DtypeChoice>(dtype_name, "--dtype"),
                                       device.is_cuda() ? c10::kBFloat16 : c10::kFloat);

  ls::ModelOptions options;
  options.dtype = dtype;
  options.device = device;
  options.attention = ls::parse_attention_policy(attention, "--attention");
  options.activation_checkpointing =
      ls::parse_enum<ls::ActivationCheckpointing>(checkpointing, "--activation-checkpointing");
  if (run_config) options.attention.attend_to_padding = run_config->model.attend_to_padding;
  ls::HeadOptions head;
  head.task = ls::parse_enum<ls::TaskType>(task_name, "--task");
  head.num_labels = num_labels;
  ls::LoraOptions lora;
  lora.r = lora_r;
  lora.alpha = lora_alpha;
  lora.dropout = lora_dropout;
  lora.targets = lora_targets;
  if (run_config) lora.use_rslora = run_config->lora.rslora;
  lora.validate("--lora-*");
  const bool causal = !options.attention.is_bidirectional(0);

  at::manual_seed(seed);
  const auto load_start = Clock::now();
  std::shared_ptr<ls::LsLlama> model;
  if (run_config) {
    // As ls_train builds it: placement, head (problem type, pooling, dropout), LoRA or
    // lora.init_from's adapter, seeded with train.seed.
    const ls::Placement placement{device, dtype};
    model = ls::load_model(*run_config, placement, static_cast<int>(num_labels),
                           run_config->lora.init_from);
    head = model->head_options();
  } else if (!model_dir.empty()) {
    model = ls::LsLlama::from_pretrained(model_dir, options, head);
    shape = "model";
    model->add_lora(lora);
  } else {
    model = std::make_shared<ls::LsLlama>(shape_config(shape, length), options, head);
    fill_synthetic(model->model());
    model->add_lora(lora);
  }
  model->set_activation_checkpointing(options.activation_checkpointing);
  synchronize(device);
  const double load_s = elapsed_ms(load_start) / 1000;
  const auto& config = model->config();

  std::vector<ls::AdamW::Param> params;
  int64_t trainable = 0, base = 0;
  for (auto& [name, tensor] : model->trainable_parameters()) {
    // As the trainer: no decay on biases unless the config's train.decay_biases_and_norms.
    const bool decay = tensor.dim() > 1 || (run_config && run_config->train.decay_biases_and_norms);
    params.push_back({name, tensor, decay});
    trainable += tensor.numel();
  }
  for (const auto& p : model->model().parameters())
    if (!p.requires_grad()) base += p.numel();
  ls::AdamWOptions adamw;  // ls_train's defaults, or the config's
  if (run_config)
    adamw = ls::AdamWOptions{.beta1 = run_config->train.adam_beta1,
                             .beta2 = run_config->train.adam_beta2,
                             .eps = run_config->train.adam_eps,
                             .weight_decay = run_config->train.weight_decay};
  adamw.fused = optimizer_name == "fused";
  ls::AdamW optimizer(std::move(params), adamw);
  ls::StepRunner runner(*model, optimizer, nullptr, nullptr, max_grad_norm, device);
  const std::vector<ls::data::Batch> batches = {
      make_batch(config, head, batch, length, device.is_cuda())};

#if defined(LS_WITH_CUDA)
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
  std::vector<double> step_times;
  double cpu_ms_per_step = 0;
  // Keyed dropout masks, as ls_train's; `generator`: torch's draws (the path before keyed masks).
  if (dropout_masks == "keyed") runner.set_dropout_seed(seed);
  int64_t step_index = 0;
  const double step_ms = time_median([&] { runner.step(batches, lr, step_index++); }, warmup, steps,
                                     device, &step_times, &cpu_ms_per_step);

  json result;
  result["tool"] = "ls_bench";
  result["variant"] = "ls";
  result["date"] = iso_time();
  result["shape"] = shape;
  result["model"] = model_dir.empty() ? json(nullptr) : json(model_dir);
  result["run_config"] = config_path.empty() ? json(nullptr) : json(config_path);
  result["config"] = {
      {"hidden", config.hidden_size},        {"layers", config.num_hidden_layers},
      {"heads", config.num_attention_heads}, {"kv_heads", config.num_key_value_heads},
      {"head_dim", config.head_dim},         {"intermediate", config.intermediate_size},
      {"vocab", config.vocab_size}};
  result["task"] = task_name;
  result["num_labels"] = num_labels;
  result["batch"] = batch;
  result["length"] = length;
  result["tokens_per_step"] = batch * length;
  result["lora"] = {
      {"r", lora_r}, {"alpha", lora_alpha}, {"dropout", lora_dropout}, {"targets", lora_targets}};
  result["dropout_masks"] = dropout_masks;
  result["attention"] = attention;
  result["activation_checkpointing"] = std::string(ls::enum_name(options.activation_checkpointing));
  result["sdpa_backends"] = model->model().describe_attention_backends(batch, length);
  result["optimizer"] = optimizer_name;
  result["dtype"] = ls::dtype_name(dtype);
  result["device"] = device.str();
  result["device_name"] = device_name(device);
  result["threads"] = device.is_cpu() ? at::get_num_threads() : 0;
  result["warmup"] = warmup;
  result["steps"] = steps;
  result["trainable_params"] = trainable;
  result["base_params"] = base;
  result["load_s"] = load_s;
  result["ms_per_step"] = step_ms;
  result["ms_per_step_all"] = step_times;
  result["tokens_per_s"] = double(batch * length) / (step_ms / 1000);
  result["cpu_ms_per_step"] = cpu_ms_per_step;  // mean process CPU time (all threads) per step

  // Memory over the whole run: weights, activations, optimizer state.
  result["peak_rss_bytes"] = peak_rss_bytes();
  int64_t peak_memory = peak_rss_bytes();
#if defined(LS_WITH_CUDA)
  if (device.is_cuda()) {
    using c10::CachingAllocator::StatType;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    const auto aggregate = static_cast<size_t>(StatType::AGGREGATE);
    result["peak_allocated_bytes"] = stats.allocated_bytes[aggregate].peak;
    result["peak_reserved_bytes"] = stats.reserved_bytes[aggregate].peak;
    peak_memory = stats.allocated_bytes[aggregate].peak;
  }
#endif
  result["peak_mem_bytes"] = peak_memory;
  result["peak_mem_kind"] = device.is_cuda() ? "cuda_max_allocated" : "peak_rss";
  result["peak_mem_gib"] = double(peak_memory) / double(1LL << 30);

  const Flops flops = model_flops(config, batch, length, lora, causal);
  const double flops_per_s = flops.total() / (step_ms / 1000);
  if (peak_tflops <= 0) peak_tflops = lookup_peak_tflops(result["device_name"], dtype);
  result["model_flops_per_step"] = flops.total();
  result["model_flops_split"] = {
      {"base_gemm", flops.base}, {"attention", flops.attention}, {"lora", flops.lora}};
  result["model_tflops_per_s"] = flops_per_s / 1e12;
  result["peak_tflops"] = peak_tflops > 0 ? json(peak_tflops) : json(nullptr);
  result["mfu"] = peak_tflops > 0 ? json(flops_per_s / (peak_tflops * 1e12)) : json(nullptr);

  if (breakdown) {
    // The same work as a step, cut at the synchronization points; not part of the timings above.
    std::vector<at::Tensor> tensors;
    for (const auto& p : optimizer.params()) tensors.push_back(p.tensor);
    const auto& b = batches.front();
    std::vector<double> forward, backward, update;
    model->train();
    for (int i = 0; i < warmup + steps; ++i) {
      synchronize(device);
      auto start = Clock::now();
      auto ids = b.input_ids.to(device, true), mask = b.attention_mask.to(device, true);
      auto loss = model->loss(model->forward(ids, mask), b.labels.to(device, true));
      synchronize(device);
      const double f = elapsed_ms(start);
      start = Clock::now();
      loss.backward();
      synchronize(device);
      const double g = elapsed_ms(start);
      start = Clock::now();
      if (max_grad_norm > 0) ls::clip_grad_norm(tensors, max_grad_norm);
      optimizer.step(lr);
      optimizer.zero_grad();
      synchronize(device);
      const double u = elapsed_ms(start);
      if (i < warmup) continue;
      forward.push_back(f);
      backward.push_back(g);
      update.push_back(u);
    }
    result["breakdown"] = {{"forward_ms", median(forward)},
                           {"backward_ms", median(backward)},
                           {"optimizer_ms", median(update)}};
  }

  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) result["load_average"] = {load[0], load[1], load[2]};
  // The step's results are written first: a floor that fails leaves them, and says why.
  if (!json_path.empty()) write_json_atomically(json_path, result);
  if (floor_flag) {
    try {
      const Floor floor = time_floor(*model, batch, length, causal, warmup, steps, device, dtype);
      result["floor"] = {{"gemm_ms", floor.gemm_ms},
                         {"attention_ms", floor.attention_ms},
                         {"ms_per_step", floor.total_ms()},
                         {"tokens_per_s", double(batch * length) / (floor.total_ms() / 1000)},
                         {"method", floor.method},
                         {"gemm_tflops_per_s", flops.base / (floor.gemm_ms / 1000) / 1e12}};
      result["floor_ratio"] = step_ms / floor.total_ms();  // > 1: how far the step is from it
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ls_bench: the floor failed: %s\n", e.what());
      result["floor"] = {{"error", e.what()}};
    }
  }

  if (!quiet) {
    std::printf(
        "ls_bench %s %s %s %s %lldx%lld on %s (%s): %.1f ms/step, %.0f tokens/s, peak %.2f GiB "
        "(%s)",
        shape.c_str(), task_name.c_str(), attention.c_str(), ls::dtype_name(dtype).c_str(),
        static_cast<long long>(batch), static_cast<long long>(length), device.str().c_str(),
        result["device_name"].get<std::string>().c_str(), step_ms,
        result["tokens_per_s"].get<double>(), result["peak_mem_gib"].get<double>(),
        result["peak_mem_kind"].get<std::string>().c_str());
    std::printf(", %.2f model TFLOP/s", flops_per_s / 1e12);
    if (peak_tflops > 0) std::printf(", MFU %.1f%%", 100 * flops_per_s / (peak_tflops * 1e12));
    std::printf("\n");
    if (result.contains("breakdown"))
      std::printf("  breakdown: forward %.1f ms, backward %.1f ms, optimizer %.1f ms\n",
                  result["breakdown"]["forward_ms"].get<double>(),
                  result["breakdown"]["backward_ms"].get<double>(),
                  result["breakdown"]["optimizer_ms"].get<double>());
    if (result.contains("floor_ratio"))
      std::printf(
          "  floor (%s): GEMMs %.1f ms + attention %.1f ms = %.1f ms/step, %.0f tokens/s; "
          "step/floor %.2fx\n",
          result["floor"]["method"].get<std::string>().c_str(),
          result["floor"]["gemm_ms"].get<double>(), result["floor"]["attention_ms"].get<double>(),
          result["floor"]["ms_per_step"].get<double>(),
          result["floor"]["tokens_per_s"].get<double>(), result["floor_ratio"].get<double>());
  }
  if (!json_path.empty()) write_json_atomically(json_path, result);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::run_main("ls_bench", bench_main, argc, argv);
}
