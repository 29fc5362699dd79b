// CUDA + NCCL toolchain smoke: NCCL links and reports its version on any machine; the kernel runs
// only where a GPU is present.
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <nccl.h>

#include <vector>

cudaError_t ls_smoke_axpy(int n, float a, const float* host_x, float* host_y);

TEST(CudaSmoke, NcclLinksAndReportsItsVersion) {
  int version = 0;
  ASSERT_EQ(ncclGetVersion(&version), ncclSuccess);
  EXPECT_GE(version, 22000) << "NCCL 2.20 or newer expected, found " << version;
}

TEST(CudaSmoke, KernelRunsOnTheGpu) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
    GTEST_SKIP() << "no GPU on this machine";
  std::vector<float> x(1000, 2.0f), y(1000, 1.0f);
  ASSERT_EQ(ls_smoke_axpy(1000, 3.0f, x.data(), y.data()), cudaSuccess);
  for (float v : y) ASSERT_EQ(v, 7.0f);
}
