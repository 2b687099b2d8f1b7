// A minimal CUDA runtime program, built twice (shared libcudart.so and static
// libcudart_static.a, from the toolkit) for hook_real_driver_test: cudart
// must start through the hook and reach the driver's own error.
// Prints: count=<cudaError_t> devices=<n> malloc=<cudaError_t>
#include <cuda_runtime.h>

#include <cstdio>

int main() {
  int n = -1;
  cudaError_t count = cudaGetDeviceCount(&n);
  void* p = nullptr;
  cudaError_t alloc = cudaMalloc(&p, 1 << 20);
  std::printf("count=%d devices=%d malloc=%d\n", static_cast<int>(count), n, static_cast<int>(alloc));
  return 0;
}
