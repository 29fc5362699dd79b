// Test helper for tests/core/report/test_tensorboard.py: writes a few known scalars with
// ls-train's TensorBoard writer into the directory given as argument.
#include <cstdio>

#include "core/report/tensorboard.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  ls::TensorBoardWriter writer(argv[1]);
  for (int step = 1; step <= 5; ++step) {
    writer.add_scalar("train/loss", 1.0 / step, step);
    writer.add_scalar("train/lr", 1e-4 * step, step);
  }
  writer.add_scalar("validation/macro_f1", 0.875, 5);
  writer.flush();
  std::puts(writer.path().c_str());
}
