// Helpers the core tests share: where the fixtures are, golden gradient names, a scratch
// directory, and the error measure parity tests use (max |a - b| / max |b|, over real tokens
// where a mask is given).
#pragma once

#include <ATen/ATen.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "core/model/ls_llama.h"

namespace ls::test {

inline std::filesystem::path source_dir() {
  return LS_SOURCE_DIR;
}
inline std::filesystem::path golden_dir() {
  return source_dir() / "tests/fixtures/golden_tiny";
}

// PEFT's in-memory name of a trained parameter ("...lora_A.default.weight",
// "score.modules_to_save.default.weight"), as golden.safetensors keys its gradients:
// "grad.<variant>.<name>".
inline std::string golden_grad_name(const std::string& variant, const std::string& name) {
  auto peft = LsLlama::peft_name(name);
  for (const std::string part : {".lora_A", ".lora_B"})
    if (auto at = peft.find(part + ".weight"); at != std::string::npos)
      peft.insert(at + part.size(), ".default");
  if (auto at = peft.find(".score."); at != std::string::npos)
    peft.insert(at + 7, "modules_to_save.default.");
  return "grad." + variant + "." + peft;
}

// The text of a doc page (path relative to the source tree) between the lines
// "<!-- NAME:begin -->" and "<!-- NAME:end -->", where a generated table is pasted; nullopt when
// the page or a marker is missing.
inline std::optional<std::string> generated_doc_section(const std::string& page,
                                                        const std::string& name) {
  std::ifstream doc(source_dir() / page, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
  const std::string begin = "<!-- " + name + ":begin -->\n", end = "<!-- " + name + ":end -->";
  const auto from = text.find(begin);
  if (from == std::string::npos) return std::nullopt;
  const auto to = text.find(end, from + begin.size());
  if (to == std::string::npos) return std::nullopt;
  return text.substr(from + begin.size(), to - from - begin.size());
}

// A fresh directory under the system temp dir, removed with the object.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / (name + "." + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Relative error of `actual` against `expected`; `mask` [B, T] restricts [B, T, ...] tensors to
// positions where it is non-zero (HF's values at padding are not specified).
inline double relative_error(const at::Tensor& actual, const at::Tensor& expected,
                             const std::optional<at::Tensor>& mask = std::nullopt) {
  auto a = actual.detach().to(at::kDouble).cpu();
  auto e = expected.detach().to(at::kDouble).cpu().reshape(a.sizes());
  if (mask) {
    const auto keep = mask->to(at::kBool).cpu();
    a = a.index({keep});
    e = e.index({keep});
  }
  const double scale = e.abs().max().item<double>();
  return (a - e).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

}  // namespace ls::test
