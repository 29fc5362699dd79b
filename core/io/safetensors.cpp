// safetensors reader and writer (see safetensors.h).
#include "core/io/safetensors.h"

#include <ATen/ATen.h>
#include <c10/core/Event.h>
#include <c10/core/GradMode.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/base/atomic_file.h"
#include "core/base/error.h"
#include "core/base/shape_string.h"

namespace ls {
namespace {

// Headers beyond this are refused before they are read (the reference implementation's limit).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14's value; older headers lack the name
#endif
// Staging chunk for device loads: large enough that each copy runs at the bus's rate, small
// enough that two pinned buffers cost little.
constexpr int64_t kStagingChunkBytes = 32 << 20;

struct DtypeCode {
  const char* code;
  c10::ScalarType dtype;
};
constexpr DtypeCode kDtypes[] = {
    {"F64", c10::kDouble}, {"F32", c10::kFloat}, {"F16", c10::kHalf},  {"BF16", c10::kBFloat16},
    {"I64", c10::kLong},   {"I32", c10::kInt},   {"I16", c10::kShort}, {"I8", c10::kChar},
    {"U8", c10::kByte},    {"BOOL", c10::kBool},
};

}  // namespace

std::string safetensors_dtype_code(c10::ScalarType dtype) {
  for (const auto& d : kDtypes)
    if (d.dtype == dtype) return d.code;
  fail("safetensors cannot store dtype {}", c10::toString(dtype));
}

SafetensorsHeader parse_safetensors_header(std::string_view text, uint64_t data_size,
                                           const std::string& file) {
  const auto json = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (json.is_discarded()) fail("{}: header is not valid JSON", file);
  if (!json.is_object()) fail("{}: header is not a JSON object", file);

  SafetensorsHeader header;
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, const std::string*>> ranges;
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("{}: __metadata__ is not an object", file);
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) fail("{}: __metadata__.{} is not a string", file, key);
        header.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) fail("{}: tensor '{}': entry is not an object", file, name);
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string())
      fail("{}: tensor '{}': missing or non-string 'dtype'", file, name);
    if (shape_it == entry.end() || !shape_it->is_array())
      fail("{}: tensor '{}': missing or non-array 'shape'", file, name);
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2)
      fail("{}: tensor '{}': 'data_offsets' must be [begin, end]", file, name);

    TensorInfo info;
    const auto code = dtype_it->get<std::string>();
    const auto* known = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                     [&](const DtypeCode& d) { return code == d.code; });
    if (known == std::end(kDtypes))
      fail("{}: tensor '{}': unsupported dtype '{}'", file, name, code);
    info.dtype = known->dtype;

    uint64_t bytes = c10::elementSize(info.dtype);
    for (const auto& dim : *shape_it) {
      if (!dim.is_number_unsigned())
        fail("{}: tensor '{}': shape {} has a non-integer or negative dimension", file, name,
             shape_it->dump());
      const auto size = dim.get<uint64_t>();
      if (size > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(bytes, size, &bytes))
        fail("{}: tensor '{}': shape {} is too large", file, name, shape_it->dump());
      info.shape.push_back(static_cast<int64_t>(size));
    }
    for (const auto& offset : *offsets_it)
      if (!offset.is_number_unsigned())
        fail("{}: tensor '{}': data_offsets {} are not non-negative integers", file, name,
             offsets_it->dump());
    info.begin = (*offsets_it)[0].get<uint64_t>();
    info.end = (*offsets_it)[1].get<uint64_t>();
    if (info.end < info.begin || info.end - info.begin != bytes)
      fail("{}: tensor '{}': data_offsets [{}, {}] hold {} bytes but {} {} needs {}", file, name,
           info.begin, info.end, info.end >= info.begin ? info.end - info.begin : 0, code,
           shape_string(info.shape), bytes);
    if (info.end > data_size)
      fail(
          "{}: tensor '{}': data_offsets [{}, {}] run past the end of the data ({} bytes); "
          "truncated file?",
          file, name, info.begin, info.end, data_size);
    auto [it, inserted] = header.tensors.emplace(name, std::move(info));
    ranges.push_back({{it->second.begin, it->second.end}, &it->first});
  }

  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    const auto& [prev, prev_name] = ranges[i - 1];
    const auto& [cur, cur_name] = ranges[i];
    if (cur.first < prev.second && cur.first != cur.second && prev.first != prev.second)
      fail("{}: tensor '{}' (bytes [{}, {}]) overlaps tensor '{}' (bytes [{}, {}])", file,
           *cur_name, cur.first, cur.second, *prev_name, prev.first, prev.second);
  }
  return header;
}

// The whole file, mapped copy-on-write, and its descriptor for plain reads.
struct SafetensorsFile::Mapping {
  void* base = nullptr;
  size_t size = 0;
  int fd = -1;
  ~Mapping() {
    if (base) munmap(base, size);
    if (fd >= 0) ::close(fd);
  }
};

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  const std::string file = path.string();
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", file, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("{}: cannot stat: {}", file, std::strerror(err));
  }
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail("{}: {} bytes is too short for a safetensors file (truncated?)", file, file_size);
  }
  auto mapping = std::make_shared<Mapping>();
  mapping->size = file_size;
  mapping->fd = fd;
  mapping->base = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  if (mapping->base == MAP_FAILED) {
    mapping->base = nullptr;
    fail("{}: cannot map: {}", file, std::strerror(map_errno));
  }

  const auto* bytes = static_cast<const unsigned char*>(mapping->base);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];  // little-endian
  if (header_size > file_size - 8)
    fail("{}: header length {} runs past the end of the file ({} bytes); truncated?", file,
         header_size, file_size);
  if (header_size > kMaxHeaderBytes)
    fail("{}: header length {} exceeds the {} byte limit", file, header_size, kMaxHeaderBytes);
  const std::string_view text(reinterpret_cast<const char*>(bytes + 8), header_size);
  auto header = parse_safetensors_header(text, file_size - 8 - header_size, file);
  return std::shared_ptr<const SafetensorsFile>(
      new SafetensorsFile(path, std::move(mapping), std::move(header), 8 + header_size));
}

SafetensorsFile::SafetensorsFile(std::filesystem::path path, std::shared_ptr<Mapping> mapping,
                                 SafetensorsHeader header, uint64_t data_offset)
    : path_(std::move(path)),
      mapping_(std::move(mapping)),
      header_(std::move(header)),
      data_offset_(data_offset) {}

SafetensorsFile::~SafetensorsFile() = default;

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = header_.tensors.find(name);
  if (it == header_.tensors.end()) fail("{}: no tensor '{}'", path_.string(), name);
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> names;
  for (const auto& [name, info] : header_.tensors) names.push_back(name);
  return names;
}

at::Tensor SafetensorsFile::view(const std::string& name) const {
  const auto& tensor = info(name);
  auto* data = static_cast<char*>(mapping_->base) + data_offset_ + tensor.begin;
  const auto options = at::TensorOptions().dtype(tensor.dtype).device(at::kCPU);
  if (reinterpret_cast<uintptr_t>(data) % c10::elementSize(tensor.dtype) != 0) {
    // Legal but unaligned: ATen kernels assume aligned elements, so this one tensor is copied.
    auto copy = at::empty(tensor.shape, options);
    std::memcpy(copy.data_ptr(), data, tensor.end - tensor.begin);
    return copy;
  }
  auto keep_alive = mapping_;
  return at::from_blob(
      data, tensor.shape, [keep_alive](void*) mutable { keep_alive.reset(); }, options);
}

at::Tensor SafetensorsFile::slice(const std::string& name, int64_t dim, int64_t start,
                                  int64_t length) const {
  const auto& tensor = info(name);
  const auto rank = static_cast<int64_t>(tensor.shape.size());
  if (dim < 0 || dim >= rank || start < 0 || length < 0 || start + length > tensor.shape[dim])
    fail("{}: tensor '{}' {}: slice [{}, {}) along dim {} is out of range", path_.string(), name,
         shape_string(tensor.shape), start, start + length, dim);
  return view(name).narrow(dim, start, length);
}

void SafetensorsFile::read_into(const std::string& name, const at::Tensor& dst) const {
  read_into(name, view(name), dst);
}

void SafetensorsFile::check_shape(const std::string& name, const at::Tensor& source,
                                  const at::Tensor& dst) const {
  if (source.sizes() != dst.sizes())
    fail("{}: tensor '{}' has shape {} but the model expects {}", path_.string(), name,
         shape_string(source.sizes()), shape_string(dst.sizes()));
}

bool SafetensorsFile::maps(const at::Tensor& t) const {
  if (!t.defined() || !t.is_cpu()) return false;
  const auto base = reinterpret_cast<uintptr_t>(mapping_->base);
  const auto first = reinterpret_cast<uintptr_t>(t.data_ptr());
  return first >= base && first + t.nbytes() <= base + mapping_->size;
}

void SafetensorsFile::read_into(const std::string& name, const at::Tensor& source,
                                const at::Tensor& dst) const {
  check_shape(name, source, dst);
  const bool same_dtype = dst.scalar_type() == source.scalar_type();
  if (maps(source) && source.is_contiguous() && dst.is_contiguous() && dst.is_cpu() && same_dtype) {
    // Checkpoint dtype = model dtype, on CPU, into memory of its own (a trainable tensor): read
    // straight from the file into it. No page of the mapping is touched, so no second copy
    // ever exists.
    auto* out = static_cast<char*>(dst.data_ptr());
    const auto offset = static_cast<off_t>(reinterpret_cast<uintptr_t>(source.data_ptr()) -
                                           reinterpret_cast<uintptr_t>(mapping_->base));
    size_t done = 0;
    while (done < source.nbytes()) {
      const auto n = ::pread(mapping_->fd, out + done, source.nbytes() - done, offset + done);
      if (n <= 0)
        fail("{}: reading tensor '{}' failed: {}", path_.string(), name,
             n == 0 ? "unexpected end of file" : std::strerror(errno));
      done += static_cast<size_t>(n);
    }
    return;
  }
  if (dst.is_cuda()) {
    // The file's bytes go up as they are, through pinned staging; a dtype conversion runs on the
    // device afterwards.
    const at::Tensor host = source.contiguous();
    const bool direct = same_dtype && dst.is_contiguous();
    const at::Tensor target =
        direct ? dst : at::empty(source.sizes(), dst.options().dtype(source.scalar_type()));
    copy_through_staging(host, target, kStagingChunkBytes);
    if (!direct) {
      c10::NoGradGuard no_grad;
      dst.copy_(target);
    }
    release_pages(source);
    return;
  }
  {
    c10::NoGradGuard no_grad;
    dst.copy_(source);
  }
  release_pages(source);
}

bool SafetensorsFile::share_into(const std::string& name, const at::Tensor& source,
                                 const at::Tensor& dst) const {
  check_shape(name, source, dst);
  if (!dst.is_cpu() || dst.requires_grad() || dst.scalar_type() != source.scalar_type() ||
      !source.is_contiguous() || !maps(source)) {
    read_into(name, source, dst);
    return false;
  }
  // Map the pages into this process now (from the page cache, read from disk first where they
  // are not cached), so that loading costs what it costs and the first forward pays no page
  // faults. Kernels before 5.14 lack MADV_POPULATE_READ: there, only start reading ahead.
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto first = reinterpret_cast<uintptr_t>(source.data_ptr()) / page * page;
  const auto last = reinterpret_cast<uintptr_t>(source.data_ptr()) + source.nbytes();
  if (last > first &&
      madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_READ) != 0)
    madvise(reinterpret_cast<void*>(first), last - first, MADV_WILLNEED);
  dst.set_data(source);
  return true;
}

void SafetensorsFile::release_pages(const at::Tensor& source) const {
  // Only whole pages inside the tensor's byte range: neighbours may still be needed.
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto base = reinterpret_cast<uintptr_t>(mapping_->base);
  const auto first = reinterpret_cast<uintptr_t>(source.data_ptr());
  const auto last = first + source.nbytes();
  if (first < base || last > base + mapping_->size || !source.is_contiguous()) return;
  const uintptr_t begin = (first + page - 1) / page * page;
  const uintptr_t end = last / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void copy_through_staging(const at::Tensor& source, const at::Tensor& dst, int64_t chunk_bytes) {
  LS_ASSERT(source.is_cpu() && source.is_contiguous() && dst.is_contiguous() &&
                source.scalar_type() == dst.scalar_type() && source.numel() == dst.numel(),
            "staged copy of a {} {} {} tensor into a {} {} {} one", source.device().str(),
            c10::toString(source.scalar_type()), shape_string(source.sizes()), dst.device().str(),
            c10::toString(dst.scalar_type()), shape_string(dst.sizes()));
  LS_ASSERT(chunk_bytes > 0, "staging chunk of {} bytes", chunk_bytes);
  const auto total = static_cast<int64_t>(source.nbytes());
  if (total == 0) return;
  const bool cuda = dst.is_cuda();
  const int64_t chunk = std::min(chunk_bytes, total);
  const auto byte_options = at::TensorOptions().dtype(at::kByte).pinned_memory(cuda);
  const at::Tensor buffers[2] = {at::empty({chunk}, byte_options),
                                 at::empty({chunk}, byte_options)};
  std::optional<c10::Event> copied[2];  // when buffer i's last copy to the device has finished
  std::optional<c10::impl::VirtualGuardImpl> cuda_guard;
  if (cuda) cuda_guard.emplace(c10::DeviceType::CUDA);

  c10::NoGradGuard no_grad;  // dst may be a parameter
  const auto* from = static_cast<const char*>(source.data_ptr());
  const at::Tensor to = dst.reshape({-1}).view(at::kByte);
  int i = 0;
  for (int64_t offset = 0; offset < total; offset += chunk, i ^= 1) {
    const int64_t n = std::min(chunk, total - offset);
    if (copied[i]) copied[i]->synchronize();
    std::memcpy(buffers[i].data_ptr(), from + offset, static_cast<size_t>(n));
    to.narrow(0, offset, n).copy_(buffers[i].narrow(0, 0, n), /*non_blocking=*/cuda);
    if (cuda) {
      copied[i].emplace(c10::DeviceType::CUDA);
      copied[i]->record(cuda_guard->getStream(dst.device()));
    }
  }
  // In-flight copies stay ordered before later work on the stream; the pinned buffers return to
  // the caching host allocator, which reuses them only after those copies (copy_ recorded them).
}

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    LS_ASSERT(!header.contains(name), "duplicate tensor name '{}'", name);
    auto cpu = tensor.detach().to(at::kCPU).contiguous();
    header[name] = {{"dtype", safetensors_dtype_code(cpu.scalar_type())},
                    {"shape", cpu.sizes().vec()},
                    {"data_offsets", {offset, offset + cpu.nbytes()}}};
    offset += cpu.nbytes();
    data.push_back(std::move(cpu));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned

  write_atomically(path, [&](std::ostream& out) {
    unsigned char length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(text.size() >> (8 * i));
    out.write(reinterpret_cast<const char*>(length), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& tensor : data)
      out.write(static_cast<const char*>(tensor.data_ptr()),
                static_cast<std::streamsize>(tensor.nbytes()));
  });
}

}  // namespace ls
