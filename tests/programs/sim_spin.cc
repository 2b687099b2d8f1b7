// Saturates device 0 with spin_ns kernels for a given time and prints
// "kernels=<n> kernel_ns=<ns> wall_ns=<ns>". Usage: sim_spin SECONDS KERNEL_US [DEVICE]
#include <cuda.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "spin_ptx.h"

#define CHECK(x)                                                              \
  do {                                                                        \
    CUresult r_ = (x);                                                        \
    if (r_ != CUDA_SUCCESS) {                                                 \
      std::fprintf(stderr, "%s failed: %d\n", #x, static_cast<int>(r_));     \
      return 1;                                                               \
    }                                                                         \
  } while (0)

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: sim_spin SECONDS KERNEL_US [DEVICE]\n");
    return 2;
  }
  double seconds = std::atof(argv[1]);
  unsigned long long ns = std::strtoull(argv[2], nullptr, 10) * 1000ull;
  int dev = argc > 3 ? std::atoi(argv[3]) : 0;
  CUcontext ctx;
  CUmodule mod;
  CUfunction fn;
  CUstream stream;
  CHECK(cuInit(0));
  CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CHECK(cuCtxSetCurrent(ctx));
  CHECK(cuModuleLoadData(&mod, kSpinPtx));
  CHECK(cuModuleGetFunction(&fn, mod, "spin_ns"));
  CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  std::printf("ready\n");
  std::fflush(stdout);
  auto start = std::chrono::steady_clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  unsigned long long launched = 0;
  void* params[] = {&ns};
  // Keep the queue a few kernels deep: launch in batches, wait for each batch.
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 4; ++i) CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, stream, params, nullptr));
    launched += 4;
    CHECK(cuStreamSynchronize(stream));
  }
  auto wall = std::chrono::steady_clock::now() - start;
  std::printf("kernels=%llu kernel_ns=%llu wall_ns=%lld\n", launched, ns,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count()));
  return 0;
}
