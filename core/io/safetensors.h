// safetensors files: a memory-mapped reader with a fully validated header, and an atomic writer.
// The format is an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the raw data. Nothing here ever unpickles anything.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ls {

// Where one tensor lives inside a file; `begin`/`end` are offsets into the data section.
struct TensorInfo {
  c10::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Parses and validates a header against a data section of `data_size` bytes: JSON object, known
// dtypes, non-negative shapes, shape x dtype size = byte range, ranges inside the data and not
// overlapping. `file` names the source in errors. Throws UserError on anything else.
SafetensorsHeader parse_safetensors_header(std::string_view json, uint64_t data_size,
                                           const std::string& file);

// The safetensors dtype code ("F32", "BF16", ...) for a scalar type, and back.
std::string safetensors_dtype_code(c10::ScalarType dtype);

class SafetensorsFile {
 public:
  // Maps the file and validates its header; a broken file is a UserError naming it.
  static std::shared_ptr<const SafetensorsFile> open(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  bool contains(const std::string& name) const { return header_.tensors.count(name) > 0; }
  const TensorInfo& info(const std::string& name) const;  // UserError naming file and tensor
  std::vector<std::string> names() const;                 // sorted
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }

  // A CPU tensor over the mapped bytes, no copy; it keeps the mapping alive. The mapping is
  // private, so writing into the view changes this process's copy only, never the file (the
  // written pages become private copies: a view is for reading).
  at::Tensor view(const std::string& name) const;
  // `length` entries from `start` along `dim`, still a view: what a tensor-parallel rank reads.
  at::Tensor slice(const std::string& name, int64_t dim, int64_t start, int64_t length) const;

  // Fills `dst` with the tensor (or with `source`, a view or slice obtained from this file),
  // converting dtype and device. Same dtype on CPU reads the file straight into `dst`; otherwise
  // the mapped pages are dropped after the copy. Either way a full load never holds the weights
  // twice. Shapes must match exactly.
  void read_into(const std::string& name, const at::Tensor& dst) const;
  void read_into(const std::string& name, const at::Tensor& source, const at::Tensor& dst) const;

  // For frozen weights (never written, requires_grad false): when `source` (a view or slice of
  // this file) is contiguous, aligned and of dst's dtype and dst is on the CPU, dst becomes a view
  // of the mapping: no copy, its pages mapped now (MADV_POPULATE_READ) and shared with the page
  // cache (what HF's from_pretrained does, which maps them at first use). dst.set_data keeps dst's
  // identity, so a registered parameter stays registered; the view keeps the mapping alive.
  // Anything else (dtype conversion, a non-contiguous slice, a device) is read_into. Returns
  // whether dst now shares the mapping. Shapes must match exactly.
  bool share_into(const std::string& name, const at::Tensor& source, const at::Tensor& dst) const;
  // Whether `t`'s bytes lie inside this file's mapping.
  bool maps(const at::Tensor& t) const;

 private:
  struct Mapping;
  SafetensorsFile(std::filesystem::path path, std::shared_ptr<Mapping> mapping,
                  SafetensorsHeader header, uint64_t data_offset);
  void release_pages(const at::Tensor& source) const;
  void check_shape(const std::string& name, const at::Tensor& source, const at::Tensor& dst) const;

  std::filesystem::path path_;
  std::shared_ptr<Mapping> mapping_;
  SafetensorsHeader header_;
  uint64_t data_offset_ = 0;
};

// Copies the contiguous CPU tensor `source` into `dst` (contiguous, same dtype and size, any
// device) in chunks of `chunk_bytes` through two staging buffers, pinned when dst is on a CUDA
// device: while the device copies one chunk, the next is copied from `source` (the mapped file)
// into the other buffer, and a buffer is refilled only after an event says its copy is done. This
// is how weights reach a GPU: a plain copy_ from pageable memory would stage through the driver's
// own small buffer, one synchronous piece at a time. On the CPU it is a chunked memcpy (which is
// how the tests check the chunk arithmetic).
void copy_through_staging(const at::Tensor& source, const at::Tensor& dst, int64_t chunk_bytes);

// Writes `tensors` (any device, any layout; stored contiguous on CPU) in the given order, through
// a temporary file in the same directory renamed into place: a reader never sees half a file.
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace ls
