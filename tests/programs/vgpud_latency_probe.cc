// Measures how long a short kernel waits for the GPU: launches one spin_ns
// kernel at a time, synchronizes, and counts (launch + sync time - kernel
// time) as the wait. Idles GAP_US between launches, like a latency-critical
// service between requests. Prints "ready" once its context exists, then
// one line: "launches=N max_wait_us=X p99_wait_us=Y mean_wait_us=Z".
// With PAUSE_EVERY and PAUSE_US it also pauses PAUSE_US after every
// PAUSE_EVERY kernels (a loop with an occasional long break).
// Usage: vgpud_latency_probe ITERATIONS KERNEL_US GAP_US [PAUSE_EVERY PAUSE_US]
#include <cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "spin_ptx.h"

#define CHECK(x)                                                          \
  do {                                                                    \
    CUresult r_ = (x);                                                    \
    if (r_ != CUDA_SUCCESS) {                                             \
      std::fprintf(stderr, "%s failed: %d\n", #x, static_cast<int>(r_)); \
      return 1;                                                           \
    }                                                                     \
  } while (0)

int main(int argc, char** argv) {
  if (argc != 4 && argc != 6) {
    std::fprintf(stderr, "usage: vgpud_latency_probe ITERATIONS KERNEL_US GAP_US [PAUSE_EVERY PAUSE_US]\n");
    return 2;
  }
  int iterations = std::atoi(argv[1]);
  unsigned long long kernel_ns = std::strtoull(argv[2], nullptr, 10) * 1000ull;
  auto gap = std::chrono::microseconds(std::atoi(argv[3]));
  int pause_every = argc == 6 ? std::atoi(argv[4]) : 0;
  auto pause = std::chrono::microseconds(argc == 6 ? std::atoi(argv[5]) : 0);
  CUcontext ctx;
  CUmodule mod;
  CUfunction fn;
  CUstream stream;
  CHECK(cuInit(0));
  CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
  CHECK(cuCtxSetCurrent(ctx));
  CHECK(cuModuleLoadData(&mod, kSpinPtx));
  CHECK(cuModuleGetFunction(&fn, mod, "spin_ns"));
  CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  std::printf("ready\n");
  std::fflush(stdout);
  std::vector<double> waits_us;
  void* params[] = {&kernel_ns};
  for (int i = 0; i < iterations; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, stream, params, nullptr));
    CHECK(cuStreamSynchronize(stream));
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    waits_us.push_back(std::max(0.0, us - static_cast<double>(kernel_ns) / 1000.0));
    std::this_thread::sleep_for(gap);
    if (pause_every > 0 && (i + 1) % pause_every == 0) std::this_thread::sleep_for(pause);
  }
  std::sort(waits_us.begin(), waits_us.end());
  double sum = 0;
  for (double w : waits_us) sum += w;
  size_t n = waits_us.size();
  std::printf("launches=%zu max_wait_us=%.0f p99_wait_us=%.0f mean_wait_us=%.0f\n", n, n ? waits_us.back() : 0.0,
              n ? waits_us[std::min(n - 1, n * 99 / 100)] : 0.0, n ? sum / static_cast<double>(n) : 0.0);
  return 0;
}
