// replace_directory (core/base/atomic_file.h) killed at any moment: a child process swaps fresh
// copies of a two-file directory in, over and over, and is SIGKILLed after a varying delay. After
// recover_directory the directory is there, whole: both files from the same copy. Both swaps are
// tried: the one-step exchange, and the rename-aside fallback, whose crash window between its two
// renames is what recover_directory closes.
#include "core/base/atomic_file.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_copy(const fs::path& dir, int version) {
  fs::create_directories(dir);
  ls::write_file_atomic(dir / "weights", std::to_string(version));
  ls::write_file_atomic(dir / "trainer.json", std::to_string(version));
}

class ReplaceDirectory : public ::testing::TestWithParam<ls::DirectorySwap> {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ls_atomic_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(static_cast<int>(GetParam())));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_P(ReplaceDirectory, KilledAtAnyMomentLeavesOneWholeCopy) {
  const fs::path target = root_ / "state", staged = root_ / "state.tmp";
  int recovered = 0;
  for (int trial = 0; trial < 40; ++trial) {
    fs::remove_all(target);
    fs::remove_all(staged);
    fs::remove_all(target.string() + ".old");
    write_copy(target, 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (int version = 1;; ++version) {
        fs::remove_all(staged);
        write_copy(staged, version);
        ls::replace_directory(staged, target, GetParam());
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500 + 397 * trial));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    recovered += ls::recover_directory(target);
    ASSERT_TRUE(fs::is_directory(target)) << "trial " << trial << ": no " << target;
    const std::string weights = read_text(target / "weights");
    ASSERT_FALSE(weights.empty()) << "trial " << trial;
    EXPECT_EQ(read_text(target / "trainer.json"), weights) << "trial " << trial;
  }
  std::cout << "recovered after " << recovered << " of 40 kills\n";
}

INSTANTIATE_TEST_SUITE_P(Swaps, ReplaceDirectory,
                         ::testing::Values(ls::DirectorySwap::kExchange,
                                           ls::DirectorySwap::kRenameAside),
                         [](const auto& info) {
                           return info.param == ls::DirectorySwap::kExchange ? "Exchange"
                                                                             : "RenameAside";
                         });

TEST(WriteFileAtomic, ReplacesTheFileAndLeavesNoTemporary) {
  const fs::path dir = fs::temp_directory_path() / ("ls_atomic_file_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ls::write_file_atomic(dir / "a.json", "one");
  ls::write_file_atomic(dir / "a.json", "two");
  EXPECT_EQ(read_text(dir / "a.json"), "two");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  fs::remove_all(dir);
}

}  // namespace
