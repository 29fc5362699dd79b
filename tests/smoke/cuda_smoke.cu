// CUDA toolchain smoke: a kernel that nvcc compiles in CI (no GPU there) and that runs on the GPU
// machine.
#include <cuda_runtime.h>

namespace {
__global__ void axpy_kernel(int n, float a, const float* x, float* y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += a * x[i];
}
}  // namespace

// y += a * x on the current device; returns the CUDA error of the launch and copy.
cudaError_t ls_smoke_axpy(int n, float a, const float* host_x, float* host_y) {
  float *x = nullptr, *y = nullptr;
  cudaError_t err = cudaMalloc(&x, n * sizeof(float));
  if (err == cudaSuccess) err = cudaMalloc(&y, n * sizeof(float));
  if (err == cudaSuccess) err = cudaMemcpy(x, host_x, n * sizeof(float), cudaMemcpyHostToDevice);
  if (err == cudaSuccess) err = cudaMemcpy(y, host_y, n * sizeof(float), cudaMemcpyHostToDevice);
  if (err == cudaSuccess) {
    axpy_kernel<<<(n + 255) / 256, 256>>>(n, a, x, y);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) err = cudaMemcpy(host_y, y, n * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(x);
  cudaFree(y);
  return err;
}
