// A CUDA program with a known driver footprint, for the eBPF driver-probe test
// and for measuring the probes' cost: cuInit, the primary context, one
// cuMemAlloc of BYTES (if BYTES > 0), then LAUNCHES empty kernel launches,
// timed. Prints "done pid=<pid> launches=<n> ns_per_launch=<ns>" and exits 0.
//
// Usage: sim_driver_calls BYTES LAUNCHES
#include <cuda.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "spin_ptx.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: sim_driver_calls BYTES LAUNCHES\n");
    return 2;
  }
  size_t bytes = std::strtoull(argv[1], nullptr, 10);
  long launches = std::strtol(argv[2], nullptr, 10);
  CUcontext ctx;
  CUmodule mod;
  CUfunction fn;
  CUstream stream;
  if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
      cuCtxSetCurrent(ctx) != CUDA_SUCCESS || cuModuleLoadData(&mod, kSpinPtx) != CUDA_SUCCESS ||
      cuModuleGetFunction(&fn, mod, "spin_ns") != CUDA_SUCCESS ||
      cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
    std::fprintf(stderr, "sim_driver_calls: CUDA setup failed\n");
    return 1;
  }
  CUdeviceptr p = 0;
  if (bytes > 0 && cuMemAlloc(&p, bytes) != CUDA_SUCCESS) {
    std::fprintf(stderr, "sim_driver_calls: cuMemAlloc(%zu) failed\n", bytes);
    return 1;
  }
  unsigned long long ns = 0;
  void* params[] = {&ns};
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < launches; ++i) {
    if (cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, stream, params, nullptr) != CUDA_SUCCESS) {
      std::fprintf(stderr, "sim_driver_calls: launch %ld failed\n", i);
      return 1;
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  if (cuStreamSynchronize(stream) != CUDA_SUCCESS) return 1;
  double per = launches ? std::chrono::duration<double, std::nano>(t1 - t0).count() / launches : 0;
  std::printf("done pid=%d launches=%ld ns_per_launch=%.0f\n", static_cast<int>(getpid()), launches, per);
  return 0;
}
