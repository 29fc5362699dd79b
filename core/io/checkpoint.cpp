// Checkpoint directories and files (see checkpoint.h).
#include "core/io/checkpoint.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/error.h"

namespace ls {
namespace fs = std::filesystem;

Checkpoint Checkpoint::open_file(const fs::path& file) {
  Checkpoint checkpoint;
  checkpoint.label_ = file.string();
  auto opened = SafetensorsFile::open(file);
  for (const auto& name : opened->names()) checkpoint.files_[name] = opened;
  return checkpoint;
}

Checkpoint Checkpoint::open_directory(const fs::path& dir) {
  const auto index_path = dir / "model.safetensors.index.json";
  const auto single_path = dir / "model.safetensors";
  if (!fs::exists(index_path)) {
    if (fs::exists(single_path)) return open_file(single_path);
    if (fs::exists(dir / "pytorch_model.bin") || fs::exists(dir / "pytorch_model.bin.index.json"))
      fail(
          "{}: only pickle weights (pytorch_model.bin) found; ls-train reads safetensors only "
          "(convert with transformers: model.save_pretrained(dir, safe_serialization=True))",
          dir.string());
    fail("{}: no model.safetensors or model.safetensors.index.json", dir.string());
  }

  const std::string index_file = index_path.string();
  std::ifstream in(index_path);
  std::stringstream text;
  text << in.rdbuf();
  const auto index = nlohmann::json::parse(text.str(), nullptr, false);
  if (index.is_discarded() || !index.is_object()) fail("{}: not a JSON object", index_file);
  const auto weight_map = index.find("weight_map");
  if (weight_map == index.end() || !weight_map->is_object())
    fail("{}: missing object 'weight_map'", index_file);

  Checkpoint checkpoint;
  checkpoint.label_ = dir.string();
  std::map<std::string, std::shared_ptr<const SafetensorsFile>> shards;
  for (const auto& [name, shard_value] : weight_map->items()) {
    if (!shard_value.is_string()) fail("{}: weight_map.{} is not a file name", index_file, name);
    const auto shard = shard_value.get<std::string>();
    if (shard.find('/') != std::string::npos || shard == "..")
      fail("{}: weight_map.{}: shard '{}' is not a plain file name", index_file, name, shard);
    auto& opened = shards[shard];
    if (!opened) {
      if (!fs::exists(dir / shard))
        fail("{}: weight_map.{}: shard '{}' does not exist", index_file, name, shard);
      opened = SafetensorsFile::open(dir / shard);
    }
    if (!opened->contains(name))
      fail("{}: tensor '{}' is not in its shard {} (index.json says it is)", index_file, name,
           opened->path().string());
    checkpoint.files_[name] = opened;
  }
  return checkpoint;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> names;
  for (const auto& [name, file] : files_) names.push_back(name);
  return names;
}

const SafetensorsFile& Checkpoint::file_of(const std::string& name) const {
  const auto it = files_.find(name);
  if (it == files_.end()) fail("{}: missing tensor '{}'", label_, name);
  return *it->second;
}

void Checkpoint::read_into(const std::string& name, const at::Tensor& dst) const {
  file_of(name).read_into(name, dst);
}

bool Checkpoint::share_into(const std::string& name, const at::Tensor& dst) const {
  const auto& file = file_of(name);
  return file.share_into(name, file.view(name), dst);
}

bool Checkpoint::maps(const at::Tensor& t) const {
  return std::any_of(files_.begin(), files_.end(),
                     [&](const auto& entry) { return entry.second->maps(t); });
}

void Checkpoint::read_slice_into(const std::string& name, int64_t dim, int64_t start,
                                 const at::Tensor& dst) const {
  const auto& file = file_of(name);
  LS_ASSERT(dim >= 0 && dim < dst.dim(), "slice dim {} of a {}-d tensor", dim, dst.dim());
  file.read_into(name, file.slice(name, dim, start, dst.size(dim)), dst);
}

}  // namespace ls
