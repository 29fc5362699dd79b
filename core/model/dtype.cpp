// Floating-point type names (see dtype.h).
#include "core/model/dtype.h"

#include "core/base/error.h"

namespace ls {

c10::ScalarType parse_dtype(std::string_view name, std::string_view key) {
  if (name == "f32" || name == "fp32" || name == "float32" || name == "float") return c10::kFloat;
  if (name == "bf16" || name == "bfloat16") return c10::kBFloat16;
  if (name == "f16" || name == "fp16" || name == "float16" || name == "half") return c10::kHalf;
  fail("{}: unknown dtype '{}' (expected f32, bf16 or f16)", key, name);
}

std::string dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat:
      return "f32";
    case c10::kBFloat16:
      return "bf16";
    case c10::kHalf:
      return "f16";
    default:
      return c10::toString(dtype);
  }
}

}  // namespace ls
