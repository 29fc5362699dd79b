// A checkpoint: the tensors of one safetensors file, or of an HF model directory whose weights
// are one `model.safetensors` or shards listed in `model.safetensors.index.json`. Readers ask for
// tensors by name and never care which shard holds them.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/io/safetensors.h"

namespace ls {

class Checkpoint {
 public:
  // An HF model directory (single file or index + shards). Errors name the file and tensor.
  static Checkpoint open_directory(const std::filesystem::path& dir);
  static Checkpoint open_file(const std::filesystem::path& file);

  bool contains(const std::string& name) const { return files_.count(name) > 0; }
  std::vector<std::string> names() const;  // sorted
  // The file that holds `name`; UserError naming the checkpoint and tensor if none does.
  const SafetensorsFile& file_of(const std::string& name) const;
  // Whole-tensor view into the mapped file (no copy).
  at::Tensor view(const std::string& name) const { return file_of(name).view(name); }
  // Fills `dst` (any dtype/device) with the tensor; its shape must match exactly.
  void read_into(const std::string& name, const at::Tensor& dst) const;
  // For a frozen weight: `dst` becomes a view of the mapped file when no conversion is needed
  // (SafetensorsFile::share_into), else read_into. Returns whether it shares the mapping. The
  // view must never be written in place: replace its data instead (merge_lora_delta does).
  bool share_into(const std::string& name, const at::Tensor& dst) const;
  // Whether `t`'s bytes lie inside one of this checkpoint's mapped files.
  bool maps(const at::Tensor& t) const;
  // Fills `dst` with `dst.size(dim)` entries of `name` starting at `start` along `dim`: the read a
  // tensor-parallel shard does.
  void read_slice_into(const std::string& name, int64_t dim, int64_t start,
                       const at::Tensor& dst) const;
  // What errors call the checkpoint: the directory or the file.
  const std::string& label() const { return label_; }

 private:
  std::string label_;
  std::map<std::string, std::shared_ptr<const SafetensorsFile>> files_;  // tensor -> its file
};

}  // namespace ls
