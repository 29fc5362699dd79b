// Floating-point types by the names configs and checkpoints use (f32/fp32/float32, bf16, f16).
#pragma once

#include <c10/core/ScalarType.h>

#include <string>
#include <string_view>

namespace ls {

// Parses a config value; `key` names where it came from in the error ("model.dtype").
c10::ScalarType parse_dtype(std::string_view name, std::string_view key);
std::string dtype_name(c10::ScalarType dtype);

}  // namespace ls
