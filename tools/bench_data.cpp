// bench_data: throughput of the data pipeline, raw file -> padded batches, on generated data.
//
//   bench_data [--sequences 100000] [--sentences 20000] [--threads 0] [--batch-size 32]
//              [--tokenizer tokenizer.model] [--work-dir DIR]
//
// Writes SST-2-sized sentences (5-40 words, ~20 on average) as JSONL and CoNLL-2003-sized
// sentences (4-25 words, four columns, BIO tags) as CoNLL, then times each stage: reading and
// parsing, tokenizing (+ label alignment), and sampling + collating every batch of one epoch
// through the background BatchLoader. Without --tokenizer it trains a LLaMA-style BPE model
// (byte fallback, 8k pieces) on part of the generated text first. Prints examples/s per stage
// and end to end.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/base/error.h"
#include "data/dataset.h"
#include "data/loader.h"

namespace fs = std::filesystem;
using namespace ls::data;
using ls::TaskType;

namespace {

// A vocabulary with a Zipf-like draw: frequent short words, a long tail of rarer ones.
class WordSource {
 public:
  explicit WordSource(uint64_t seed) : rng_(seed) {
    const char* common[] = {"the", "a",    "and",  "of",    "to",    "is",  "in",  "that",
                            "it",  "with", "film", "movie", "story", "but", "as",  "its",
                            "for", "this", "an",   "by",    "be",    "on",  "one", "more",
                            "not", "you",  "all",  "at",    "from"};
    for (const char* w : common) words_.emplace_back(w);
    const std::string syllables[] = {"ka",  "ri",  "mo",  "ten", "sho", "ver", "lin",  "da",  "pe",
                                     "qua", "zor", "ble", "nic", "tra", "ous", "ment", "ing", "al"};
    std::uniform_int_distribution<int> syllable(0, 17), count(2, 4);
    while (words_.size() < 20000) {
      std::string w;
      for (int k = count(rng_); k > 0; --k) w += syllables[syllable(rng_)];
      words_.push_back(w);
    }
  }
  const std::string& next() {
    // Zipf-ish: index = floor(n^u) - 1 with u uniform: heavy head, long tail.
    const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    const size_t index = static_cast<size_t>(std::pow(double(words_.size()), u)) - 1;
    return words_[std::min(index, words_.size() - 1)];
  }
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

 private:
  std::mt19937_64 rng_;
  std::vector<std::string> words_;
};

std::string json_escape(const std::string& s) {
  return nlohmann::json(s).dump();
}

void write_sequences(const fs::path& path, int64_t n, WordSource& words) {
  std::ofstream out(path);
  for (int64_t i = 0; i < n; ++i) {
    std::string text;
    for (int k = words.uniform(5, 40); k > 0; --k) text += (text.empty() ? "" : " ") + words.next();
    if (i % 7 == 0) text += " !";
    out << "{\"sentence\": " << json_escape(text) << ", \"label\": " << (i % 2) << "}\n";
  }
}

void write_conll(const fs::path& path, int64_t n, WordSource& words) {
  std::ofstream out(path);
  const char* types[] = {"PER", "ORG", "LOC", "MISC"};
  out << "-DOCSTART- -X- -X- O\n\n";
  for (int64_t i = 0; i < n; ++i) {
    for (int k = words.uniform(4, 25); k > 0; --k) {
      std::string word = words.next();
      if (words.uniform(0, 5) == 0) {  // an entity of one or two words
        const char* type = types[words.uniform(0, 3)];
        word[0] = static_cast<char>(std::toupper(word[0]));
        out << word << " NNP B-NP B-" << type << "\n";
        if (k > 1 && words.uniform(0, 1)) {
          --k;
          out << words.next() << " NNP I-NP I-" << type << "\n";
        }
      } else {
        out << word << " NN I-NP O\n";
      }
    }
    out << "\n";
  }
}

// Wall time and the process's CPU time (all threads): on a shared machine the wall time depends
// on the neighbours, the CPU time much less.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return double(t.tv_sec) + 1e-6 * double(t.tv_usec); };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct Timer {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double cpu_start = cpu_seconds();
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  double cpu() const { return cpu_seconds() - cpu_start; }
};

void run(const std::string& name, const std::string& path, const Tokenizer& tokenizer,
         const DatasetOptions& options, int64_t batch_size) {
  Timer total;
  Timer t_read;
  const RawDataset raw = read_raw_dataset(path, options.task, options.reader);
  const double read_s = t_read.seconds(), read_cpu = t_read.cpu();
  Timer t_build;
  const LabelMap labels = infer_label_map(raw);
  const Dataset dataset = build_dataset(raw, tokenizer, labels, options);
  const double build_s = t_build.seconds(), build_cpu = t_build.cpu();
  Timer t_batch;
  SamplerOptions sampler_options;
  sampler_options.batch_size = batch_size;
  sampler_options.group_by_length = true;
  const Sampler sampler(dataset.lengths(), sampler_options);
  int64_t rows = 0, padded = 0;
  BatchLoader loader(dataset, sampler, {}, {}, 1);
  while (auto batch = loader.next()) {
    rows += batch->size();
    padded += batch->input_ids.numel();
  }
  const double batch_s = t_batch.seconds(), batch_cpu = t_batch.cpu();
  const double all_s = total.seconds(), all_cpu = total.cpu();
  const double n = static_cast<double>(dataset.size());
  fmt::print("{}: {} examples, {:.1f} ids/example, {} rows in batches ({:.1f}% padding)\n", name,
             dataset.size(), double(dataset.stats.tokens) / n, rows,
             100.0 * double(padded - dataset.stats.tokens) / double(padded));
  fmt::print("  {}\n", dataset.summary());
  auto line = [&](const char* stage, double wall, double cpu) {
    fmt::print(
        "  {:<15} wall {:7.3f} s {:>10.0f} examples/s | cpu {:7.3f} s {:>10.0f} examples/cpu-s\n",
        stage, wall, n / wall, cpu, n / cpu);
  };
  line("read+parse", read_s, read_cpu);
  line("tokenize+align", build_s, build_cpu);
  line("sample+collate", batch_s, batch_cpu);
  line("end to end", all_s, all_cpu);
}

int bench_main(int argc, char** argv) {
  CLI::App app{"Data pipeline throughput: raw JSONL/CoNLL -> padded batches, on generated data."};
  int64_t sequences = 100000, sentences = 20000, batch_size = 32;
  int threads = 0;
  std::string tokenizer_path, work_dir;
  app.add_option("--sequences", sequences, "SST-2-sized JSONL examples");
  app.add_option("--sentences", sentences, "CoNLL sentences");
  app.add_option("--threads", threads, "tokenizing threads (0: one per hardware thread)");
  app.add_option("--batch-size", batch_size, "examples per batch");
  app.add_option("--tokenizer", tokenizer_path, "sentencepiece model (default: train one)");
  app.add_option("--work-dir", work_dir, "where the generated files go (default: a temp dir)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const bool own_dir = work_dir.empty();
  const fs::path dir =
      own_dir ? fs::temp_directory_path() / ("ls_bench_data_" + std::to_string(::getpid()))
              : fs::path(work_dir);
  fs::create_directories(dir);

  WordSource words(2023);
  write_sequences(dir / "sst2.jsonl", sequences, words);
  write_conll(dir / "conll.txt", sentences, words);
  if (tokenizer_path.empty()) {
    Timer t;
    train_sentencepiece("--input=" + (dir / "sst2.jsonl").string() +
                        " --model_prefix=" + (dir / "bench").string() +
                        " --model_type=bpe --vocab_size=8000 --byte_fallback=true"
                        " --split_digits=true --remove_extra_whitespaces=false"
                        " --normalization_rule_name=identity --input_sentence_size=20000"
                        " --shuffle_input_sentence=true --bos_id=1 --eos_id=2 --unk_id=0"
                        " --pad_id=-1 --minloglevel=2");
    tokenizer_path = (dir / "bench.model").string();
    fmt::print("trained an 8k-piece LLaMA-style BPE model in {:.1f} s\n", t.seconds());
  }
  const Tokenizer tokenizer(tokenizer_path);
  fmt::print("hardware threads: {}, tokenizing threads: {}\n", std::thread::hardware_concurrency(),
             threads > 0 ? threads : int(std::thread::hardware_concurrency()));

  DatasetOptions sst2;
  sst2.task = TaskType::kSequence;
  sst2.reader.text_fields = {"sentence"};
  sst2.max_length = 64;
  sst2.num_threads = threads;
  run("SST-2-sized JSONL", (dir / "sst2.jsonl").string(), tokenizer, sst2, batch_size);

  DatasetOptions conll;
  conll.task = TaskType::kToken;
  conll.max_length = 64;
  conll.num_threads = threads;
  run("CoNLL-2003-sized", (dir / "conll.txt").string(), tokenizer, conll, batch_size);

  if (own_dir) fs::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::run_main("bench_data", bench_main, argc, argv);
}
