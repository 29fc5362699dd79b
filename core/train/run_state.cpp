// A run's resumable state (see run_state.h).
#include "core/train/run_state.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/base/atomic_file.h"
#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "parallel/communicator.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace ls {

std::string dataset_fingerprint(const data::Dataset& dataset) {
  uint64_t hash = 14695981039346656037ull;
  auto mix = [&hash](int64_t value) {
    for (int byte = 0; byte < 8; ++byte) {
      hash ^= static_cast<uint64_t>(value >> (8 * byte)) & 0xff;
      hash *= 1099511628211ull;
    }
  };
  auto mix_all = [&mix](const std::vector<int32_t>& values) {
    mix(static_cast<int64_t>(values.size()));
    for (int32_t v : values) mix(v);
  };
  mix(dataset.size());
  for (const auto& e : dataset.examples) {
    mix_all(e.input_ids);
    mix_all(e.labels);
    mix_all(e.label_ids);
    mix(e.label);
    int32_t target_bits = 0;
    static_assert(sizeof(target_bits) == sizeof(e.target));
    std::memcpy(&target_bits, &e.target, sizeof(target_bits));
    mix(target_bits);
    mix(e.labeled);
  }
  return fmt::format("{:016x}", hash);
}

RunState::RunState(fs::path run_dir, const parallel::Topology& topology, c10::Device device)
    : dir_(std::move(run_dir)), topology_(topology), device_(device) {}

std::string RunState::shard_file(const std::string& what) const {
  if (topology_.tp() == 1) return what + ".safetensors";
  return fmt::format("{}.tp{}-of-{}.safetensors", what, topology_.tp_rank(), topology_.tp());
}

namespace {

// Every rank's generators, rank-major rows in one file that rank 0 alone writes.
constexpr const char* kRngFile = "rng.safetensors";

// This rank's generator states by name: "cpu", and "cuda" on a GPU.
std::vector<std::pair<std::string, at::Tensor>> generator_states(c10::Device device) {
  std::vector<std::pair<std::string, at::Tensor>> states = {
      {"cpu", at::detail::getDefaultCPUGenerator().get_state()}};
  if (device.is_cuda())
    states.emplace_back("cuda", at::globalContext().defaultGenerator(device).get_state());
  return states;
}

void set_generator_state(const std::string& name, c10::Device device, const at::Tensor& state) {
  at::Generator generator = name == "cpu" ? at::detail::getDefaultCPUGenerator()
                                          : at::globalContext().defaultGenerator(device);
  generator.set_state(state);
}

}  // namespace

json RunState::read_trainer_json() const {
  const fs::path path = dir_ / "state" / "trainer.json";
  try {
    return json::parse(std::ifstream(path));
  } catch (const json::exception& e) {
    fail("{}: unreadable trainer state: {}", path.string(), e.what());
  }
}

void RunState::check_resumable() const {
  // A crash inside the swap of state.tmp for state/ (replace_directory) left state.old alone.
  if (recover_directory(dir_ / "state"))
    fmt::print("resume: {} restored from the copy a crash left at the swap\n",
               (dir_ / "state").string());
  if (!fs::exists(dir_ / "state" / "trainer.json"))
    fail(
        "{}: no resumable state (state/trainer.json): the run stopped before its first save; "
        "start it again with output.overwrite: true",
        dir_.string());
  const json trainer = read_trainer_json();
  const int saved_tp = trainer.value("tp", 1);
  if (saved_tp != topology_.tp())
    fail(
        "parallel.tp: {}, but the state in {} was saved at tp {}; resume with parallel.tp: {} (the "
        "adapters in "
        "adapter/ and adapter_last/ load at any tp)",
        topology_.tp(), (dir_ / "state").string(), saved_tp, saved_tp);
  const int saved_world = trainer.value("world_size", topology_.world_size());
  if (saved_world != topology_.world_size())
    fail(
        "the state in {} was saved by {} ranks, this run has {}; resume with mpirun -np {} (the "
        "adapters in "
        "adapter/ and adapter_last/ load with any number)",
        (dir_ / "state").string(), saved_world, topology_.world_size(), saved_world);
}

void RunState::check_identity(const RunIdentity& identity) const {
  const json saved = read_trainer_json().value("identity", json::object());
  for (const auto& [key, value] : identity) {
    if (!saved.contains(key)) continue;
    const std::string original = saved.at(key).get<std::string>();
    if (original == value) continue;
    if (key == "model.path")
      fail(
          "--resume {}: model.path is not the base model the run was started with (its "
          "config.json and weights fingerprint to {}, the run's to {}); resume with the original "
          "model",
          dir_.string(), value, original);
    if (key == "data.train")
      fail(
          "--resume {}: data.train is not the training split the run was started with (its "
          "tokenized examples hash to {}, the run's to {}); resume with the original file, "
          "tokenizer and data.* settings",
          dir_.string(), value, original);
    fail("--resume {}: {} is {} but the run was started with {}; resume with the original value",
         dir_.string(), key, value, original);
  }
}

void RunState::save(const TrainingProgress& progress, const RunIdentity& identity, LsLlama& model,
                    const AdamW& optimizer) const {
  parallel::Communicator& world = *topology_.world();
  const bool rank0 = topology_.is_rank0();
  fs::path staged = dir_ / "state.tmp";
  if (rank0) {
    fs::remove_all(staged);
    fs::create_directories(staged);
  }
  world.barrier();
  // Every rank keeps its own generator state (seeded per dp rank; LoRA and head dropout masks are
  // keyed and do not draw from it);
  // rank 0 gathers them and writes them, row r being rank r's.
  std::vector<std::pair<std::string, at::Tensor>> rng;
  for (const auto& [name, state] : generator_states(device_)) {
    at::Tensor row = state.to(world.device()).contiguous().unsqueeze(0);
    rng.emplace_back(name, parallel::all_gather_along(world, row, 0).cpu());
  }
  if (rank0) write_safetensors(staged / kRngFile, rng);
  // The tp group of dp rank 0 writes weights and moments (every data-parallel replica holds them).
  if (topology_.dp_rank() == 0) {
    std::vector<std::pair<std::string, at::Tensor>> weights;
    for (auto& [name, tensor] : model.trainable_parameters())
      weights.emplace_back(name, tensor.detach());
    write_safetensors(staged / shard_file("weights"), weights);
    std::vector<std::pair<std::string, at::Tensor>> moments;
    for (auto& [name, tensor] : optimizer.state()) moments.emplace_back(name, tensor);
    write_safetensors(staged / shard_file("optimizer"), moments);
  }
  world.barrier();  // every file is on disk before rank 0 swaps the directory in
  if (rank0) {
    json trainer = {
        {"step", progress.step},
        {"tp", topology_.tp()},
        {"world_size", topology_.world_size()},
        {"optimizer_steps", optimizer.steps()},
        {"sampler", {{"epoch", progress.position.epoch}, {"batch", progress.position.batch}}},
        {"best", progress.best ? json(*progress.best) : json(nullptr)},
        {"best_step", progress.best_step},
        {"best_metric", progress.best_metric ? json(*progress.best_metric) : json(nullptr)},
        {"total_steps", progress.total_steps},
        {"best_metrics", progress.best_metrics},
        {"evals_without_improvement", progress.evals_without_improvement}};
    for (const auto& [key, value] : identity) trainer["identity"][key] = value;
    write_file_atomic(staged / "trainer.json", trainer.dump(2));
    replace_directory(staged, dir_ / "state");
  }
  world.barrier();
}

TrainingProgress RunState::restore(LsLlama& model, AdamW& optimizer) const {
  const fs::path state = dir_ / "state";
  const json trainer = read_trainer_json();
  auto weights = SafetensorsFile::open(state / shard_file("weights"));
  {
    at::NoGradGuard no_grad;
    for (auto& [name, tensor] : model.trainable_parameters()) weights->read_into(name, tensor);
  }
  auto moments_file = SafetensorsFile::open(state / shard_file("optimizer"));
  std::map<std::string, at::Tensor> moments;
  for (const auto& name : moments_file->names()) moments[name] = moments_file->view(name);
  optimizer.load_state(moments, trainer.at("optimizer_steps").get<long>());
  // Each rank continues its own random stream: rank 0 reads every rank's and broadcasts them.
  parallel::Communicator& world = *topology_.world();
  const bool rank0 = topology_.is_rank0();
  const fs::path legacy =
      state / fmt::format("rng.rank{}-of-{}.safetensors", topology_.rank(), topology_.world_size());
  if (!fs::exists(state / kRngFile) && fs::exists(legacy)) {
    // Saved before rank 0 gathered them: each rank's own file.
    auto own = SafetensorsFile::open(legacy);
    for (const auto& [name, local] : generator_states(device_))
      if (own->contains(name)) set_generator_state(name, device_, own->view(name).clone());
  } else {
    std::shared_ptr<const SafetensorsFile> rng;
    if (rank0) rng = SafetensorsFile::open(state / kRngFile);
    for (const auto& [name, local] : generator_states(device_)) {
      // A CUDA state is missing when the run was saved on the CPU: every rank keeps its seed then.
      const double saved = rank0 && rng->contains(name) ? 1.0 : 0.0;
      if (parallel::all_reduce_value(world, saved, parallel::ReduceOp::kMax) == 0) continue;
      at::Tensor all =
          rank0 ? rng->view(name).to(world.device()).contiguous()
                : at::empty({world.size(), local.numel()}, local.options().device(world.device()));
      if (all.size(0) != world.size() || all.size(1) != local.numel())
        fail("{}: '{}' holds {} generator states of {} bytes; expected {} of {}",
             (state / kRngFile).string(), name, all.size(0), all.size(1), world.size(),
             local.numel());
      world.broadcast(all, 0);
      set_generator_state(name, device_, all[world.rank()].cpu().clone());
    }
  }
  TrainingProgress progress;
  progress.step = trainer.at("step").get<int64_t>();
  progress.position = {trainer.at("sampler").at("epoch").get<int64_t>(),
                       trainer.at("sampler").at("batch").get<int64_t>()};
  if (!trainer.at("best").is_null()) progress.best = trainer.at("best").get<double>();
  progress.best_step = trainer.at("best_step").get<int64_t>();
  if (trainer.contains("best_metric") && trainer["best_metric"].is_string())
    progress.best_metric = trainer["best_metric"].get<std::string>();
  progress.total_steps = trainer.value("total_steps", int64_t{0});
  progress.best_metrics = trainer.at("best_metrics").get<std::map<std::string, double>>();
  progress.evals_without_improvement = trainer.at("evals_without_improvement").get<int64_t>();
  if (topology_.is_rank0()) drop_replayed_records(progress.step);
  return progress;
}

void RunState::drop_replayed_records(int64_t step) const {
  if (!fs::exists(dir_ / "metrics.jsonl")) return;
  std::ifstream in(dir_ / "metrics.jsonl");
  std::string kept, line;
  while (std::getline(in, line))
    if (!line.empty()) {
      const json record = json::parse(line);
      // Later steps are replayed, and the test split is evaluated again at the end.
      if (record.value("step", int64_t{0}) <= step && record.value("split", "") != "test")
        kept += line + "\n";
    }
  write_file_atomic(dir_ / "metrics.jsonl", kept);
}

}  // namespace ls
