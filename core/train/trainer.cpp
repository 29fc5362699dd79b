// The training recipe (see trainer.h): one class whose methods are the run's phases, read top to
// bottom in TrainRecipe::run. The batch arithmetic is run_plan.h's, the resumable state
// run_state.h's, evaluation evaluator.h's.
#include "core/train/trainer.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/adapter/peft_adapter.h"
#include "core/base/atomic_file.h"
#include "core/base/error.h"
#include "core/eval/evaluator.h"
#include "core/eval/metric_table.h"
#include "core/model/dtype.h"
#include "core/model/ls_llama.h"
#include "core/report/plot.h"
#include "core/report/progress.h"
#include "core/report/tensorboard.h"
#include "core/run/run_directory.h"
#include "core/run/run_setup.h"
#include "core/run/trained_run.h"
#include "core/train/adamw.h"
#include "core/train/lr_schedule.h"
#include "core/train/run_plan.h"
#include "core/train/run_state.h"
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

// A split as the recipe keeps it: the raw records (for prediction files) and the dataset.
struct Split {
  data::RawDataset raw;
  data::Dataset dataset;
};

class TrainRecipe {
 public:
  TrainRecipe(const Config& config, bool resume, parallel::MpiRuntime& mpi)
      : config_(config), resume_(resume), mpi_(mpi), dir_(config.output.dir), run_dir_(dir_) {}

  TrainOutcome run() {
    setup_parallel();
    check_inputs();
    setup_data();
    check_resumed_run();
    write_run_directory();  // the first write: every input above is read and checked
    setup_model();
    setup_optimizer();
    if (resume_) progress_ = state_->restore(*model_, *optimizer_);
    setup_schedule();
    setup_step();
    setup_logging();
    if (!train()) return interrupted();
    save_final_adapters();
    test();
    write_outputs();
    return outcome();
  }

 private:
  // Phases, in order.
  void setup_parallel();
  void check_inputs();
  void setup_data();
  void check_resumed_run();
  void write_run_directory();
  void setup_model();
  void setup_optimizer();
  void setup_schedule();
  void setup_step();
  void setup_logging();
  bool train();  // false: stopped by a signal, state saved
  void save_final_adapters();
  void test();
  void write_outputs();
  TrainOutcome interrupted();
  TrainOutcome outcome() const;

  // The loop's parts.
  std::vector<data::Batch> next_step_batches(data::BatchLoader& loader);
  void log_step(const StepStats& stats, double lr);
  void evaluate_and_select(int64_t step);
  bool stop_requested();

  // Output (rank 0 writes, every rank may call).
  bool rank0() const { return topology_->is_rank0(); }
  void log(const std::string& line);
  void record(json record);
  void save_adapter(const std::string& name);
  void write_predictions(const std::string& split, const Split& data, const EvalResult& result);

  Config config_;
  bool resume_;
  parallel::MpiRuntime& mpi_;
  fs::path dir_;
  RunDirectory run_dir_;
  Placement placement_;
  std::unique_ptr<parallel::Topology> topology_;
  std::unique_ptr<RunState> state_;
  Batching batching_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  data::LabelMap labels_;
  LossOptions loss_;  // class weights, label smoothing, target normalisation (from the train split)
  data::Dataset train_;
  Split validation_, test_;
  std::shared_ptr<LsLlama> model_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<data::Sampler> sampler_;
  RunPlan plan_;
  LrSchedule schedule_;
  std::string metric_;  // the selection metric
  data::CollateOptions collate_;
  EvalOptions eval_options_;
  std::unique_ptr<parallel::DataParallelGradSync> grad_sync_;
  std::unique_ptr<StepRunner> runner_;
  std::unique_ptr<Progress> bar_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
  AdapterDescription adapter_description_;  // what every saved adapter records (describe_run)
  RunIdentity identity_;                    // what the batches depend on; a resume must match it
  TrainingProgress progress_;               // what state/ saves and restores
  std::map<std::string, double> test_metrics_;
  // Throughput since the last log line.
  double tokens_since_ = 0;
  std::chrono::steady_clock::time_point timer_;
};

// Devices and ranks; the batch split is checked before anything touches the run directory.
void TrainRecipe::setup_parallel() {
  placement_ = resolve_placement(config_, mpi_.local_rank(), mpi_.local_size());
  // Without loss scaling, f16 gradients underflow to zero silently; inference may still use f16.
  if (placement_.dtype == c10::kHalf)
    fail(
        "model.dtype: f16 cannot train: use bf16 or f32; f16 needs loss scaling, which ls_train "
        "does not do (ls_predict and ls_forward may use f16)");
  topology_ = std::make_unique<parallel::Topology>(
      parallel::make_world_communicator(placement_.device), config_.parallel.tp);
  state_ = std::make_unique<RunState>(dir_, *topology_, placement_.device);
  batching_ = plan_batching(config_.train, topology_->dp());
}

// What can be checked before reading the data: the model directory and tokenizer, settings that
// cannot work together, and whether output.dir may be used. Nothing is written.
void TrainRecipe::check_inputs() {
  const LlamaConfig model = check_model_dir(config_);
  if (needs_tokenizer(config_, /*labeled=*/true)) tokenizer_path(config_);
  if (config_.train.early_stopping_patience > 0 && config_.data.validation.empty())
    fail(
        "train.early_stopping_patience: {} needs data.validation (early stopping counts "
        "evaluations of the validation split without improvement); set data.validation, or "
        "train.early_stopping_patience: 0",
        config_.train.early_stopping_patience);
  if (config_.data.max_length > model.max_position_embeddings)
    log(fmt::format(
        "warning: data.max_length {} exceeds the model's max_position_embeddings {} ({}): "
        "positions past it were never trained",
        config_.data.max_length, model.max_position_embeddings,
        (fs::path(config_.model.path) / "config.json").string()));
  adopt_init_adapter(config_);  // config.yaml and the log show the adapter's settings
  if (!rank0()) return;
  if (resume_) {
    state_->check_resumable();
  } else if (fs::exists(dir_) && !fs::is_empty(dir_) && !config_.output.overwrite) {
    fail(
        "{}: run directory exists and is not empty (resume it with --resume {}, or set "
        "output.overwrite: true, or choose another output.dir)",
        dir_.string(), dir_.string());
  }
}

// The run directory, once the data and the resume identity have been checked: a new run's
// config.yaml and labels.json (after clearing an overwritten run's outputs), a resumed run's
// config.yaml with the settings it may change.
void TrainRecipe::write_run_directory() {
  if (rank0()) {
    if (!resume_ && fs::exists(dir_) && config_.output.overwrite)
      for (const fs::path& output : run_dir_.outputs()) fs::remove_all(output);
    fs::create_directories(dir_);
    write_file_atomic(run_dir_.config(), config_.to_yaml());
    if (!resume_) labels_.save(run_dir_.labels().string());
  }
  topology_->world()->barrier();
}

void TrainRecipe::setup_data() {
  const auto& d = config_.data;
  const data::DatasetOptions options = dataset_options(config_, /*labeled=*/true);
  if (needs_tokenizer(config_, /*labeled=*/true)) {
    tokenizer_ = make_tokenizer(config_);
    log(fmt::format("tokenizer: {} ({} tokens)", tokenizer_path(config_).string(),
                    tokenizer_->vocab_size()));
  } else {
    log(
        fmt::format("no tokenizer: pre-tokenized data, ids checked against config.json's "
                    "vocab_size of {}",
                    options.vocab_size));
  }
  const bool auto_pad = config_.data.pad_id == kAutoPadId;
  if (const std::string warning = resolve_pad_id(config_, tokenizer_.get()); !warning.empty())
    log(warning);
  else if (auto_pad && tokenizer_)
    log(fmt::format("padding with {} ('{}', data.pad_id: auto)", config_.data.pad_id,
                    tokenizer_->id_to_piece(config_.data.pad_id)));
  data::RawDataset raw_train = data::read_raw_dataset(d.train, options.task, options.reader);
  if (resume_) {
    labels_ = data::LabelMap::load(run_dir_.labels().string());
  } else if (!config_.task.labels.empty()) {
    labels_ = data::LabelMap(config_.task.labels);
  } else {
    labels_ = data::infer_label_map(raw_train, options.reader.problem);
  }
  if (labels_.size() == 1 && config_.task.problem_type != ProblemType::kRegression)
    log(fmt::format(
        "warning: task.labels: one class ('{}'){}: the classifier can only ever predict it",
        labels_.name(0), config_.task.labels.empty() ? " in the training split" : ""));

  train_ = data::build_dataset(raw_train, tokenizer_.get(), labels_, options);
  log(train_.summary());
  loss_ = loss_options(config_, train_, labels_);
  if (!loss_.class_weights.empty())
    log(fmt::format(
        "class weights ({}, {}): {}", enum_name(config_.task.class_weights.mode),
        options.reader.problem == ProblemType::kMultiLabel ? "BCE pos_weight" : "cross-entropy",
        fmt::join(loss_.class_weights, ", ")));
  if (config_.task.normalize_targets && !config_.lora.init_from.empty()) {
    // The adapter's head was trained on its own normalisation, which it keeps.
    HeadOptions head = head_options(config_, labels_.size(), loss_);
    const fs::path head_file = fs::path(config_.lora.init_from) / kHeadConfigFile;
    if (fs::exists(head_file)) read_head_config(head_file, head);
    log(fmt::format(
        "regression targets normalised as lora.init_from's adapter was: mean {:.6g}, std {:.6g} "
        "(the training split's: mean {:.6g}, std {:.6g})",
        head.loss.target_mean, head.loss.target_std, loss_.target_mean, loss_.target_std));
    loss_.target_mean = head.loss.target_mean, loss_.target_std = head.loss.target_std;
  } else if (config_.task.normalize_targets) {
    log(fmt::format("regression targets normalised: mean {:.6g}, std {:.6g}", loss_.target_mean,
                    loss_.target_std));
  }
  for (auto [path, split] : {std::pair{&d.validation, &validation_}, std::pair{&d.test, &test_}}) {
    if (path->empty()) continue;
    split->raw = data::read_raw_dataset(*path, options.task, options.reader);
    split->dataset = data::build_dataset(split->raw, tokenizer_.get(), labels_, options);
    log(split->dataset.summary());
  }
  if (options.task == TaskType::kToken && train_.stats.bio_warnings > 0)
    log(fmt::format("warning: {} I- tags do not continue an entity (first: {})",
                    train_.stats.bio_warnings, train_.stats.first_bio_warning));
  // Once: the settings it records do not change during the run (the tokenizer is read once).
  adapter_description_ = describe_run(config_, labels_, hf_pad_token_id(config_, tokenizer_.get()));
}

// The run's identity; a resume must match the saved one before config.yaml takes its settings.
void TrainRecipe::check_resumed_run() {
  // The config's identity record, then the layout the sampler's position depends on and the
  // training split's fingerprint (last: a named key says more).
  identity_ = config_values(config_, kIdentity);
  identity_.emplace_back("train.micro_batch_size", std::to_string(batching_.micro_batch_size));
  identity_.emplace_back("dp", std::to_string(topology_->dp()));
  identity_.emplace_back("model.path", base_model_fingerprint(config_.model.path));
  identity_.emplace_back("data.train", dataset_fingerprint(train_));
  if (resume_) state_->check_identity(identity_);  // every rank: each fails alike
}

void TrainRecipe::setup_model() {
  LoadStats stats;
  // Same seed on every rank: LoRA A and the head start identical across data-parallel ranks, and
  // every tp rank cuts its shards from the same full draw. With tp > 1 the projections are
  // tensor-parallel over the tp group and each rank reads only its slices of the checkpoint.
  model_ = load_model(config_, placement_, labels_.size(), config_.lora.init_from, &stats,
                      topology_->tp_group(), loss_);
  log(fmt::format(
      "model {}: {} layers, hidden {}, {} base tensors ({:.1f} MB {}) loaded in {:.2f} s on {}; "
      "attention {}",
      config_.model.path, model_->config().num_hidden_layers, model_->config().hidden_size,
      stats.tensors, stats.bytes / 1e6, dtype_name(placement_.dtype), stats.seconds,
      placement_.device.str(), model_options(config_, placement_).attention.describe()));
}

void TrainRecipe::setup_optimizer() {
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

// This rank's sampler, the run plan, the LR schedule and what selection and evaluation use.
void TrainRecipe::setup_schedule() {
  data::SamplerOptions sampler_options;
  sampler_options.batch_size = batching_.micro_batch_size;
  sampler_options.accumulation = batching_.accumulation;
  sampler_options.shuffle = config_.train.shuffle;
  sampler_options.seed = static_cast<uint64_t>(config_.train.seed);
  sampler_options.group_by_length = config_.data.group_by_length;
  sampler_options.dp_rank = topology_->dp_rank();
  sampler_options.dp_size = topology_->dp();
  sampler_ = std::make_unique<data::Sampler>(train_.lengths(), sampler_options);
  plan_ = plan_run(config_.train, sampler_->dataset_size(), topology_->dp());
  schedule_ =
      LrSchedule{config_.train.schedule, config_.train.lr, plan_.total_steps, plan_.warmup_steps};
  metric_ = selection_metric(config_);
  if (resume_) {
    // What a resume may change about the length (docs/CONFIG.md, Resuming): say what it does.
    if (progress_.best_metric && *progress_.best_metric != metric_)
      fail("--resume {}: the best checkpoint was selected by {}, this run selects by {}",
           dir_.string(), *progress_.best_metric, metric_);
    if (progress_.total_steps > 0 && progress_.total_steps != plan_.total_steps)
      log(fmt::format(
          "resume: {} optimizer steps in all, not {} (train.max_steps / train.epochs): the {} "
          "schedule is recomputed over {} steps, so the learning rate at step {} is {:.3g}, not "
          "{:.3g}",
          plan_.total_steps, progress_.total_steps, enum_name(config_.train.schedule),
          plan_.total_steps, progress_.step + 1, schedule_.lr(progress_.step),
          LrSchedule{config_.train.schedule, config_.train.lr, progress_.total_steps,
                     plan_.warmup_steps}
              .lr(progress_.step)));
  }
  progress_.best_metric = metric_;
  progress_.total_steps = plan_.total_steps;
  collate_ = collate_options(config_);
  collate_.pin_memory = placement_.device.is_cuda();
  eval_options_ = eval_options(config_, batching_.micro_batch_size);
}

// The optimizer step: gradient sync over the data-parallel group, and the dropout seed.
void TrainRecipe::setup_step() {
  if (topology_->dp() > 1) {
    std::vector<at::Tensor> tensors;
    for (const auto& p : optimizer_->params()) tensors.push_back(p.tensor);
    grad_sync_ = std::make_unique<parallel::DataParallelGradSync>(topology_->dp_group(), tensors);
  }
  runner_ = std::make_unique<StepRunner>(*model_, *optimizer_, topology_->dp_group(),
                                         grad_sync_.get(), config_.train.max_grad_norm,
                                         placement_.device, topology_->tp_group());
  // LoRA and token-head dropout masks are keyed by (seed, step, example, position), so they are
  // the same at any layout (core/model/keyed_dropout.h). Torch's generator is still seeded per dp
  // rank for anything else that draws (attention dropout, when a checkpoint asks for it); resume
  // restores it.
  runner_->set_dropout_seed(static_cast<uint64_t>(config_.train.seed));
  if (!resume_) at::manual_seed(config_.train.seed + 1000003ull * (topology_->dp_rank() + 1));
}

void TrainRecipe::setup_logging() {
  bar_ = std::make_unique<Progress>(rank0(), plan_.total_steps, plan_.steps_per_epoch,
                                    config_.train.log_every);
  if (rank0() && config_.output.tensorboard)
    tensorboard_ = std::make_unique<TensorBoardWriter>(run_dir_.tensorboard().string());
  log(fmt::format(
      "training: {} steps ({} epochs x {} steps), global batch {} = micro {} x accumulation {} x "
      "dp {}{}, "
      "lr {} {} warmup {}, selecting on validation {}",
      plan_.total_steps, config_.train.epochs, plan_.steps_per_epoch, config_.train.batch_size,
      batching_.micro_batch_size, batching_.accumulation, topology_->dp(),
      topology_->tp() > 1 ? fmt::format(" (tp {})", topology_->tp()) : "", config_.train.lr,
      enum_name(config_.train.schedule), plan_.warmup_steps,
      validation_.dataset.size() ? metric_ : "(none: last)"));
  if (resume_)
    log(fmt::format("resumed {} at step {} (epoch {}, batch {})", dir_.string(), progress_.step,
                    progress_.position.epoch + 1, progress_.position.batch));
}

bool TrainRecipe::train() {
  data::BatchLoader loader(train_, *sampler_, collate_, progress_.position, config_.train.epochs);
  timer_ = std::chrono::steady_clock::now();
  int64_t& step = progress_.step;
  while (step < plan_.total_steps) {
    std::vector<data::Batch> micro_batches = next_step_batches(loader);
    if (micro_batches.empty()) break;
    const bool end_of_epoch = micro_batches.back().index + 1 == plan_.batches_per_epoch;
    progress_.position = micro_batches.back().next;
    const double lr = schedule_.lr(step);
    const StepStats stats = runner_->step(micro_batches, lr, step);
    ++step;
    log_step(stats, lr);
    const bool last = step == plan_.total_steps;
    const bool eval_due =
        plan_.eval_every_steps > 0 ? step % plan_.eval_every_steps == 0 : end_of_epoch;
    if (eval_due || last) evaluate_and_select(step);
    const bool early_stop =
        config_.train.early_stopping_patience > 0 &&
        progress_.evals_without_improvement >= config_.train.early_stopping_patience;
    const bool stop = stop_requested();
    if (eval_due || last || stop || early_stop ||
        (config_.output.state_every > 0 && step % config_.output.state_every == 0))
      state_->save(progress_, identity_, *model_, *optimizer_);
    if (stop) return false;
    if (early_stop) {
      log(fmt::format("early stopping: no better {} in {} evaluations", metric_,
                      progress_.evals_without_improvement));
      break;
    }
  }
  bar_->finish();
  return true;
}

// The micro-batches of the next optimizer step: up to `accumulation`, never across an epoch's end.
// Empty when the loader is done.
std::vector<data::Batch> TrainRecipe::next_step_batches(data::BatchLoader& loader) {
  std::vector<data::Batch> micro_batches;
  auto first = loader.next();
  if (!first) return micro_batches;
  const int64_t accumulation = batching_.accumulation;
  const int64_t group_end =
      std::min<int64_t>((first->index / accumulation + 1) * accumulation, plan_.batches_per_epoch);
  micro_batches.push_back(std::move(*first));
  while (micro_batches.back().index + 1 < group_end)
    micro_batches.push_back(std::move(*loader.next()));
  return micro_batches;
}

void TrainRecipe::log_step(const StepStats& stats, double lr) {
  const int64_t step = progress_.step;
  tokens_since_ += static_cast<double>(stats.tokens);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - timer_).count();
  const double tokens_per_second = tokens_since_ / std::max(seconds, 1e-9);
  bar_->step(step, stats.loss, lr, tokens_per_second);
  if (step % config_.train.log_every != 0 && step != plan_.total_steps) return;
  record({{"step", step},
          {"epoch", static_cast<double>(step) / plan_.steps_per_epoch},
          {"split", "train"},
          {"loss", stats.loss},
          {"lr", lr},
          {"grad_norm", stats.grad_norm},
          {"tokens_per_second", tokens_per_second}});
  if (tensorboard_) {
    tensorboard_->add_scalar("train/loss", stats.loss, step);
    tensorboard_->add_scalar("train/lr", lr, step);
    tensorboard_->add_scalar("train/grad_norm", stats.grad_norm, step);
    tensorboard_->flush();
  }
  tokens_since_ = 0;
  timer_ = std::chrono::steady_clock::now();
}

// Validation at `step`; an improvement on the selection metric saves adapter/ and its predictions.
void TrainRecipe::evaluate_and_select(int64_t step) {
  if (validation_.dataset.size() == 0) return;
  const EvalResult result = evaluate(*model_, validation_.dataset, labels_, eval_options_,
                                     topology_->dp_group(), placement_.device);
  const double value = result.metrics.at(metric_);
  const bool improved = !progress_.best || improves(metric_, value, *progress_.best);
  // The selection rule travels with the record, so tools (ls_sweep, the quickstart summary) read
  // it instead of re-deriving it.
  json rec = {{"step", step},
              {"epoch", static_cast<double>(step) / plan_.steps_per_epoch},
              {"split", "validation"},
              {"selection_metric", metric_},
              {"selection_mode", std::string(direction_name(metric_direction(metric_)))}};
  for (auto& [k, v] : result.metrics) {
    rec[k] = v;
    if (tensorboard_) tensorboard_->add_scalar("validation/" + k, v, step);
  }
  record(rec);
  if (improved) {
    progress_.best = value, progress_.best_step = step, progress_.best_metrics = result.metrics,
    progress_.evals_without_improvement = 0;
    if (config_.output.save != SaveMode::kLast) save_adapter(RunDirectory::kBestAdapter);
    write_predictions("validation", validation_, result);
  } else {
    ++progress_.evals_without_improvement;
  }
  log(fmt::format("step {} validation: {}{}", step, format_metrics(result.metrics),
                  improved ? fmt::format("  (best {} so far)", metric_) : ""));
}

bool TrainRecipe::stop_requested() {
  double local = g_stop_signal.load() != 0 ? 1.0 : 0.0;
  if (topology_->world_size() == 1) return local > 0;
  return parallel::all_reduce_value(*topology_->world(), local, parallel::ReduceOp::kMax) > 0;
}

TrainOutcome TrainRecipe::interrupted() {
  bar_->finish();
  log(fmt::format(
      "stopped by signal {} at step {}; state saved. Continue with: ls_train --resume {}",
      g_stop_signal.load(), progress_.step, dir_.string()));
  TrainOutcome outcome;
  outcome.interrupted = true;
  outcome.steps = progress_.step;
  return outcome;
}

void TrainRecipe::save_final_adapters() {
  if (config_.output.save != SaveMode::kBest) save_adapter(RunDirectory::kLastAdapter);
  if (validation_.dataset.size() == 0 && config_.output.save != SaveMode::kLast)
    save_adapter(RunDirectory::kBestAdapter);
  if (validation_.dataset.size())
    log(fmt::format("best validation {} {:.4f} at step {}", metric_,
                    progress_.best ? *progress_.best : 0.0, progress_.best_step));
}

// The selected checkpoint (best on validation; the last one without validation) on test.
void TrainRecipe::test() {
  if (test_.dataset.size() == 0) return;
  // Decided from the config, alike on every rank (rank 0 alone writes the adapters): adapter/ is
  // there unless output.save is last (save_final_adapters writes it when nothing was validated).
  const fs::path selected =
      config_.output.save == SaveMode::kLast ? run_dir_.last_adapter() : run_dir_.best_adapter();
  topology_->world()->barrier();  // rank 0 has written it
  ls::load_adapter(*model_, selected);
  const EvalResult result = evaluate(*model_, test_.dataset, labels_, eval_options_,
                                     topology_->dp_group(), placement_.device);
  json rec = {
      {"step", progress_.step}, {"split", "test"}, {"checkpoint", selected.filename().string()}};
  for (auto& [k, v] : result.metrics) {
    rec[k] = v;
    if (tensorboard_) tensorboard_->add_scalar("test/" + k, v, progress_.step);
  }
  record(rec);
  write_predictions("test", test_, result);
  test_metrics_ = result.metrics;
  log(fmt::format("test ({}): {}", selected.filename().string(), format_metrics(result.metrics)));
}

void TrainRecipe::write_outputs() {
  if (tensorboard_) tensorboard_->flush();
  if (rank0() && config_.output.plot) {
    write_training_curves(run_dir_.metrics(), run_dir_.curves(), metric_);
    log(fmt::format("wrote {}", run_dir_.curves().string()));
  }
  log(fmt::format("run directory: {}", dir_.string()));
}

TrainOutcome TrainRecipe::outcome() const {
  TrainOutcome outcome;
  outcome.steps = progress_.step;
  outcome.best_validation = progress_.best_metrics;
  outcome.test = test_metrics_;
  return outcome;
}

void TrainRecipe::log(const std::string& line) {
  if (bar_)
    bar_->message(line);
  else if (rank0())
    fmt::print("{}\n", line);
}

void TrainRecipe::record(json record) {
  if (!rank0()) return;
  record["time"] =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  append_line(run_dir_.metrics(), record);
}

void TrainRecipe::save_adapter(const std::string& name) {
  // The tp group of dp rank 0 gathers the shards into the unsharded PEFT layout; rank 0 writes.
  if (topology_->dp_rank() != 0) return;
  fs::path staged = dir_ / (name + ".tmp");
  if (rank0()) fs::remove_all(staged);
  ls::save_adapter(*model_, staged, /*write=*/rank0(), &adapter_description_);
  if (rank0()) replace_directory(staged, dir_ / name);
}

void TrainRecipe::write_predictions(const std::string& split, const Split& data,
                                    const EvalResult& result) {
  if (rank0())
    write_file_atomic(
        run_dir_.predictions(split),
        predictions_jsonl(result, data.raw, data.dataset, labels_, config_.train.ner_mode));
}

}  // namespace

void install_stop_signal_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

TrainOutcome train(const Config& config, bool resume, parallel::MpiRuntime& mpi) {
  g_stop_signal.store(0);
  TrainRecipe recipe(config, resume, mpi);
  return recipe.run();
}

}  // namespace ls
