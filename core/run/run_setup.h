// How a Config becomes the pieces of a run: device and dtype, the tokenizer, reader and dataset
// options, the model with its head and adapters. Shared by ls_train and ls_predict so both read
// a run's config.yaml the same way.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/eval/evaluator.h"
#include "core/model/ls_llama.h"
#include "core/run/config.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/tokenizer/tokenizer.h"

namespace ls::parallel {
class Communicator;
}

namespace ls {

struct Placement {
  c10::Device device = c10::kCPU;
  c10::ScalarType dtype = c10::kFloat;  // of the frozen base
};

// model.device / model.dtype resolved for this rank (auto: its GPU and bf16 when CUDA is there).
Placement resolve_placement(const Config& config, int local_rank, int local_size);

// model.tokenizer, or else <model.path>/tokenizer.json when there, else tokenizer.model. UserError
// naming model.path when the directory is missing or holds neither file.
std::filesystem::path tokenizer_path(const Config& config);
// The same, but an empty path when model.path holds no tokenizer (a run on pre-tokenized data).
std::filesystem::path find_tokenizer(const Config& config);
std::unique_ptr<data::Tokenizer> make_tokenizer(const Config& config);
// A file's bytes as "crc32:<8 hex>:<size>": the tokenizer an adapter records, checked when it is
// loaded again (trained_run.h). UserError naming the file when it cannot be read.
std::string file_fingerprint(const std::filesystem::path& file);
// A base model's: its config.json's content and every tensor's name, dtype, shape and first and
// middle 256 bytes, so it costs a few small reads: another model, the same one in another dtype,
// or its weights rescaled differ; the same tensors resaved in another file layout, or config.json
// reformatted, do not. Part of a run's resume identity.
std::string base_model_fingerprint(const std::filesystem::path& model_dir);
// data.pad_id resolved against the run's tokenizer (null: pre-tokenized data) before anything is
// written: auto becomes tokenizer->default_pad_id(data.add_eos) (0 without a tokenizer; the model
// masks padding, so only HF's pooling cares which id it is). UserError naming data.pad_id when
// auto finds none, or an explicit id is EOS while data.add_eos appends it. Returns a warning line
// when an explicit id is a token text encodes to, else "".
std::string resolve_pad_id(Config& config, const data::Tokenizer* tokenizer);
// The pad_token_id an exported model and an adapter's head_config.json record: data.pad_id, unless
// text can produce that token (a run padded with LLaMA-3's id 0, '!'); then the tokenizer's
// default_pad_id, so HF's classifiers, which pool at the last token that is not pad_token_id,
// pool where the run did.
int hf_pad_token_id(const Config& config, const data::Tokenizer* tokenizer);
// Whether any of the configured splits (data.train/validation/test) holds text, which needs a
// tokenizer; pre-tokenized splits need none (their ids are checked against config.json's
// vocab_size instead).
bool needs_tokenizer(const Config& config, bool labeled);
// model.path checked before anything is written: a directory with a config.json of a supported
// family whose sliding attention window (Mistral) covers data.max_length. UserError naming the
// key otherwise.
LlamaConfig check_model_dir(const Config& config);
data::ReaderOptions reader_options(const Config& config, bool labeled);
// vocab_size: config.json's, when model.path has one (pre-tokenized ids are checked against it).
data::DatasetOptions dataset_options(const Config& config, bool labeled);
data::CollateOptions collate_options(const Config& config);
// How a split is evaluated (training's validation and test passes, ls_predict): `batch_size`
// examples per rank, the config's collation (unpinned) and entity matching.
EvalOptions eval_options(const Config& config, int64_t batch_size);

// `tp`: the tensor-parallel group this rank belongs to; with more than one rank the projections
// are tensor-parallel over it (the model's config.json is read to plan the split).
ModelOptions model_options(const Config& config, const Placement& placement,
                           std::shared_ptr<parallel::Communicator> tp = nullptr);
// `loss`: the resolved loss settings (see loss_options); the config's problem type and threshold
// come from `config`.
HeadOptions head_options(const Config& config, int num_labels, const LossOptions& loss = {});

// The loss settings of task.* resolved against the training split: class weights (auto: from its
// label counts, see docs/PROBLEM_TYPES.md), label smoothing, and with task.normalize_targets the
// mean and std of its regression targets. UserError naming task.class_weights for a list of the
// wrong length.
LossOptions loss_options(const Config& config, const data::Dataset& train,
                         const data::LabelMap& labels);

// lora.init_from: the adapter's LoRA settings (r, alpha, dropout, targets, rslora) and its
// multi-label threshold become the config's, so the log and the saved config.yaml show what is
// used. A key set explicitly (YAML or --set) to another value is a UserError naming the key and
// the adapter's value. Nothing happens without lora.init_from.
void adopt_init_adapter(Config& config);

// The base model with a head for `num_labels`, and either a fresh LoRA (lora.*) or the adapter in
// `adapter_dir` when given. Seeds torch with train.seed first, so every rank starts identical.
// `tp` as for model_options: each rank then reads only its slices of the checkpoint.
std::shared_ptr<LsLlama> load_model(const Config& config, const Placement& placement,
                                    int num_labels, const std::string& adapter_dir,
                                    LoadStats* stats = nullptr,
                                    std::shared_ptr<parallel::Communicator> tp = nullptr,
                                    const LossOptions& loss = {});

}  // namespace ls
