// Atomic file and directory replacement (see atomic_file.h).
#include "core/base/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "core/base/error.h"

namespace ls {

namespace fs = std::filesystem;

void write_atomically(const fs::path& path, const std::function<void(std::ostream&)>& write) {
  const auto tmp = path.string() + ".tmp." + std::to_string(::getpid());
  try {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("{}: cannot create: {}", tmp, std::strerror(errno));
    write(out);
    out.flush();
    if (!out) fail("{}: write failed", tmp);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail("{}: cannot rename into place: {}", path.string(), ec.message());
  }
}

void write_file_atomic(const fs::path& path, std::string_view text) {
  write_atomically(path, [&](std::ostream& out) {
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  });
}

void replace_directory(const fs::path& staged, const fs::path& target) {
  if (fs::exists(target)) {
    const fs::path old = target.string() + ".old";
    fs::remove_all(old);
    fs::rename(target, old);
    fs::rename(staged, target);
    fs::remove_all(old);
  } else {
    fs::rename(staged, target);
  }
}

}  // namespace ls
