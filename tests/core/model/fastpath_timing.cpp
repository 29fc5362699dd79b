// fastpath_timing: ms per training step (forward + backward + AdamW) of an LsLlama with random
// weights at a given shape, for comparing the fast-path switches on one machine. Not a test and
// not the project's benchmark (tools/ls_bench is): a quick A/B timer for docs/FASTPATH.md.
//   fastpath_timing [--hidden 64] [--intermediate 160] [--layers 2] [--heads 4] [--kv-heads 2]
//                   [--vocab 256] [--batch 8] [--length 64] [--dtype f32|bf16]
//                   [--checkpointing none|selective|full] [--fused 1|0] [--lora-dropout 0.1]
//                   [--all-linear 0|1] [--padded 0|1] [--steps 20] [--warmup 3] [--device cpu]
// Prints one line: the settings, the median and minimum ms/step, and the peak RSS.
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/model/dtype.h"
#include "core/model/ls_llama.h"
#include "core/train/adamw.h"

namespace {

int run(int argc, char** argv) {
  std::map<std::string, std::string> args = {
      {"hidden", "64"},    {"intermediate", "160"},   {"layers", "2"}, {"heads", "4"},
      {"kv-heads", "2"},   {"vocab", "256"},          {"batch", "8"},  {"length", "64"},
      {"dtype", "f32"},    {"checkpointing", "none"}, {"fused", "1"},  {"lora-dropout", "0.1"},
      {"all-linear", "0"}, {"padded", "0"},           {"steps", "20"}, {"warmup", "3"},
      {"device", "cpu"}};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || !args.count(key.substr(2)))
      ls::fail("fastpath_timing: unknown option '{}'", key);
    args[key.substr(2)] = argv[i + 1];
  }
  auto number = [&](const char* key) { return std::stoll(args[key]); };
  ls::LlamaConfig config;
  config.vocab_size = number("vocab");
  config.hidden_size = number("hidden");
  config.intermediate_size = number("intermediate");
  config.num_hidden_layers = number("layers");
  config.num_attention_heads = number("heads");
  config.num_key_value_heads = number("kv-heads");
  config.head_dim = config.hidden_size / config.num_attention_heads;
  config.max_position_embeddings = std::max<int64_t>(number("length"), 2048);

  ls::ModelOptions options;
  options.device = c10::Device(args["device"]);
  options.dtype = ls::parse_dtype(args["dtype"], "--dtype");
  options.activation_checkpointing =
      ls::parse_enum<ls::ActivationCheckpointing>(args["checkpointing"], "--checkpointing");
  ls::HeadOptions head;
  head.num_labels = 3;
  torch::manual_seed(0);
  auto model = std::make_shared<ls::LsLlama>(config, options, head);
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : model->model().parameters())
      parameter.dim() == 1 ? parameter.fill_(1.0) : parameter.normal_(0, 0.02);
  }
  ls::LoraOptions lora;
  lora.r = 12;
  lora.alpha = 32;
  lora.dropout = std::stod(args["lora-dropout"]);
  if (args["all-linear"] == "1") lora.targets = {"all-linear"};
  model->add_lora(lora);
  model->train();

  std::vector<ls::AdamW::Param> params;
  for (auto& [name, tensor] : model->trainable_parameters())
    params.push_back({name, tensor, tensor.dim() > 1});
  ls::AdamWOptions adamw;
  adamw.fused = args["fused"] == "1";
  ls::AdamW optimizer(std::move(params), adamw);

  const auto batch = number("batch"), length = number("length");
  const auto ids = torch::randint(1, config.vocab_size, {batch, length}, torch::kLong);
  auto mask = torch::ones({batch, length}, torch::kLong);
  if (args["padded"] == "1") mask.select(1, 0).fill_(0);  // one left-padding token per row
  const auto labels = torch::randint(0, 3, {batch}, torch::kLong);

  // Whole step, and its optimizer part alone (the part the fused AdamW changes).
  std::vector<double> times, optimizer_times;
  const auto steps = number("steps"), warmup = number("warmup");
  auto now = [&] {
    if (options.device.is_cuda()) torch::cuda::synchronize();
    return std::chrono::steady_clock::now();
  };
  auto ms = [](auto from, auto to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
  };
  for (int64_t step = 0; step < warmup + steps; ++step) {
    const auto start = now();
    optimizer.zero_grad();
    const auto loss = model->loss(model->forward(ids, mask), labels);
    loss.backward();
    const auto before_step = now();
    optimizer.step(1e-4);
    const auto end = now();
    if (step >= warmup) {
      times.push_back(ms(start, end));
      optimizer_times.push_back(ms(before_step, end));
    }
  }
  std::sort(times.begin(), times.end());
  std::sort(optimizer_times.begin(), optimizer_times.end());
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "shape h%lld i%lld l%lld b%lld t%lld %s threads %d checkpointing %s fused %s padded %s "
      "lora-dropout %s: median %.2f ms/step, min %.2f; optimizer median %.3f ms, min %.3f; "
      "peak RSS %.0f MiB\n",
      static_cast<long long>(config.hidden_size), static_cast<long long>(config.intermediate_size),
      static_cast<long long>(config.num_hidden_layers), static_cast<long long>(batch),
      static_cast<long long>(length), args["dtype"].c_str(), at::get_num_threads(),
      args["checkpointing"].c_str(), args["fused"].c_str(), args["padded"].c_str(),
      args["lora-dropout"].c_str(), times[times.size() / 2], times.front(),
      optimizer_times[optimizer_times.size() / 2], optimizer_times.front(),
      usage.ru_maxrss / 1024.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::run_main("fastpath_timing", run, argc, argv);
}
