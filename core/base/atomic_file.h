// Writes that leave a file or directory either as it was or fully replaced, never half-written,
// and on disk when they return: write beside the target under a temporary name, fsync it, rename
// it over the target, fsync the directory.
#pragma once

#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string_view>

namespace ls {

// Runs `write` on a temporary file beside `path`, then renames it into place. On any failure
// (UserError naming the file) the temporary is removed and `path` is untouched.
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(std::ostream&)>& write);
void write_file_atomic(const std::filesystem::path& path, std::string_view text);

// How replace_directory swaps: kExchange swaps the two names in one step (Linux renameat2
// RENAME_EXCHANGE) and falls back to kRenameAside where the filesystem cannot; kRenameAside moves
// the target to `<target>.old`, the staged directory in, then removes the old one. A crash between
// its two renames leaves only `<target>.old`, which recover_directory puts back.
enum class DirectorySwap { kExchange, kRenameAside };

// Replaces directory `target` by the fully written `staged` one, every file of it fsynced first:
// a crash at any point leaves the old or the new directory (after recover_directory), never a mix
// and never none.
void replace_directory(const std::filesystem::path& staged, const std::filesystem::path& target,
                       DirectorySwap swap = DirectorySwap::kExchange);
// Undoes a crash inside replace_directory: when `target` is missing and `<target>.old` is there,
// renames it back. Returns whether it did.
bool recover_directory(const std::filesystem::path& target);

}  // namespace ls
