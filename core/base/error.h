// Errors: the two kinds ls-train raises and how programs report them.
// UserError is something a user can fix (config, data, checkpoint, command line): one line that
// names the file, line or key. Anything else is a bug and carries its location.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

namespace ls {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw UserError(fmt::format(format, std::forward<Args>(args)...));
}

// Runs a program's body, turning exceptions into one "PROGRAM: error: ..." line and an exit code:
// 2 for a user error, 1 for anything else. Keeps every main() to one line of error handling.
inline int run_main(const char* program, int (*body)(int, char**), int argc, char** argv) {
  try {
    return body(argc, argv);
  } catch (const UserError& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", program, e.what());
    return 1;
  }
}

}  // namespace ls

// Internal invariant: a failure is a bug in ls-train, reported with its location.
#define LS_ASSERT(cond, ...)                                                                \
  do {                                                                                      \
    if (!(cond))                                                                            \
      throw std::logic_error(fmt::format("{}:{}: internal check '{}' failed: {}", __FILE__, \
                                         __LINE__, #cond, fmt::format(__VA_ARGS__)));       \
  } while (0)
