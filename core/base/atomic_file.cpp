// Atomic, durable file and directory replacement (see atomic_file.h).
#include "core/base/atomic_file.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "core/base/error.h"

namespace ls {

namespace fs = std::filesystem;

namespace {

// Flushes a file's or a directory's contents (a directory's: its entries, so a rename in it
// survives a power cut) to disk.
void sync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) fail("{}: cannot open to sync: {}", path.string(), std::strerror(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) fail("{}: fsync failed: {}", path.string(), std::strerror(saved));
}

void sync_parent(const fs::path& path) {
  const fs::path parent = path.parent_path();
  sync_path(parent.empty() ? fs::path(".") : parent, /*directory=*/true);
}

// Every file and directory under `dir`, then `dir` itself.
void sync_tree(const fs::path& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file() || entry.is_directory())
      sync_path(entry.path(), entry.is_directory());
  sync_path(dir, /*directory=*/true);
}

void rename_or_fail(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) fail("{}: cannot rename to {}: {}", from.string(), to.string(), ec.message());
}

fs::path aside(const fs::path& target) {
  return target.string() + ".old";
}

}  // namespace

void write_atomically(const fs::path& path, const std::function<void(std::ostream&)>& write) {
  const auto tmp = path.string() + ".tmp." + std::to_string(::getpid());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) fail("{}: cannot create: {}", tmp, std::strerror(errno));
      write(out);
      out.flush();
      if (!out) fail("{}: write failed", tmp);
    }
    sync_path(tmp, /*directory=*/false);
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
  sync_parent(path);
}

void write_file_atomic(const fs::path& path, std::string_view text) {
  write_atomically(path, [&](std::ostream& out) {
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  });
}

void replace_directory(const fs::path& staged, const fs::path& target, DirectorySwap swap) {
  sync_tree(staged);
  recover_directory(target);  // a crash inside an earlier swap left only the old copy
  if (!fs::exists(target)) {
    rename_or_fail(staged, target);
    sync_parent(target);
    return;
  }
  if (swap == DirectorySwap::kExchange) {
    if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
      sync_parent(target);
      fs::remove_all(staged);  // the old directory, under the staged name now
      return;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
      fail("{}: cannot swap in {}: {}", target.string(), staged.string(), std::strerror(errno));
  }
  const fs::path old = aside(target);
  fs::remove_all(old);
  rename_or_fail(target, old);
  sync_parent(target);
  rename_or_fail(staged, target);
  sync_parent(target);
  fs::remove_all(old);
}

bool recover_directory(const fs::path& target) {
  const fs::path old = aside(target);
  if (fs::exists(target) || !fs::is_directory(old)) return false;
  rename_or_fail(old, target);
  sync_parent(target);
  return true;
}

}  // namespace ls
