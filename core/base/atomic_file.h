// Writes that leave a file or directory either as it was or fully replaced, never half-written:
// write beside the target under a temporary name, then rename over it.
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

// Replaces directory `target` by the fully written `staged` one: a crash leaves the old or the
// new directory, never a mix (rename aside, rename in, remove the old).
void replace_directory(const std::filesystem::path& staged, const std::filesystem::path& target);

}  // namespace ls
