// Keyed dropout: masks that are a function of what is dropped, not of who drops it or when.
//
// A training step sets one 32-bit key per (batch row, position) from (seed, step, the row's
// dataset index, the token's position in its example); the trainer computes them on the host
// (dropout_row_keys) and the model shares them with every dropout site through a DropoutContext.
// A site (one LoRA projection of one layer, or the token head) turns them into the keep mask of
// its [B, T, C] input with one vectorised integer hash of (row key, column key), where a column
// key (made once per site) hashes the site and the global column:
//
//   keep[b, t, c] = mix(key[b, t] ^ hash32(hash32(column_offset + c ^ k) ^ site)) >= p * 2^32
//
// in a few elementwise int64 tensor ops per site (no per-example launches). The same integer
// math runs on CPU and CUDA, so the masks agree bit for bit across devices; they do not depend on
// the batch's other rows, its padded length, the micro-batch split, the data-parallel rank, or
// the tensor-parallel rank (a rank holding input columns [o, o + C) of a row-parallel projection
// passes column_offset o and gets exactly its slice of the tp = 1 mask). Dropout is x * keep /
// (1 - p), as torch's (x * keep * (1 / (1 - p))). Without keys (evaluation, tests, ls_forward) a
// site falls back to torch's generator (at::dropout's draws).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace ls {

// Row keys [B, T] int64 in [0, 2^32) on the CPU for a batch of `examples` (dataset indices, one
// per row) at optimizer step `step`. A token's position counts from its example's first real
// token (the first 1 of `attention_mask` [B, T]), so left and right padding key alike.
at::Tensor dropout_row_keys(uint64_t seed, int64_t step, const std::vector<int64_t>& examples,
                            const at::Tensor& attention_mask);

// A site's identity: a hash of (layer, module). The token head is layer -1, "score".
uint64_t dropout_site_id(int64_t layer, std::string_view module);

// Column keys [columns] int64 in [0, 2^32) of a site whose input holds columns
// [column_offset, column_offset + columns) of the full tensor.
at::Tensor dropout_column_keys(uint64_t site, int64_t columns, int64_t column_offset,
                               const at::TensorOptions& options);
// The keep mask (bool [B, T, C], on row_keys' device) from row keys [B, T] and column keys [C].
at::Tensor keyed_keep_mask(const at::Tensor& row_keys, const at::Tensor& column_keys, double p);
// The same, making the site's column keys.
at::Tensor keyed_keep_mask(const at::Tensor& row_keys, uint64_t site, int64_t columns,
                           int64_t column_offset, double p);

// The current training batch's row keys, shared by the model's dropout sites. Set before a
// training forward and kept until its backward is done (activation checkpointing recomputes the
// forward there and must see the same masks).
class DropoutContext {
 public:
  void set(at::Tensor row_keys) { row_keys_ = std::move(row_keys); }
  void clear() { row_keys_ = at::Tensor(); }
  const at::Tensor& row_keys() const { return row_keys_; }

 private:
  at::Tensor row_keys_;
};

// One dropout site: where its keys come from, who it is, and where its input columns start.
struct DropoutSite {
  std::shared_ptr<const DropoutContext> context;  // null or without keys: torch's generator
  uint64_t id = 0;
  int64_t column_offset = 0;
  mutable at::Tensor column_keys;  // made by the first keyed mask

  bool keyed() const { return context && context->row_keys().defined(); }
  // x * keep / (1 - p). Keyed: x is [B, T, C] with the keys' B and T.
  at::Tensor apply(const at::Tensor& x, double p) const;
  // The keyed keep mask for x (bool, x's shape). Only when keyed().
  at::Tensor keep_mask(const at::Tensor& x, double p) const;
};

}  // namespace ls
