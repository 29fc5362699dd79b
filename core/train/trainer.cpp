// The training loop and its run directory (see trainer.h).
#include "core/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>
#include <fmt/ranges.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/adapter/peft_adapter.h"
#include "core/base/atomic_file.h"
#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/model/dtype.h"
#include "core/model/ls_llama.h"
#include "core/report/plot.h"
#include "core/report/progress.h"
#include "core/report/tensorboard.h"
#include "core/train/adamw.h"
#include "core/train/evaluator.h"
#include "core/train/lr_schedule.h"
#include "core/train/run_setup.h"
#include "core/train/train_step.h"
#include "data/loader.h"
#include "data/reader.h"
#include "parallel/communicator.h"
#include "parallel/grad_sync.h"
#include "parallel/mpi.h"
#include "parallel/topology.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace ls {
namespace {

std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int signal) {
  g_stop_signal.store(signal);
}

// --- small helpers -------------------------------------------------------------------------------

std::string format_metrics(const std::map<std::string, double>& metrics) {
  std::string out;
  for (const auto& [name, value] : metrics)
    out += fmt::format("{}{} {:.4f}", out.empty() ? "" : ", ", name, value);
  return out;
}

void append_line(const fs::path& path, const json& record) {
  std::ofstream out(path, std::ios::app);
  out << record.dump() << "\n";
}

// --- the run
// --------------------------------------------------------------------------------------

class Run {
 public:
  Run(const Config& config, bool resume, parallel::MpiRuntime& mpi)
      : config_(config), resume_(resume), mpi_(mpi), dir_(config.output.dir) {}

  TrainOutcome execute();

 private:
  bool rank0() const { return topology_->is_rank0(); }
  void log(const std::string& line) {
    if (progress_)
      progress_->message(line);
    else if (rank0())
      fmt::print("{}\n", line);
  }
  void prepare_directory();
  void load_data();
  void build_model();
  json read_trainer_state() const;
  void check_state_tp() const;
  std::string state_file(const std::string& what) const;
  std::string rng_file() const;
  void save_state(int64_t step, const data::SamplerPosition& position);
  bool restore_state();
  void save_adapter(const std::string& name);
  void write_predictions(const std::string& split, const data::RawDataset& raw,
                         const data::Dataset& dataset, const EvalResult& result);
  void record(json record);
  bool stop_requested();

  Config config_;
  bool resume_;
  parallel::MpiRuntime& mpi_;
  fs::path dir_;
  std::unique_ptr<parallel::Topology> topology_;
  c10::Device device_ = c10::kCPU;
  c10::ScalarType dtype_ = c10::kFloat;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  data::LabelMap labels_;
  LossOptions loss_;  // class weights, label smoothing, target normalisation (from the train split)
  data::RawDataset raw_validation_, raw_test_;
  data::Dataset train_, validation_, test_;
  std::shared_ptr<LsLlama> model_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<Progress> progress_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;

  // What state/ restores.
  int64_t step_ = 0;
  data::SamplerPosition position_;
  std::optional<double> best_;
  int64_t best_step_ = 0;
  int64_t evals_without_improvement_ = 0;
  std::map<std::string, double> best_metrics_;
};

void Run::prepare_directory() {
  if (rank0()) {
    if (resume_) {
      if (!fs::exists(dir_ / "state" / "trainer.json"))
        fail("{}: no resumable state (state/trainer.json) in this run directory", dir_.string());
      check_state_tp();  // before config.yaml is rewritten with this run's settings
    } else if (fs::exists(dir_) && !fs::is_empty(dir_) && !config_.output.overwrite) {
      fail(
          "{}: run directory exists and is not empty (resume it with --resume {}, or set "
          "output.overwrite: true, or choose another output.dir)",
          dir_.string(), dir_.string());
    } else if (fs::exists(dir_) && config_.output.overwrite) {
      for (const char* name :
           {"state", "adapter", "adapter_last", "tensorboard", "metrics.jsonl", "curves.png",
            "predictions_validation.jsonl", "predictions_test.jsonl"})
        fs::remove_all(dir_ / name);
    }
    fs::create_directories(dir_);
    write_file_atomic(dir_ / "config.yaml", config_.to_yaml());
  }
  topology_->world()->barrier();
}

void Run::load_data() {
  const auto& d = config_.data;
  tokenizer_ = make_tokenizer(config_);
  const data::DatasetOptions options = dataset_options(config_, /*labeled=*/true);
  data::RawDataset raw_train = data::read_raw_dataset(d.train, options.task, options.reader);
  if (resume_) {
    labels_ = data::LabelMap::load((dir_ / "labels.json").string());
  } else if (!config_.task.labels.empty()) {
    labels_ = data::LabelMap(config_.task.labels);
  } else {
    labels_ = data::infer_label_map(raw_train, options.reader.problem);
  }
  if (rank0() && !resume_) labels_.save((dir_ / "labels.json").string());

  train_ = data::build_dataset(raw_train, *tokenizer_, labels_, options);
  log(train_.summary());
  loss_ = loss_options(config_, train_, labels_);
  if (!loss_.class_weights.empty())
    log(fmt::format("class weights ({}, {}): {}", enum_name(config_.task.class_weights.mode),
                    options.reader.problem == data::ProblemType::kMultiLabel ? "BCE pos_weight"
                                                                             : "cross-entropy",
                    fmt::join(loss_.class_weights, ", ")));
  if (config_.task.normalize_targets)
    log(fmt::format("regression targets normalised: mean {:.6g}, std {:.6g}", loss_.target_mean,
                    loss_.target_std));
  if (!d.validation.empty()) {
    raw_validation_ = data::read_raw_dataset(d.validation, options.task, options.reader);
    validation_ = data::build_dataset(raw_validation_, *tokenizer_, labels_, options);
    log(validation_.summary());
  }
  if (!d.test.empty()) {
    raw_test_ = data::read_raw_dataset(d.test, options.task, options.reader);
    test_ = data::build_dataset(raw_test_, *tokenizer_, labels_, options);
    log(test_.summary());
  }
  if (options.task == data::TaskType::kToken && train_.stats.bio_warnings > 0)
    log(fmt::format("warning: {} I- tags do not continue an entity (first: {})",
                    train_.stats.bio_warnings, train_.stats.first_bio_warning));
}

void Run::build_model() {
  LoadStats stats;
  // Same seed on every rank: LoRA A and the head start identical across data-parallel ranks, and
  // every tp rank cuts its shards from the same full draw. With tp > 1 the projections are
  // tensor-parallel over the tp group and each rank reads only its slices of the checkpoint.
  model_ = load_model(config_, {device_, dtype_}, labels_.size(), config_.lora.init_from, &stats,
                      topology_->tp_group(), loss_);
  log(fmt::format(
      "model {}: {} layers, hidden {}, {} base tensors ({:.1f} MB {}) loaded in {:.2f} s on {}; "
      "attention {}",
      config_.model.path, model_->config().num_hidden_layers, model_->config().hidden_size,
      stats.tensors, stats.bytes / 1e6, dtype_name(dtype_), stats.seconds, device_.str(),
      model_options(config_, {device_, dtype_}).attention.describe()));
  std::vector<AdamW::Param> params;
  int64_t count = 0;
  for (auto& [name, tensor] : model_->trainable_parameters()) {
    bool decay = config_.train.decay_biases_and_norms || tensor.dim() > 1;
    params.push_back({name, tensor, decay});
    count += tensor.numel();
  }
  log(fmt::format(
      "trainable: {} tensors, {} parameters{} (LoRA r={} alpha={} on {}; head {} labels)",
      params.size(), count,
      topology_->tp() > 1 ? fmt::format(" per rank at tp {}", topology_->tp()) : "", config_.lora.r,
      config_.lora.alpha, fmt::join(config_.lora.targets, ","), labels_.size()));
  optimizer_ = std::make_unique<AdamW>(std::move(params),
                                       AdamWOptions{.beta1 = config_.train.adam_beta1,
                                                    .beta2 = config_.train.adam_beta2,
                                                    .eps = config_.train.adam_eps,
                                                    .weight_decay = config_.train.weight_decay,
                                                    .fused = config_.train.fused_optimizer});
}

// state/: trainer.json (step, sampler position, best so far, tp), weights.safetensors (the trained
// tensors), optimizer.safetensors (moments + RNG state). With tensor parallelism each tp rank
// keeps its own shards and moments, weights.tp<R>-of-<N>.safetensors and the like, so resuming
// takes the same parallel.tp (the adapters are unsharded and load at any tp). Written to
// state.tmp, then swapped in.
std::string Run::state_file(const std::string& what) const {
  if (topology_->tp() == 1) return what + ".safetensors";
  return fmt::format("{}.tp{}-of-{}.safetensors", what, topology_->tp_rank(), topology_->tp());
}

void Run::save_state(int64_t step, const data::SamplerPosition& position) {
  parallel::Communicator& world = *topology_->world();
  fs::path staged = dir_ / "state.tmp";
  if (rank0()) {
    fs::remove_all(staged);
    fs::create_directories(staged);
  }
  world.barrier();
  // Every rank keeps its own generator state: data-parallel ranks draw different dropout masks.
  std::vector<std::pair<std::string, at::Tensor>> rng = {
      {"cpu", at::detail::getDefaultCPUGenerator().get_state()}};
  if (device_.is_cuda())
    rng.emplace_back("cuda", at::globalContext().defaultGenerator(device_).get_state());
  write_safetensors(staged / rng_file(), rng);
  // The tp group of dp rank 0 writes weights and moments (every data-parallel replica holds them).
  if (topology_->dp_rank() == 0) {
    std::vector<std::pair<std::string, at::Tensor>> weights;
    for (auto& [name, tensor] : model_->trainable_parameters())
      weights.emplace_back(name, tensor.detach());
    write_safetensors(staged / state_file("weights"), weights);
    std::vector<std::pair<std::string, at::Tensor>> optimizer;
    for (auto& [name, tensor] : optimizer_->state()) optimizer.emplace_back(name, tensor);
    write_safetensors(staged / state_file("optimizer"), optimizer);
  }
  world.barrier();  // every file is on disk before rank 0 swaps the directory in
  if (rank0()) {
    json trainer = {{"step", step},
                    {"tp", topology_->tp()},
                    {"world_size", topology_->world_size()},
                    {"optimizer_steps", optimizer_->steps()},
                    {"sampler", {{"epoch", position.epoch}, {"batch", position.batch}}},
                    {"best", best_ ? json(*best_) : json(nullptr)},
                    {"best_step", best_step_},
                    {"best_metrics", best_metrics_},
                    {"evals_without_improvement", evals_without_improvement_}};
    write_file_atomic(staged / "trainer.json", trainer.dump(2));
    replace_directory(staged, dir_ / "state");
  }
  world.barrier();
}

std::string Run::rng_file() const {
  return fmt::format("rng.rank{}-of-{}.safetensors", topology_->rank(), topology_->world_size());
}

json Run::read_trainer_state() const {
  const fs::path path = dir_ / "state" / "trainer.json";
  try {
    return json::parse(std::ifstream(path));
  } catch (const json::exception& e) {
    fail("{}: unreadable trainer state: {}", path.string(), e.what());
  }
}

void Run::check_state_tp() const {
  const json trainer = read_trainer_state();
  const int saved_tp = trainer.value("tp", 1);
  if (saved_tp != topology_->tp())
    fail(
        "parallel.tp: {}, but the state in {} was saved at tp {}; resume with parallel.tp: {} (the "
        "adapters in "
        "adapter/ and adapter_last/ load at any tp)",
        topology_->tp(), (dir_ / "state").string(), saved_tp, saved_tp);
  const int saved_world = trainer.value("world_size", topology_->world_size());
  if (saved_world != topology_->world_size())
    fail(
        "the state in {} was saved by {} ranks, this run has {}; resume with mpirun -np {} (the "
        "adapters in "
        "adapter/ and adapter_last/ load with any number)",
        (dir_ / "state").string(), saved_world, topology_->world_size(), saved_world);
}

bool Run::restore_state() {
  fs::path state = dir_ / "state";
  const json trainer = read_trainer_state();
  auto weights = SafetensorsFile::open(state / state_file("weights"));
  {
    at::NoGradGuard no_grad;
    for (auto& [name, tensor] : model_->trainable_parameters()) weights->read_into(name, tensor);
  }
  auto optimizer = SafetensorsFile::open(state / state_file("optimizer"));
  std::map<std::string, at::Tensor> moments;
  for (const auto& name : optimizer->names()) moments[name] = optimizer->view(name);
  optimizer_->load_state(moments, trainer.at("optimizer_steps").get<long>());
  // Each rank continues its own random stream.
  auto rng = SafetensorsFile::open(state / rng_file());
  at::Generator cpu_generator = at::detail::getDefaultCPUGenerator();
  cpu_generator.set_state(rng->view("cpu").clone());
  if (device_.is_cuda() && rng->contains("cuda")) {
    at::Generator cuda_generator = at::globalContext().defaultGenerator(device_);
    cuda_generator.set_state(rng->view("cuda").clone());
  }
  step_ = trainer.at("step").get<int64_t>();
  position_ = {trainer.at("sampler").at("epoch").get<int64_t>(),
               trainer.at("sampler").at("batch").get<int64_t>()};
  if (!trainer.at("best").is_null()) best_ = trainer.at("best").get<double>();
  best_step_ = trainer.at("best_step").get<int64_t>();
  best_metrics_ = trainer.at("best_metrics").get<std::map<std::string, double>>();
  evals_without_improvement_ = trainer.at("evals_without_improvement").get<int64_t>();
  // Records written after the saved step are replayed by this run: drop them.
  if (rank0() && fs::exists(dir_ / "metrics.jsonl")) {
    std::ifstream in(dir_ / "metrics.jsonl");
    std::string kept, line;
    while (std::getline(in, line))
      if (!line.empty()) {
        const json record = json::parse(line);
        // Later steps are replayed, and the test split is evaluated again at the end.
        if (record.value("step", int64_t{0}) <= step_ && record.value("split", "") != "test")
          kept += line + "\n";
      }
    write_file_atomic(dir_ / "metrics.jsonl", kept);
  }
  return true;
}

void Run::save_adapter(const std::string& name) {
  // The tp group of dp rank 0 gathers the shards into the unsharded PEFT layout; rank 0 writes.
  if (topology_->dp_rank() != 0) return;
  fs::path staged = dir_ / (name + ".tmp");
  if (rank0()) fs::remove_all(staged);
  ls::save_adapter(*model_, staged, /*write=*/rank0());
  if (rank0()) replace_directory(staged, dir_ / name);
}

void Run::write_predictions(const std::string& split, const data::RawDataset& raw,
                            const data::Dataset& dataset, const EvalResult& result) {
  if (rank0())
    write_file_atomic(dir_ / ("predictions_" + split + ".jsonl"),
                      predictions_jsonl(result, raw, dataset, labels_));
}

void Run::record(json record) {
  if (!rank0()) return;
  record["time"] =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  append_line(dir_ / "metrics.jsonl", record);
}

bool Run::stop_requested() {
  double local = g_stop_signal.load() != 0 ? 1.0 : 0.0;
  if (topology_->world_size() == 1) return local > 0;
  return parallel::all_reduce_value(*topology_->world(), local, parallel::ReduceOp::kMax) > 0;
}

TrainOutcome Run::execute() {
  // Devices and ranks.
  const Placement placement = resolve_placement(config_, mpi_.local_rank(), mpi_.local_size());
  device_ = placement.device;
  dtype_ = placement.dtype;
  topology_ = std::make_unique<parallel::Topology>(parallel::make_world_communicator(device_),
                                                   config_.parallel.tp);
  const int dp = topology_->dp();
  const int64_t micro = config_.train.micro_batch_size > 0
                            ? config_.train.micro_batch_size
                            : std::max<int64_t>(1, config_.train.batch_size / dp);
  if (config_.train.batch_size % (micro * dp) != 0)
    fail(
        "train.batch_size: {} is not a multiple of micro_batch_size ({}) x data-parallel ranks "
        "({})",
        config_.train.batch_size, micro, dp);
  const int64_t accumulation = config_.train.batch_size / (micro * dp);

  prepare_directory();
  load_data();
  build_model();
  if (resume_) restore_state();

  data::SamplerOptions sampler_options;
  sampler_options.batch_size = micro;
  sampler_options.shuffle = config_.train.shuffle;
  sampler_options.seed = static_cast<uint64_t>(config_.train.seed);
  sampler_options.group_by_length = config_.data.group_by_length;
  sampler_options.dp_rank = topology_->dp_rank();
  sampler_options.dp_size = dp;
  data::Sampler sampler(train_.lengths(), sampler_options);
  const int64_t batches_per_epoch = sampler.batches_per_epoch();
  const int64_t steps_per_epoch = (batches_per_epoch + accumulation - 1) / accumulation;
  int64_t total_steps = steps_per_epoch * config_.train.epochs;
  if (config_.train.max_steps > 0)
    total_steps = std::min<int64_t>(total_steps, config_.train.max_steps);
  const int64_t warmup = config_.train.warmup_steps > 0
                             ? config_.train.warmup_steps
                             : static_cast<int64_t>(config_.train.warmup_ratio * total_steps);
  LrSchedule schedule{config_.train.schedule, config_.train.lr, total_steps, warmup};
  const int64_t eval_every_steps =
      config_.train.eval_every == "epoch" ? 0 : std::stol(config_.train.eval_every);
  const std::string metric = selection_metric(config_);
  const bool higher_is_better = metric_higher_is_better(metric);

  data::CollateOptions collate = collate_options(config_);
  collate.pin_memory = device_.is_cuda();
  EvalOptions eval_options;
  eval_options.batch_size = micro;
  eval_options.collate = collate;
  eval_options.collate.pin_memory = false;
  eval_options.ner_mode = config_.train.ner_mode;

  std::unique_ptr<parallel::DataParallelGradSync> grad_sync;
  if (dp > 1) {
    std::vector<at::Tensor> tensors;
    for (const auto& p : optimizer_->params()) tensors.push_back(p.tensor);
    grad_sync = std::make_unique<parallel::DataParallelGradSync>(topology_->dp_group(), tensors);
  }
  StepRunner runner(*model_, *optimizer_, topology_->dp_group(), grad_sync.get(),
                    config_.train.max_grad_norm, device_, topology_->tp_group());
  // Dropout draws differ between data-parallel ranks (seeded per dp rank) and agree within a tp
  // group, whose ranks drop the same replicated activations; resume restores them.
  if (!resume_) at::manual_seed(config_.train.seed + 1000003ull * (topology_->dp_rank() + 1));

  progress_ =
      std::make_unique<Progress>(rank0(), total_steps, steps_per_epoch, config_.train.log_every);
  if (rank0() && config_.output.tensorboard)
    tensorboard_ = std::make_unique<TensorBoardWriter>((dir_ / "tensorboard").string());
  log(fmt::format(
      "training: {} steps ({} epochs x {} steps), global batch {} = micro {} x accumulation {} x "
      "dp {}{}, "
      "lr {} {} warmup {}, selecting on validation {}",
      total_steps, config_.train.epochs, steps_per_epoch, config_.train.batch_size, micro,
      accumulation, dp, topology_->tp() > 1 ? fmt::format(" (tp {})", topology_->tp()) : "",
      config_.train.lr, enum_name(config_.train.schedule), warmup,
      validation_.size() ? metric : "(none: last)"));
  if (resume_)
    log(fmt::format("resumed {} at step {} (epoch {}, batch {})", dir_.string(), step_,
                    position_.epoch + 1, position_.batch));

  auto evaluate_validation = [&](int64_t step) {
    if (validation_.size() == 0) return;
    EvalResult result =
        evaluate(*model_, validation_, labels_, eval_options, topology_->dp_group(), device_);
    double value = result.metrics.at(metric);
    bool improved = !best_ || (higher_is_better ? value > *best_ : value < *best_);
    json rec = {{"step", step},
                {"epoch", static_cast<double>(step) / steps_per_epoch},
                {"split", "validation"}};
    for (auto& [k, v] : result.metrics) {
      rec[k] = v;
      if (tensorboard_) tensorboard_->add_scalar("validation/" + k, v, step);
    }
    record(rec);
    if (improved) {
      best_ = value, best_step_ = step, best_metrics_ = result.metrics,
      evals_without_improvement_ = 0;
      if (config_.output.save != SaveMode::kLast) save_adapter("adapter");
      write_predictions("validation", raw_validation_, validation_, result);
    } else {
      ++evals_without_improvement_;
    }
    log(fmt::format("step {} validation: {}{}", step, format_metrics(result.metrics),
                    improved ? fmt::format("  (best {} so far)", metric) : ""));
  };

  TrainOutcome outcome;
  data::BatchLoader loader(train_, sampler, collate, position_, config_.train.epochs);
  double tokens_since = 0;
  auto timer = std::chrono::steady_clock::now();
  while (step_ < total_steps) {
    std::vector<data::Batch> micro_batches;
    auto first = loader.next();
    if (!first) break;
    const int64_t group_end =
        std::min<int64_t>((first->index / accumulation + 1) * accumulation, batches_per_epoch);
    micro_batches.push_back(std::move(*first));
    while (micro_batches.back().index + 1 < group_end)
      micro_batches.push_back(std::move(*loader.next()));
    const bool end_of_epoch = micro_batches.back().index + 1 == batches_per_epoch;
    position_ = micro_batches.back().next;

    const double lr = schedule.lr(step_);
    StepStats stats = runner.step(micro_batches, lr);
    ++step_;
    tokens_since += static_cast<double>(stats.tokens);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - timer).count();
    progress_->step(step_, stats.loss, lr, tokens_since / std::max(seconds, 1e-9));
    if (step_ % config_.train.log_every == 0 || step_ == total_steps) {
      record({{"step", step_},
              {"epoch", static_cast<double>(step_) / steps_per_epoch},
              {"split", "train"},
              {"loss", stats.loss},
              {"lr", lr},
              {"grad_norm", stats.grad_norm},
              {"tokens_per_second", tokens_since / std::max(seconds, 1e-9)}});
      if (tensorboard_) {
        tensorboard_->add_scalar("train/loss", stats.loss, step_);
        tensorboard_->add_scalar("train/lr", lr, step_);
        tensorboard_->add_scalar("train/grad_norm", stats.grad_norm, step_);
        tensorboard_->flush();
      }
      tokens_since = 0;
      timer = std::chrono::steady_clock::now();
    }
    const bool eval_due = eval_every_steps > 0 ? step_ % eval_every_steps == 0 : end_of_epoch;
    if (eval_due || step_ == total_steps) evaluate_validation(step_);
    const bool early_stop = config_.train.early_stopping_patience > 0 &&
                            evals_without_improvement_ >= config_.train.early_stopping_patience;
    const bool stop = stop_requested();
    if (eval_due || step_ == total_steps || stop || early_stop ||
        (config_.output.state_every > 0 && step_ % config_.output.state_every == 0))
      save_state(step_, position_);
    if (stop) {
      progress_->finish();
      log(fmt::format(
          "stopped by signal {} at step {}; state saved. Continue with: ls_train --resume {}",
          g_stop_signal.load(), step_, dir_.string()));
      outcome.interrupted = true;
      outcome.steps = step_;
      return outcome;
    }
    if (early_stop) {
      log(fmt::format("early stopping: no better {} in {} evaluations", metric,
                      evals_without_improvement_));
      break;
    }
  }
  progress_->finish();
  if (config_.output.save != SaveMode::kBest) save_adapter("adapter_last");
  if (validation_.size() == 0 && config_.output.save != SaveMode::kLast) save_adapter("adapter");
  outcome.steps = step_;
  outcome.best_validation = best_metrics_;
  if (validation_.size())
    log(fmt::format("best validation {} {:.4f} at step {}", metric, best_ ? *best_ : 0.0,
                    best_step_));

  if (test_.size() > 0) {
    // The selected checkpoint (best on validation; the last one without validation) on test.
    fs::path selected = fs::exists(dir_ / "adapter") ? dir_ / "adapter" : dir_ / "adapter_last";
    topology_->world()->barrier();
    ls::load_adapter(*model_, selected);
    EvalResult result =
        evaluate(*model_, test_, labels_, eval_options, topology_->dp_group(), device_);
    json rec = {{"step", step_}, {"split", "test"}, {"checkpoint", selected.filename().string()}};
    for (auto& [k, v] : result.metrics) {
      rec[k] = v;
      if (tensorboard_) tensorboard_->add_scalar("test/" + k, v, step_);
    }
    record(rec);
    write_predictions("test", raw_test_, test_, result);
    outcome.test = result.metrics;
    log(fmt::format("test ({}): {}", selected.filename().string(), format_metrics(result.metrics)));
  }
  if (tensorboard_) tensorboard_->flush();
  if (rank0() && config_.output.plot) {
    write_training_curves(dir_ / "metrics.jsonl", dir_ / "curves.png", metric);
    log(fmt::format("wrote {}", (dir_ / "curves.png").string()));
  }
  log(fmt::format("run directory: {}", dir_.string()));
  return outcome;
}

}  // namespace

void install_stop_signal_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

TrainOutcome train(const Config& config, bool resume, parallel::MpiRuntime& mpi) {
  g_stop_signal.store(0);
  Run run(config, resume, mpi);
  return run.execute();
}

}  // namespace ls
