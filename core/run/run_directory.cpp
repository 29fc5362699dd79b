// The run directory's layout (see run_directory.h).
#include "core/run/run_directory.h"

namespace ls {
namespace fs = std::filesystem;

bool RunDirectory::is_run(const fs::path& path) {
  return fs::exists(RunDirectory(path).config());
}

std::vector<fs::path> RunDirectory::outputs() const {
  return {state(),
          best_adapter(),
          last_adapter(),
          tensorboard(),
          metrics(),
          curves(),
          predictions("validation"),
          predictions("test")};
}

fs::path RunDirectory::adapter(const std::string& choice) const {
  if (choice == "best") return fs::exists(best_adapter()) ? best_adapter() : last_adapter();
  if (choice == "last") return last_adapter();
  return choice;
}

}  // namespace ls
