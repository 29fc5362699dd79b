// Sampler (see sampler.h).
#include "data/sampler.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "core/base/error.h"

namespace ls::data {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, bound) by rejection: std::uniform_int_distribution is implementation-defined,
// and the order must not change with the standard library.
uint64_t bounded(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do x = rng();
  while (x >= limit);
  return x % bound;
}

}  // namespace

Sampler::Sampler(std::vector<int64_t> lengths, SamplerOptions options)
    : lengths_(std::move(lengths)), options_(options) {
  if (lengths_.empty()) fail("cannot sample from an empty dataset");
  if (options_.batch_size < 1) fail("batch size must be at least 1, got {}", options_.batch_size);
  if (options_.accumulation < 1)
    fail("accumulation must be at least 1, got {}", options_.accumulation);
  if (options_.dp_size < 1 || options_.dp_rank < 0 || options_.dp_rank >= options_.dp_size)
    fail("data-parallel rank {} of {} is not a valid rank", options_.dp_rank, options_.dp_size);
  if (options_.mega_batch_factor < 1)
    fail("mega_batch_factor must be at least 1, got {}", options_.mega_batch_factor);
}

std::vector<int64_t> Sampler::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(lengths_.size());
  std::iota(order.begin(), order.end(), 0);
  if (options_.shuffle) {
    std::mt19937_64 rng(splitmix64(options_.seed ^ splitmix64(static_cast<uint64_t>(epoch))));
    for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[bounded(rng, i + 1)]);
  }
  if (options_.group_by_length) {
    const size_t mega = static_cast<size_t>(options_.batch_size * options_.dp_size *
                                            options_.accumulation * options_.mega_batch_factor);
    for (size_t begin = 0; begin < order.size(); begin += mega) {
      const auto first = order.begin() + static_cast<std::ptrdiff_t>(begin);
      const auto last =
          order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), begin + mega));
      std::stable_sort(first, last,
                       [&](int64_t a, int64_t b) { return lengths_[a] > lengths_[b]; });
    }
  }
  return order;
}

int64_t batches_per_epoch(int64_t dataset_size, const SamplerOptions& options) {
  const int64_t round = options.batch_size * options.dp_size;
  const int64_t global = round * options.accumulation;
  const int64_t rem = options.drop_last ? 0 : dataset_size % global;
  return dataset_size / global * options.accumulation + (rem + round - 1) / round;
}

int64_t Sampler::batches_per_epoch() const {
  return data::batches_per_epoch(dataset_size(), options_);
}

std::vector<std::vector<int64_t>> Sampler::epoch_batches(int64_t epoch) const {
  const std::vector<int64_t> order = epoch_order(epoch);
  const int64_t n = dataset_size(), b = options_.batch_size, size = options_.dp_size,
                rank = options_.dp_rank, round = b * size;
  const int64_t count = batches_per_epoch();
  std::vector<std::vector<int64_t>> batches;
  batches.reserve(static_cast<size_t>(count));
  for (int64_t m = 0; m < count; ++m) {
    const int64_t start = m * round, examples = std::min(round, n - start);
    // A full round: slices of b. The epoch's last, short round: shares as even as they go.
    const int64_t share = examples == round ? b : examples / size,
                  extra = examples == round ? 0 : examples % size;
    const int64_t begin = start + rank * share + std::min(rank, extra);
    const int64_t end = begin + share + (rank < extra ? 1 : 0);
    batches.emplace_back(order.begin() + begin, order.begin() + end);
  }
  return batches;
}

nlohmann::json Sampler::save(const SamplerPosition& position) const {
  return {{"epoch", position.epoch},
          {"batch", position.batch},
          {"dataset_size", dataset_size()},
          {"batch_size", options_.batch_size},
          {"accumulation", options_.accumulation},
          {"dp_size", options_.dp_size},
          {"seed", options_.seed},
          {"shuffle", options_.shuffle},
          {"group_by_length", options_.group_by_length},
          {"mega_batch_factor", options_.mega_batch_factor},
          {"drop_last", options_.drop_last}};
}

SamplerPosition Sampler::restore(const nlohmann::json& state) const {
  const nlohmann::json expected = save({});
  if (!state.is_object())
    fail("sampler state: expected a JSON object, found {}", state.type_name());
  for (const auto& [key, value] : expected.items()) {
    // States from before gradient accumulation was the sampler's had one batch per step.
    const nlohmann::json saved = key == "accumulation" ? state.value(key, nlohmann::json(1))
                                 : state.contains(key) ? state[key]
                                                       : nlohmann::json();
    if (saved.is_null()) fail("sampler state: missing \"{}\"", key);
    if (key != "epoch" && key != "batch" && saved != value)
      fail(
          "sampler state was saved with {} = {}, but this run has {}: resuming would not "
          "replay the same batches",
          key, saved.dump(), value.dump());
  }
  if (!state["epoch"].is_number_integer() || !state["batch"].is_number_integer())
    fail("sampler state: \"epoch\" and \"batch\" must be integers");
  SamplerPosition position{state["epoch"].get<int64_t>(), state["batch"].get<int64_t>()};
  if (position.epoch < 0 || position.batch < 0 || position.batch > batches_per_epoch())
    fail("sampler state: position epoch {} batch {} is outside an epoch of {} batches",
         position.epoch, position.batch, batches_per_epoch());
  return position;
}

}  // namespace ls::data
