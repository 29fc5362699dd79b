// Keyed dropout (see keyed_dropout.h).
#include "core/model/keyed_dropout.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/base/error.h"
#include "core/base/shape_string.h"
#include "core/model/fused_ops.h"

namespace ls {
namespace {

constexpr int64_t kLow32 = 0xFFFFFFFF;
constexpr int64_t kColumnSalt = 0x5bd1e995;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// 32-bit integer mixing (xorshift-multiply, constants below 2^31 so that every product of a
// 32-bit value stays inside int64: the same exact integers on every device), in place on int64
// values in [0, 2^32). `finish` is the short form for the full-size [B, T, C] stage, whose input
// is already the XOR of two mixed values: its top bits, which the threshold reads, depend on
// every input bit after the first multiply.
void multiply_xorshift_(at::Tensor& x) {
  x.mul_(0x7feb352d).bitwise_and_(kLow32);
  x.bitwise_xor_(x.bitwise_right_shift(15));
  x.mul_(0x31848bab).bitwise_and_(kLow32);
}

void mix32_(at::Tensor& x) {
  x.bitwise_xor_(x.bitwise_right_shift(16));
  multiply_xorshift_(x);
  x.bitwise_xor_(x.bitwise_right_shift(16));
}

}  // namespace

at::Tensor dropout_row_keys(uint64_t seed, int64_t step, const std::vector<int64_t>& examples,
                            const at::Tensor& attention_mask) {
  const int64_t rows = static_cast<int64_t>(examples.size());
  LS_ASSERT(attention_mask.dim() == 2 && attention_mask.size(0) == rows,
            "dropout keys: {} examples but an attention mask of shape {}", rows,
            shape_string(attention_mask.sizes()));
  const int64_t length = attention_mask.size(1);
  const auto mask = attention_mask.to(at::kLong).contiguous();
  const int64_t* m = mask.data_ptr<int64_t>();
  at::Tensor keys = at::empty({rows, length}, at::kLong);
  int64_t* out = keys.data_ptr<int64_t>();
  const uint64_t step_key = splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(step));
  for (int64_t b = 0; b < rows; ++b) {
    int64_t first = 0;  // the example's first real token: its position 0
    while (first < length && m[b * length + first] == 0) ++first;
    if (first == length) first = 0;
    const uint64_t example = splitmix64(step_key ^ splitmix64(static_cast<uint64_t>(examples[b])));
    for (int64_t t = 0; t < length; ++t)
      out[b * length + t] =
          static_cast<int64_t>(splitmix64(example + static_cast<uint64_t>(t - first)) >> 32);
  }
  return keys;
}

uint64_t dropout_site_id(int64_t layer, std::string_view module) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the module name, then the layer mixed in
  for (const char c : module) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return splitmix64(h ^ splitmix64(static_cast<uint64_t>(layer))) >> 32;
}

at::Tensor dropout_column_keys(uint64_t site, int64_t columns, int64_t column_offset,
                               const at::TensorOptions& options) {
  at::NoGradGuard no_grad;
  at::Tensor keys = at::arange(column_offset, column_offset + columns, options.dtype(at::kLong))
                        .bitwise_xor_(kColumnSalt);
  mix32_(keys);
  keys.bitwise_xor_(static_cast<int64_t>(site & kLow32));
  mix32_(keys);
  return keys;
}

at::Tensor keyed_keep_mask(const at::Tensor& row_keys, const at::Tensor& column_keys, double p) {
  at::NoGradGuard no_grad;
  at::Tensor bits = row_keys.unsqueeze(-1).bitwise_xor(column_keys);
  multiply_xorshift_(bits);  // [B, T, C]: uniform in [0, 2^32)
  const auto threshold = static_cast<int64_t>(std::ceil(p * 4294967296.0));
  return bits.ge(threshold);
}

at::Tensor keyed_keep_mask(const at::Tensor& row_keys, uint64_t site, int64_t columns,
                           int64_t column_offset, double p) {
  return keyed_keep_mask(row_keys,
                         dropout_column_keys(site, columns, column_offset, row_keys.options()), p);
}

at::Tensor DropoutSite::keep_mask(const at::Tensor& x, double p) const {
  const at::Tensor& keys = context->row_keys();
  LS_ASSERT(x.dim() == 3 && x.size(0) == keys.size(0) && x.size(1) == keys.size(1),
            "keyed dropout on an input of shape {} with keys for [{}, {}]", shape_string(x.sizes()),
            keys.size(0), keys.size(1));
  // The column keys depend only on the site and its columns: made once, then reused.
  const int64_t columns = x.size(2);
  if (!column_keys.defined() || column_keys.size(0) != columns ||
      column_keys.device() != keys.device())
    column_keys = dropout_column_keys(id, columns, column_offset, keys.options());
  return keyed_keep_mask(keys, column_keys, p);
}

at::Tensor DropoutSite::apply(const at::Tensor& x, double p) const {
  if (!keyed()) return x.is_cpu() ? dropout_cpu(x, p) : at::dropout(x, p, /*train=*/true);
  // where + one scale: two passes over x instead of a float mask and a product (see BENCH.md).
  return at::where(keep_mask(x, p), x, 0).mul_(1 / (1 - p));
}

}  // namespace ls
