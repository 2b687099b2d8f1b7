// Launches N empty spin_ns kernels in one function, for instruction counting
// under callgrind (benchmarks/hook_instructions.sh): the launches happen only
// inside launch_loop(), so `--toggle-collect=launch_loop` counts exactly them
// (plus the final synchronize, identical with and without the hook).
//
// Usage: hook_launch_loop N
#include <cuda.h>

#include <cstdio>
#include <cstdlib>

#include "spin_ptx.h"

// extern "C" and never inlined: callgrind finds it by this exact name.
extern "C" __attribute__((noinline)) int launch_loop(CUfunction fn, CUstream stream, long n) {
  unsigned long long ns = 0;
  void* params[] = {&ns};
  for (long i = 0; i < n; ++i)
    if (cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, stream, params, nullptr) != CUDA_SUCCESS) return 1;
  return cuStreamSynchronize(stream) == CUDA_SUCCESS ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: hook_launch_loop N\n");
    return 2;
  }
  long n = std::strtol(argv[1], nullptr, 10);
  CUcontext ctx;
  CUmodule mod;
  CUfunction fn;
  CUstream stream;
  if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
      cuCtxSetCurrent(ctx) != CUDA_SUCCESS || cuModuleLoadData(&mod, kSpinPtx) != CUDA_SUCCESS ||
      cuModuleGetFunction(&fn, mod, "spin_ns") != CUDA_SUCCESS ||
      cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
    std::fprintf(stderr, "hook_launch_loop: CUDA setup failed\n");
    return 1;
  }
  int rc = launch_loop(fn, stream, n);
  if (rc) std::fprintf(stderr, "hook_launch_loop: a launch failed\n");
  return rc;
}
