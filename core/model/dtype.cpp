// Floating-point type names (see dtype.h).
#include "core/model/dtype.h"

#include <utility>
#include <vector>

#include "core/base/error.h"

namespace ls {
namespace {

// Every choice but kAuto, and the type it names.
constexpr std::pair<DtypeChoice, c10::ScalarType> kTypes[] = {{DtypeChoice::kF32, c10::kFloat},
                                                              {DtypeChoice::kBF16, c10::kBFloat16},
                                                              {DtypeChoice::kF16, c10::kHalf}};

}  // namespace

c10::ScalarType resolve_dtype(DtypeChoice choice, c10::ScalarType automatic) {
  for (const auto& [named, type] : kTypes)
    if (named == choice) return type;
  return automatic;
}

c10::ScalarType parse_dtype(std::string_view name, std::string_view key) {
  const auto choice = try_parse_enum<DtypeChoice>(name);
  if (!choice || *choice == DtypeChoice::kAuto) {
    std::vector<std::string> types;
    for (const auto& [named, type] : kTypes) types.emplace_back(enum_name(named));
    fail("{}: unknown dtype '{}' (expected {})", key, name, or_list(types));
  }
  return resolve_dtype(*choice, c10::kFloat);
}

std::string dtype_name(c10::ScalarType dtype) {
  for (const auto& [named, type] : kTypes)
    if (type == dtype) return std::string(enum_name(named));
  return c10::toString(dtype);
}

}  // namespace ls
